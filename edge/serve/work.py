"""The bounded queue in front of the interpreter, and what happens to one uploaded file.

One LiteRT interpreter is not thread-safe, so one worker thread owns it and takes uploads off a
queue in arrival order. The queue holds at most `capacity` files (waiting or running); a request
whose files do not all fit is queued whole or not at all (QueueFull: the web layer waits for
room, then answers 503), so no request is half-processed. `listeners` are called (in the worker
thread) each time a file is done, i.e. each time room appears.

Each file becomes exactly one history row, written by the worker before the request is answered
(a client that disconnects still gets its result recorded), whatever happens to it: a file that
does not decode is a row with status "error" and the decoder's reason, and the batch goes on.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from PIL import Image

from edge import heatmap
from edge.record import classify_source, refused_record
from edge.serve.history import History
from edge.serve.models import ModelSlot
from edge.site.calibration import referral_options

PREVIEW_SIDE = heatmap.MAX_OVERLAY_SIDE

log = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """The request's files do not fit in the queue now; the client should retry."""


@dataclass
class Upload:
    filename: str  # a label for people; never used as a path
    data: bytes
    upload_id: str | None = None
    received: float = field(default_factory=time.perf_counter)
    source: str = "upload"  # or "dicom" (edge/dicom_net/)
    extra: dict = field(default_factory=dict)  # the source's own history columns (DICOM UIDs)
    refusal: tuple[str, str] | None = None  # (reason, message): turned away before inference


@dataclass
class _Job:
    upload: Upload
    future: Future


class InferenceQueue:
    def __init__(self, slot: ModelSlot, history: History, capacity: int, after_store=None,
                 calibrations=None):
        """after_store(record) -> record: run on each stored result (a pending finding).
        calibrations: edge.serve.site.SiteCalibrations; the one for the served model screens."""
        self.slot, self.history, self.capacity = slot, history, capacity
        self.after_store = after_store
        self.calibrations = calibrations
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0  # queued + running: what `capacity` bounds
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.listeners: list = []

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="cxr-serve-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finishes the files already queued, then stops the worker."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, uploads: list[Upload]) -> list[Future]:
        """Queues all of uploads or none (QueueFull); each future resolves to its record."""
        with self._lock:
            if self._pending + len(uploads) > self.capacity:
                raise QueueFull(f"{self._pending} files are waiting (room for {self.capacity})")
            self._pending += len(uploads)
            jobs = [_Job(upload, Future()) for upload in uploads]
            for job in jobs:
                self._jobs.put(job)
        return [job.future for job in jobs]

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job.future.set_result(self._process(job.upload))
            except BaseException as err:  # a failed record must still answer
                log.exception("cxr-edge serve: could not record %s", job.upload.filename)
                job.future.set_exception(err)
            finally:
                with self._lock:
                    self._pending -= 1
                    self.processed += 1
                for listener in self.listeners:
                    listener()

    def _process(self, upload: Upload) -> dict:
        started = time.perf_counter()
        served = self.slot.current  # a reload swaps the slot; this file keeps this model
        calibration = (self.calibrations.active_for(served.classifier.model_sha256)
                       if self.calibrations is not None else None)
        # the worker alone runs the classifier, so its thresholds can follow the calibration
        served.classifier.options = referral_options(self.slot.options, calibration)
        record, images, shown = classify_upload(served.classifier, upload,
                                                keep=self.history.keep_images,
                                                calibration=calibration)
        record.update(upload.extra)
        record.update(
            source=upload.source,
            upload_id=upload.upload_id,
            created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="milliseconds"),
            model_version=served.version,
            variant=served.info.get("variant"),
            model_sha256=served.classifier.model_sha256,
            queued_ms=round((started - upload.received) * 1000, 3),
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        stored = self.history.add(record, images)
        if self.after_store is not None:
            try:
                stored = self.after_store(stored)
            except Exception:  # the result is recorded; only the extra step is lost
                log.exception("cxr-edge serve: after storing result %s", stored.get("id"))
        # What the page shows at once: heat maps (or the image) inline, whether or not kept.
        return stored | {"images": {name: _data_url(jpeg) for name, jpeg in shown.items()},
                         "heatmap_error": record.get("heatmap_error")}


def classify_upload(classifier, upload: Upload, keep: bool = False, calibration=None
                    ) -> tuple[dict, dict[str, bytes], dict[str, bytes]]:
    """(record, PNGs to keep, JPEGs to show) for one file; never raises for a bad file.

    keep: also encode the PNGs to keep (--keep-images): the decoded image at full size and the
    heat maps. What is shown is JPEG, several times cheaper to encode than PNG (docs/serve.md)."""
    if upload.refusal is not None:  # the header says the model must not read it
        return ({"filename": upload.filename,
                 "file_sha256": hashlib.sha256(upload.data).hexdigest()}
                | refused_record(*upload.refusal), {}, {})
    outcome = classify_source(classifier, upload.data, calibration)
    if outcome.failure is not None:  # the batch goes on; the traceback goes to the log
        log.warning("cxr-edge serve: %s failed", upload.filename, exc_info=outcome.failure)
    record = {"filename": upload.filename,
              "file_sha256": hashlib.sha256(upload.data).hexdigest()} | outcome.record
    prediction, gray = outcome.prediction, outcome.gray
    if prediction is None:
        return record, {}, {}
    record.update(height=int(gray.shape[0]), width=int(gray.shape[1]))
    overlays = {}
    try:
        for key, values in prediction.attention.items():
            overlays[key] = heatmap.overlay(gray, values)
    except Exception as err:  # the classification stands; only the overlay is lost
        log.warning("cxr-edge serve: heat map of %s failed", upload.filename, exc_info=True)
        record["heatmap_error"] = f"{type(err).__name__}: {err}"
    kept = {}
    if keep:
        kept = {"image": _encode(Image.fromarray(gray), "PNG")}
        kept |= {key: _encode(image, "PNG") for key, image in overlays.items()}
    if overlays:
        shown = {key: _encode(image, "JPEG") for key, image in overlays.items()}
    else:
        preview = Image.fromarray(gray)
        preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR)
        shown = {"image": _encode(preview, "JPEG")}
    return record, kept, shown


def _encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "PNG":
        image.save(buffer, format="PNG", compress_level=1)  # fast; kept files are few
    else:
        image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
