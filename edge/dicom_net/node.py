"""One received DICOM object: check its header, classify it, record it, queue the answer.

The node hands each object to the station's own inference queue, so a network image and an
uploaded one share one interpreter, one history and one page. The C-STORE is acknowledged only
after the history row and the outbox rows are committed (edge/dicom_net/outbox.py). No network
code here: scp.py calls `receive`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from PIL import Image

from edge.dicom_net.checks import Unsuitable, check_header
from edge.dicom_net.identifiers import IdentifierKeeper
from edge.dicom_net.options import DicomOptions
from edge.dicom_net.outbox import Outbox
from edge.serve.work import InferenceQueue, QueueFull, Upload

log = logging.getLogger(__name__)

SOURCE = "dicom"
UID_KEYS = {"study_instance_uid": "StudyInstanceUID", "series_instance_uid": "SeriesInstanceUID",
            "sop_instance_uid": "SOPInstanceUID", "sop_class_uid": "SOPClassUID"}
RESULT_TIMEOUT_S = 300.0  # a full queue on a Pi drains in well under this


class Busy(RuntimeError):
    """The station cannot take the object now; the sender should retry (C-STORE 0xA700)."""


@dataclass
class Received:
    record: dict  # the stored history row
    queued: tuple[str, ...]  # what went to the outbox: "sr", "sc"


class DicomNode:
    def __init__(self, queue: InferenceQueue, data_dir, options: DicomOptions,
                 outbox: Outbox | None = None):
        """outbox: where results for options.send_to wait; None when nothing is sent back."""
        self.queue, self.options, self.outbox = queue, options, outbox
        self.identifiers = IdentifierKeeper(data_dir, keep=options.keep_identifiers)

    def receive(self, data: bytes, calling_ae: str, address: str) -> Received:
        """Records one object (never raises for a bad one); Busy if the queue is full."""
        dataset = _parse(data)
        upload = Upload(_label(dataset, calling_ae), data,
                        upload_id="dicom-" + hashlib.sha256(data).hexdigest()[:40],
                        source=SOURCE, extra=self._fields(dataset, calling_ae))
        if dataset is not None:
            try:
                check_header(dataset, self.options.checks)
            except Unsuitable as err:
                upload.refusal = (err.reason, err.message)
        try:
            future = self.queue.submit([upload])[0]
        except QueueFull as err:
            raise Busy(str(err)) from err
        try:
            stored = future.result(RESULT_TIMEOUT_S)
        except FutureTimeout as err:
            raise Busy("the result took too long") from err
        queued = self._answer(dataset, stored) if dataset is not None else ()
        log.info("cxr-edge dicom: %s from %s (%s): %s %s", stored.get("sop_instance_uid"),
                 calling_ae, address, stored["status"], stored.get("reason") or
                 stored.get("predicted_class"))
        return Received({k: v for k, v in stored.items() if k != "images"}, queued)

    def _fields(self, dataset, calling_ae: str) -> dict:
        fields = {"calling_ae": calling_ae}
        for key, keyword in UID_KEYS.items():
            fields[key] = _text(dataset, keyword)
        if dataset is not None:
            fields |= self.identifiers.fields(dataset)
        return fields

    def _answer(self, dataset, stored: dict) -> tuple[str, ...]:
        """Queues the SR (and the Secondary Capture when the image decoded) for the PACS."""
        destination = self.options.send_to
        if self.outbox is None or destination is None or stored.get("id") is None:
            return ()
        if self.outbox.has(stored["id"], str(destination)):  # a resend of an answered object
            return ()
        from edge.dicom_net import reports  # highdicom: only when results go back

        algorithm = reports.Algorithm(name=f"cxr-edge {stored.get('variant') or 'model'}",
                                      version=str(stored.get("model_version") or "unknown"),
                                      sha256=str(stored.get("model_sha256") or ""))
        objects = {}
        try:
            objects["sr"] = reports.structured_report(dataset, stored, algorithm)
            shown = _first_image(stored.get("images") or {})
            if shown is not None:
                objects["sc"] = reports.secondary_capture(dataset, stored, algorithm, shown)
        except Exception:  # the result is recorded; only its copy for the PACS is lost
            log.exception("cxr-edge dicom: could not build the answer for result %s",
                          stored["id"])
            return ()
        self.outbox.add(stored["id"], str(destination), objects)
        return tuple(objects)


def _parse(data: bytes):
    """The header as pydicom reads it, or None (the decoder then says what is wrong)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        dataset.get("SOPClassUID")  # values are converted lazily: fail here, not later
        return dataset
    except Exception:
        log.debug("cxr-edge dicom: unreadable header", exc_info=True)
        return None


def _text(dataset, keyword: str) -> str | None:
    if dataset is None:
        return None
    try:
        return str(dataset.get(keyword) or "").strip() or None
    except Exception:
        return None


def _label(dataset, calling_ae: str) -> str:
    modality = _text(dataset, "Modality") or "DICOM"
    return f"{modality} from {calling_ae} {_text(dataset, 'SOPInstanceUID') or ''}".strip()


def _first_image(images: dict[str, str]) -> Image.Image | None:
    """The heat map the page shows (or the image itself), decoded from its data URL."""
    for name in sorted(images, key=lambda key: key == "image"):
        encoded = images[name].split(",", 1)[-1]
        return Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    return None
