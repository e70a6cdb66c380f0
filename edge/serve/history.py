"""The station's history: one SQLite row per classified upload, newest first.

The data dir holds only this database (mode 0600) and, with --keep-images, PNGs the server
encoded itself (the decoded pixels and the heat maps, never the uploaded bytes), named by the
row's id: nothing in it is executable, and no name comes from a request.

A client may send an upload_id with each file; a second upload with the same id (a retry after
a lost answer) returns the first row instead of recording the image twice.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from pathlib import Path

from edge.serve.database import Database

IMAGES_DIR = "images"
STATUSES = ("ok", "refer", "error")
MAX_LIST = 1000
_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # heat map keys are output names: attention_1, ...
# Cells a spreadsheet would run as a formula (CSV injection) get a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    upload_id TEXT UNIQUE,
    created_at TEXT NOT NULL,
    filename TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    error TEXT,
    predicted_class TEXT,
    probability REAL,
    probabilities TEXT,
    ood_score REAL,
    stability REAL,
    inference_ms REAL,
    latency_ms REAL,
    queued_ms REAL,
    model_version TEXT,
    variant TEXT,
    model_sha256 TEXT,
    file_sha256 TEXT,
    width INTEGER,
    height INTEGER,
    kept_images TEXT
);
CREATE INDEX IF NOT EXISTS results_status ON results (status);
CREATE INDEX IF NOT EXISTS results_class ON results (predicted_class);
"""
# Where a result came from: "upload" (the page, the API) or "dicom" (the node), and for DICOM
# the object's UIDs, the calling AE and the identifiers (keyed hashes unless kept).
DICOM_COLUMNS = ("source", "calling_ae", "study_instance_uid", "series_instance_uid",
                 "sop_instance_uid", "sop_class_uid", "patient_id_hash", "accession_hash",
                 "patient_id", "accession_number")
COLUMNS = ("upload_id", "created_at", "filename", "status", "reason", "error", "predicted_class",
           "probability", "probabilities", "ood_score", "stability", "inference_ms", "latency_ms",
           "queued_ms", "model_version", "variant", "model_sha256", "file_sha256", "width",
           "height", "kept_images", "screen", "screen_threshold", "screen_score",
           "calibration_id") + DICOM_COLUMNS
# Added to a database made before they existed.
ADDED_COLUMNS = {"stability": "REAL", "screen": "TEXT", "screen_threshold": "REAL",
                 "screen_score": "REAL", "calibration_id": "TEXT"} | dict.fromkeys(
                     DICOM_COLUMNS, "TEXT")
# The CSV's columns for a result's finding (edge/serve/findings.py), and its keys they show.
FINDING_COLUMNS = {"finding_label": "label", "finding_source": "source", "finding_by": "who",
                   "finding_at": "at"}


class History:
    """Thread-safe: the worker thread writes, request handlers read and delete."""

    def __init__(self, data_dir: str | os.PathLike, keep_images: bool = False,
                 database: Database | None = None):
        self.database = database or Database(data_dir)
        self.data_dir = self.database.data_dir
        self.keep_images = keep_images
        self.images_dir = self.data_dir / IMAGES_DIR
        if keep_images:
            self.images_dir.mkdir(mode=0o700, exist_ok=True)
        self._owns_database = database is None
        self._lock = self.database.lock
        self._db = self.database.connection
        self.database.script(SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
        self._db.execute("CREATE INDEX IF NOT EXISTS results_study ON results "
                         "(study_instance_uid)")

    def add(self, record: dict, images: dict[str, bytes] | None = None) -> dict:
        """Stores one result (and its PNGs with --keep-images); returns it with its id.

        A record whose upload_id is already stored is not stored again: the first is returned."""
        row = {key: record.get(key) for key in COLUMNS}
        row["probabilities"] = json.dumps(record["probabilities"]) if record.get(
            "probabilities") else None
        keep = self.keep_images and bool(images)
        row["kept_images"] = json.dumps(sorted(images)) if keep else None
        with self._lock:
            if row["upload_id"]:
                existing = self._db.execute("SELECT * FROM results WHERE upload_id = ?",
                                            (row["upload_id"],)).fetchone()
                if existing is not None:
                    return as_record(existing) | {"duplicate": True}
            placeholders = ", ".join("?" for _ in COLUMNS)
            cursor = self._db.execute(
                f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                [row[key] for key in COLUMNS],
            )
            record_id = cursor.lastrowid
        if keep:
            for name, data in images.items():
                _write_private(self._image_path(record_id, name), data)
        return self.get(record_id)

    def get(self, record_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM results WHERE id = ?", (record_id,)).fetchone()
        return as_record(row) if row else None

    def list(self, status: str | None = None, predicted_class: str | None = None,
             limit: int = 200, before_id: int | None = None, study: str | None = None
             ) -> list[dict]:
        """Newest first, optionally one status, one predicted class and/or one study."""
        where, values = _filters(status, predicted_class, study)
        if before_id is not None:
            where.append("id < ?")
            values.append(before_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        limit = max(1, min(int(limit), MAX_LIST))
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM results {clause} ORDER BY id DESC LIMIT ?",
                                    (*values, limit)).fetchall()
        return [as_record(row) for row in rows]

    def count(self, status: str | None = None, predicted_class: str | None = None,
              study: str | None = None) -> int:
        where, values = _filters(status, predicted_class, study)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM results {clause}", values).fetchone()[0]

    def classes(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT predicted_class FROM results WHERE "
                                    "predicted_class IS NOT NULL ORDER BY 1").fetchall()
        return [row[0] for row in rows]

    def delete(self, record_id: int) -> bool:
        record = self.get(record_id)
        if record is None:
            return False
        with self._lock:
            self._db.execute("DELETE FROM results WHERE id = ?", (record_id,))
        for name in record.get("kept_images") or []:
            self._image_path(record_id, name).unlink(missing_ok=True)
        return True

    def image(self, record_id: int, name: str) -> bytes | None:
        """A kept PNG of a row ("image" or a heat map key), or None."""
        record = self.get(record_id)
        if record is None or name not in (record.get("kept_images") or []):
            return None
        path = self._image_path(record_id, name)
        return path.read_bytes() if path.is_file() else None

    def to_csv(self, class_names, status: str | None = None,
               predicted_class: str | None = None, findings: dict | None = None,
               study: str | None = None) -> str:
        """The filtered history as CSV, newest first, one p_<class> column per class.

        findings: {result id: finding}, shown in the FINDING_COLUMNS."""
        where, values = _filters(status, predicted_class, study)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = [as_record(r) for r in self._db.execute(
                f"SELECT * FROM results {clause} ORDER BY id DESC", values).fetchall()]
        names = list(class_names) + sorted({name for row in rows
                                            for name in (row["probabilities"] or {})
                                            if name not in class_names})
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", "created_at", "filename", "status", "reason", "predicted_class",
                         "probability"] + [f"p_{name}" for name in names]
                        + ["ood_score", "inference_ms", "latency_ms", "model_version", "variant",
                           "error"] + list(FINDING_COLUMNS))
        for row in rows:
            finding = (findings or {}).get(row["id"]) or {}
            probabilities = row["probabilities"] or {}
            writer.writerow([row["id"], row["created_at"], _cell(row["filename"]), row["status"],
                             row["reason"] or "", row["predicted_class"] or "",
                             _number(row["probability"])]
                            + [_number(probabilities.get(name)) for name in names]
                            + [_number(row["ood_score"]), _number(row["inference_ms"]),
                               _number(row["latency_ms"]), _cell(row["model_version"]),
                               _cell(row["variant"]), _cell(row["error"])]
                            + [_cell(finding.get(key)) for key in FINDING_COLUMNS.values()])
        return buffer.getvalue()

    def close(self) -> None:
        if self._owns_database:
            self.database.close()

    def _image_path(self, record_id: int, name: str) -> Path:
        if not _KEY.match(name):
            raise ValueError(f"not an image name: {name!r}")
        return self.images_dir / f"{int(record_id)}.{name}.png"


def _filters(status, predicted_class, study=None) -> tuple[list[str], list]:
    where, values = [], []
    if study:
        where.append("study_instance_uid = ?")
        values.append(study)
    if status:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        where.append("status = ?")
        values.append(status)
    if predicted_class:
        where.append("predicted_class = ?")
        values.append(predicted_class)
    return where, values


def as_record(row: sqlite3.Row) -> dict:
    record = dict(row)
    record["probabilities"] = json.loads(record["probabilities"]) if record[
        "probabilities"] else None
    record["kept_images"] = json.loads(record["kept_images"]) if record["kept_images"] else []
    return record


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value) -> str:
    return "" if value is None else f"{value:.6g}"
