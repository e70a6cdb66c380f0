"""The station's site calibrations: applied by an admin, each bound to one model file.

At most one calibration is in force per model sha256; applying a new one retires the old one
(kept, for the record). A model without a calibration screens nothing, and the Site page says
"not calibrated for this model version". Every apply goes into the audit log, in the same
transaction.
"""

from __future__ import annotations

import datetime
import json
import threading

from edge.serve.audit import AuditLog
from edge.serve.database import Database
from edge.site import calibration as site_calibration
from edge.site.calibration import SiteCalibration

SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    id TEXT PRIMARY KEY,
    model_sha256 TEXT NOT NULL,
    record TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    applied_by TEXT NOT NULL,
    active INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calibrations_model ON calibrations (model_sha256, active);
"""


class SiteCalibrations:
    def __init__(self, database: Database, audit: AuditLog):
        self.database, self.audit = database, audit
        database.script(SCHEMA)
        self._cache: dict[str, SiteCalibration | None] = {}
        self._lock = threading.Lock()

    def active_for(self, model_sha256: str | None) -> SiteCalibration | None:
        """The calibration in force for this model file, or None (the manifest's thresholds)."""
        if not model_sha256:
            return None
        with self._lock:
            if model_sha256 not in self._cache:
                row = self.database.one("SELECT record FROM calibrations WHERE model_sha256 = ? "
                                        "AND active = 1", (model_sha256,))
                self._cache[model_sha256] = (None if row is None else
                                             site_calibration.from_json(json.loads(row[0])))
            return self._cache[model_sha256]

    def apply(self, calibration: SiteCalibration, who: str) -> SiteCalibration:
        """Puts `calibration` in force for its model at once, retiring the one before."""
        previous = self.active_for(calibration.model_sha256)
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with self.database.transaction() as db:
            db.execute("UPDATE calibrations SET active = 0 WHERE model_sha256 = ?",
                       (calibration.model_sha256,))
            db.execute("INSERT INTO calibrations (id, model_sha256, record, applied_at, "
                       "applied_by, active) VALUES (?, ?, ?, ?, ?, 1)",
                       (calibration.id, calibration.model_sha256,
                        json.dumps(calibration.to_json()), now, who))
            self.audit.record(who, "calibration.apply", f"model {calibration.model_sha256[:12]}",
                              before=None if previous is None else summary(previous),
                              after=summary(calibration), connection=db)
        with self._lock:
            self._cache.pop(calibration.model_sha256, None)
        return calibration

    def apply_file(self, path: str, who: str) -> SiteCalibration:
        """A site.json from `cxr-edge calibrate`, put in force unless it already is."""
        calibration = site_calibration.load(path)
        if not calibration.id:
            raise site_calibration.CalibrationError(f"{path} has no id")
        if self.database.one("SELECT 1 FROM calibrations WHERE id = ? AND active = 1",
                             (calibration.id,)) is None:
            self.database.execute("DELETE FROM calibrations WHERE id = ?", (calibration.id,))
            self.apply(calibration, who)
        return calibration

    def history(self) -> list[dict]:
        rows = self.database.all("SELECT id, model_sha256, applied_at, applied_by, active, "
                                 "record FROM calibrations ORDER BY applied_at DESC, rowid DESC")
        return [{key: row[key] for key in ("id", "model_sha256", "applied_at", "applied_by")}
                | {"active": bool(row["active"]), "calibration": json.loads(row["record"])}
                for row in rows]


def summary(calibration: SiteCalibration) -> dict:
    """What the audit log keeps of a calibration."""
    return {"id": calibration.id, "score": calibration.score,
            "threshold": calibration.threshold, "target": calibration.target,
            "n_positive": calibration.n_positive, "n_negative": calibration.n_negative,
            "model_sha256": calibration.model_sha256,
            "ood_threshold": calibration.ood_threshold, "refer_below": calibration.refer_below}
