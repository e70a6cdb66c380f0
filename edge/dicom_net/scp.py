"""The DICOM Storage SCP: associations, the allow-list, C-ECHO and C-STORE (pynetdicom).

Every storage SOP class is accepted at association, so a CT or a lateral sent by mistake gets a
history row with its reason (edge/dicom_net/checks.py) instead of a silent refusal. Callers not
on the allow-list are rejected at association ("calling AE title not recognised") and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from edge.dicom_net.node import Busy, DicomNode

log = logging.getLogger(__name__)

# The node's preference, first to last (pynetdicom accepts the first of ours that the sender
# offers): lossless syntaxes the decoder reads (JPEG-LS via pyjpegls, which highdicom brings;
# RLE), then uncompressed (a sender converts its JPEG lossless to it), then the lossy ones it
# reads, then every other syntax, so a unit that can send nothing else still gets a record
# saying why its image was not read (unsupported_dicom) instead of a refused association.
DECODED_SYNTAXES = [
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old units)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Pillow)
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
]
TRANSFER_SYNTAXES = DECODED_SYNTAXES + [
    uid for uid in ALL_TRANSFER_SYNTAXES if uid not in DECODED_SYNTAXES]
STORED = 0x0000
OUT_OF_RESOURCES = 0xA700  # the sender retries later
CANNOT_UNDERSTAND = 0xC000
MAX_PDU = 65536
TIMEOUT_S = 60


@dataclass
class Listening:
    server: object  # pynetdicom's ThreadedAssociationServer
    host: str
    port: int

    def stop(self) -> None:
        self.server.shutdown()


def listen(node: DicomNode) -> Listening:
    """Starts the SCP in background threads on node.options.host:port (0: a free port)."""
    options = node.options
    ae = AE(ae_title=options.ae_title)
    ae.maximum_pdu_size = MAX_PDU
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    ae.maximum_associations = 4  # each holds a thread; the interpreter is serial anyway
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    handlers = [(evt.EVT_REQUESTED, _on_requested, [node]),
                (evt.EVT_C_ECHO, _on_echo),
                (evt.EVT_C_STORE, _on_store, [node])]
    server = ae.start_server((options.host, options.port), block=False, evt_handlers=handlers)
    host, port = server.server_address[:2]
    log.info("cxr-edge dicom: %s listening on %s:%d", options.ae_title, host, port)
    return Listening(server, host, port)


def _on_requested(event, node: DicomNode) -> None:
    requestor = event.assoc.requestor
    # negotiation has not copied the calling AE title yet: read it from the request itself
    calling = str(requestor.primitive.calling_ae_title or "").strip()
    address = str(requestor.address)
    if not node.options.admits(calling, address):
        log.warning("cxr-edge dicom: rejected an association from %r at %s: not on the "
                    "allow-list (--dicom-allow)", calling, address)
        event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent: calling AE not recognised
        event.assoc.kill()  # as pynetdicom's own rejection does: the reject is sent first


def _on_echo(event) -> int:
    return STORED


def _on_store(event, node: DicomNode) -> int:
    requestor = event.assoc.requestor
    try:
        data = event.encoded_dataset()  # as sent: the decoder, not pynetdicom, judges it
    except Exception:
        log.exception("cxr-edge dicom: could not read a C-STORE data set")
        return CANNOT_UNDERSTAND
    try:
        node.receive(data, str(requestor.ae_title).strip(), str(requestor.address))
    except Busy as err:
        log.warning("cxr-edge dicom: busy, asked the sender to retry: %s", err)
        return OUT_OF_RESOURCES
    except Exception:  # recorded or not, the association goes on
        log.exception("cxr-edge dicom: could not record a received object")
        return CANNOT_UNDERSTAND
    return STORED
