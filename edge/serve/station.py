"""The triage station's parts wired together: model slot, history, queue, reload watcher.

No web imports: app.py puts HTTP in front of this, tests can drive it directly.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

from edge.classifier import ClassifierOptions
from edge.serve.audit import AuditLog
from edge.serve.database import Database
from edge.serve.findings import Findings
from edge.serve.history import History
from edge.serve.models import ModelSlot
from edge.serve.options import ServeOptions
from edge.serve.site import SiteCalibrations
from edge.serve.users import Users
from edge.serve.work import InferenceQueue

log = logging.getLogger(__name__)


class Station:
    def __init__(self, options: ServeOptions):
        """Verifies and loads the model (ManifestError if it is refused) and opens the history."""
        self.options = options
        classifier_options = ClassifierOptions(
            threads=options.threads,
            refer_below=options.refer_below,
            ood_threshold=options.ood_threshold,
            trusted_keys=options.trusted_keys,
        )
        self.slot = ModelSlot(Path(options.model), classifier_options)
        self.slot.load()
        try:
            self.database = Database(options.data_dir)
            self.history = History(options.data_dir, keep_images=options.keep_images,
                                   database=self.database)
            self.audit = AuditLog(self.database)
            self.users = Users(self.database, self.audit)  # and their login sessions
            self.findings = Findings(self.database, self.audit)
            self.calibrations = SiteCalibrations(self.database, self.audit)
            if options.site_calibration:
                self._apply_site_calibration(options.site_calibration)
        except BaseException:
            self.slot.close()
            raise
        self.queue = InferenceQueue(self.slot, self.history, options.queue_size,
                                    after_store=self.findings.apply_pending,
                                    calibrations=self.calibrations)
        # Signs the login cookie; new on every start, so a restart logs everyone out.
        self.cookie_key = secrets.token_bytes(32)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.dicom = None  # the DICOM node (edge/dicom_net/service.py) with --dicom-port

    def start_dicom(self) -> None:
        """Starts the DICOM node on this station's queue and history (the dicom-net extra)."""
        from edge.dicom_net.service import NodeService  # pynetdicom: only when asked for

        self.dicom = NodeService(self, self.options.dicom)
        self.dicom.start()

    def _apply_site_calibration(self, path: str) -> None:
        applied = self.calibrations.apply_file(path, "cxr-edge serve --site-calibration")
        served = self.slot.current.classifier.model_sha256
        if not applied.applies_to(served):
            log.warning("cxr-edge serve: the site calibration %s is for model %s..., not the "
                        "one being served (%s...): it applies when that model is served",
                        applied.id, applied.model_sha256[:12], str(served)[:12])

    @property
    def calibration(self):
        """The site calibration in force for the model being served, or None."""
        return self.calibrations.active_for(self.slot.current.classifier.model_sha256)

    def start(self) -> None:
        self.queue.start()
        self._watcher = threading.Thread(target=self._watch, name="cxr-serve-reload",
                                         daemon=True)
        self._watcher.start()
        if self.options.dicom is not None:
            self.start_dicom()

    def stop(self) -> None:
        if self.dicom is not None:  # first: no object is accepted that could not be recorded
            self.dicom.stop()
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(10)
        self.queue.stop()
        self.history.close()
        self.database.close()
        self.slot.close()

    def _watch(self) -> None:
        while not self._stop.wait(self.options.reload_interval_s):
            try:
                self.slot.check()
            except Exception:  # the watcher must outlive any one bad push
                log.exception("cxr-edge serve: checking for a new model failed")
