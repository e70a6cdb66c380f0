"""C-STORE of the outbox's objects to the PACS (pynetdicom), one association per round."""

from __future__ import annotations

import io

from pydicom import dcmread
from pynetdicom import AE

from edge.dicom_net.options import Destination
from edge.dicom_net.outbox import Item

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
TIMEOUT_S = 30


class Unreachable(ConnectionError):
    """No association with the PACS: it is down, refused us, or the network is."""


def sender(calling_ae_title: str):
    """A send(destination, items) for outbox.Delivery that calls as calling_ae_title."""
    def send(destination: Destination, items: list[Item]) -> dict[int, str | None]:
        return store(destination, items, calling_ae_title)
    return send


def store(destination: Destination, items: list[Item], calling_ae_title: str
          ) -> dict[int, str | None]:
    """{item id: None if the PACS stored it, else why not}; Unreachable if no association."""
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    for sop_class in sorted({item.sop_class_uid for item in items}):
        ae.add_requested_context(sop_class, [EXPLICIT_LITTLE, IMPLICIT_LITTLE])
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        why = "rejected the association" if assoc.is_rejected else "did not answer"
        raise Unreachable(f"{destination} {why}")
    outcomes: dict[int, str | None] = {}
    try:
        for item in items:
            status = assoc.send_c_store(dcmread(io.BytesIO(item.data)))
            code = getattr(status, "Status", None)
            if code is None:
                outcomes[item.id] = "the association ended before the PACS answered"
                break
            # 0x0000 success; 0xB000/0xB007/0xB006 are warnings: stored, coerced or not all kept
            outcomes[item.id] = None if code == 0 or code & 0xF000 == 0xB000 else (
                f"the PACS answered status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    return outcomes
