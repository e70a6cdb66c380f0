"""Findings: what a clinician (or a later lab result) found, recorded against each result.

One current finding per result: a label (one of the class names of the model that gave the
result, or "not_assessable"), where it came from (radiologist, clinician, lab), an optional
note, who recorded it and when. Every change is written together with its audit row.

A findings CSV (columns file, label, optional source and note) is matched by the file's sha256
or its upload id; a row that matches no result yet waits in `pending_findings` and is applied
when a result for that file arrives (apply_pending, called by the worker after it stores one).
"""

from __future__ import annotations

import csv
import datetime
import io
import logging
import sqlite3

from edge.classifier import STATUS_ERROR
from edge.serve.audit import AuditLog
from edge.serve.database import Database
from edge.serve.history import as_record as _result_dict

NOT_ASSESSABLE = "not_assessable"
SOURCES = ("radiologist", "clinician", "lab")
IMPORT_SOURCE = "lab"  # a CSV is usually the lab's results, arriving after the images
MAX_NOTE_CHARS = 500
MAX_FILE_CHARS = 128  # a sha256 is 64 hex digits, an upload id at most 64 characters
MAX_IMPORT_ROWS = 10_000
MAX_WORKLIST = 500
IDS_PER_QUERY = 500  # under SQLite's bound on the ? of one statement
FINDING_KEYS = ("label", "source", "note", "who", "at")
# What confirmed_cases() copies from each result (besides its id).
CASE_FIELDS = ("created_at", "status", "reason", "predicted_class", "probability",
               "probabilities", "ood_score", "stability", "model_sha256", "model_version",
               "variant", "file_sha256")

SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
    result_id INTEGER PRIMARY KEY REFERENCES results (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    source TEXT NOT NULL,
    note TEXT,
    who TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_findings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    source TEXT NOT NULL,
    note TEXT,
    who TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

log = logging.getLogger(__name__)


class FindingError(ValueError):
    """A finding that cannot be recorded (bad label, source or note); the message says why."""


class NoSuchResult(LookupError):
    pass


class Findings:
    """Thread-safe through the station's Database (its lock and transactions)."""

    def __init__(self, database: Database, audit: AuditLog):
        self.database, self.audit = database, audit
        database.script(SCHEMA)

    # ------------------------------------------------------------------ one result

    def get(self, result_id: int) -> dict | None:
        row = self.database.one("SELECT * FROM findings WHERE result_id = ?", (result_id,))
        return _finding(row) if row else None

    def set(self, result_id: int, label: str, source: str, note: str | None, who: str) -> dict:
        """Records (or replaces) the finding of a result and its audit row; returns it.

        FindingError for a label that is not one of the result's classes nor not_assessable,
        an unknown source or a note too long; NoSuchResult when there is no such result."""
        with self.database.transaction() as db:
            result = _result(db, result_id)
            finding = _checked(label, source, note, _classes(result), result_id)
            return self._write(db, result_id, finding, who)

    def clear(self, result_id: int, who: str) -> None:
        """Removes a result's finding (audited when there was one); NoSuchResult when there
        is no such result."""
        with self.database.transaction() as db:
            _result(db, result_id)
            before = self.get(result_id)
            if before is not None:
                db.execute("DELETE FROM findings WHERE result_id = ?", (result_id,))
                self.audit.record(who, "finding.clear", f"result {result_id}", before, None,
                                  connection=db)
        return None

    def attach(self, records: list[dict]) -> list[dict]:
        """The history records, each with its "finding" (a dict of FINDING_KEYS, or None)."""
        ids = [record["id"] for record in records]
        found = {}
        for chunk in range(0, len(ids), IDS_PER_QUERY):
            part = ids[chunk:chunk + IDS_PER_QUERY]
            rows = self.database.all(
                f"SELECT * FROM findings WHERE result_id IN ({', '.join('?' * len(part))})",
                part)
            found |= {row["result_id"]: _finding(row) for row in rows}
        return [record | {"finding": found.get(record["id"])} for record in records]

    def by_result(self) -> dict[int, dict]:
        """Every finding, by result id (for the history CSV)."""
        return {row["result_id"]: _finding(row)
                for row in self.database.all("SELECT * FROM findings")}

    # ------------------------------------------------------------------ many results

    def worklist(self, limit: int = 100) -> list[dict]:
        """Results still without a finding (errors left out): referred first, then newest."""
        limit = max(1, min(int(limit), MAX_WORKLIST))
        rows = self.database.all(
            "SELECT r.* FROM results r LEFT JOIN findings f ON f.result_id = r.id "
            "WHERE f.result_id IS NULL AND r.status != ? "
            "ORDER BY r.status = 'refer' DESC, r.id DESC LIMIT ?", (STATUS_ERROR, limit))
        return [_result_dict(row) | {"finding": None} for row in rows]

    def worklist_count(self) -> int:
        return self.database.one(
            "SELECT COUNT(*) FROM results r LEFT JOIN findings f ON f.result_id = r.id "
            "WHERE f.result_id IS NULL AND r.status != ?", (STATUS_ERROR,))[0]

    def confirmed_cases(self) -> list[dict]:
        """Every result that has a finding, oldest first, as plain dicts with the keys

            id               the result's id
            created_at       when it was classified (ISO 8601, UTC)
            status, reason   "ok" / "refer" / "error" and the referral or error reason
            predicted_class, probability   the model's top class and its probability
            probabilities    {class name: probability} over the classes of the result's model
            ood_score, stability   the referral signals (None where the model has none)
            model_sha256, model_version, variant   which model gave the result
            file_sha256      the uploaded file's sha256
            finding          {"label", "source", "note", "who", "at"}: label is one of the
                             probabilities' class names or "not_assessable" (no reference
                             class: leave it out of accuracy and calibration); source is
                             "radiologist", "clinician" or "lab"
        """
        rows = self.database.all(
            "SELECT r.*, f.label AS f_label, f.source AS f_source, f.note AS f_note, "
            "f.who AS f_who, f.at AS f_at FROM results r JOIN findings f ON f.result_id = r.id "
            "ORDER BY r.id")
        cases = []
        for row in rows:
            result = _result_dict(row)
            cases.append({"id": result["id"]} | {key: result.get(key) for key in CASE_FIELDS}
                         | {"finding": {key: row[f"f_{key}"] for key in FINDING_KEYS}})
        return cases

    # ------------------------------------------------------------------ import

    def import_csv(self, text: str, who: str, known_labels: list[str]) -> dict:
        """Applies a findings CSV in one transaction; returns what happened to every row.

        Columns (any order, any case): file (sha256 or upload id), label, optional source
        (default lab) and note. Rows are numbered as a spreadsheet shows them (the header is
        row 1; blank rows count but are skipped). A row whose file matches no result yet is
        kept pending, its label checked against known_labels (the current model's classes).
        FindingError for a CSV without the file and label columns or with more than
        MAX_IMPORT_ROWS rows."""
        records = csv.reader(io.StringIO(text.lstrip("\ufeff")))
        header = next(records, [])
        columns = {name.strip().lower(): index for index, name in enumerate(header)}
        missing = [name for name in ("file", "label") if name not in columns]
        if missing:
            raise FindingError(f"the CSV needs the columns file and label (missing: "
                               f"{', '.join(missing)}); it has {list(columns) or 'none'}")
        report = {"rows": 0, "applied": 0, "pending": 0, "unmatched": [], "invalid": [],
                  "several": []}
        with self.database.transaction() as db:
            for number, raw in enumerate(records, start=2):  # as a spreadsheet numbers rows
                cells = {key: raw[index].strip() if index < len(raw) else ""
                         for key, index in columns.items()}
                if not any(cells.values()):
                    continue  # a blank line is no row
                if report["rows"] >= MAX_IMPORT_ROWS:
                    raise FindingError(f"more than {MAX_IMPORT_ROWS} rows; split the CSV")
                report["rows"] += 1
                self._import_row(db, number, cells, who, known_labels, report)
        report["pending"] = self.database.one("SELECT COUNT(*) FROM pending_findings")[0]
        return report

    def pending(self) -> list[dict]:
        """Imported rows still waiting for their image, newest first."""
        rows = self.database.all("SELECT * FROM pending_findings ORDER BY id DESC")
        return [dict(row) for row in rows]

    def discard_pending(self, pending_id: int) -> bool:
        cursor = self.database.execute("DELETE FROM pending_findings WHERE id = ?",
                                       (pending_id,))
        return cursor.rowcount > 0

    def apply_pending(self, record: dict) -> dict:
        """The stored result with its "finding": a pending one for its file applied, if any.

        Audited as who = the importer. A pending label that is not one of this result's
        classes stays pending (a later model may have it)."""
        keys = [key for key in (record.get("file_sha256"), record.get("upload_id")) if key]
        if record.get("status") == STATUS_ERROR or record.get("duplicate") or not keys:
            return record | {"finding": self.get(record["id"])}
        with self.database.transaction() as db:
            rows = db.execute(
                f"SELECT * FROM pending_findings WHERE file IN ({', '.join('?' * len(keys))}) "
                "ORDER BY id DESC", keys).fetchall()
            if not rows:
                return record | {"finding": self.get(record["id"])}
            waiting = rows[0]
            try:
                finding = _checked(waiting["label"], waiting["source"], waiting["note"],
                                   _classes(record), record["id"])
            except FindingError as err:
                log.warning("cxr-edge serve: pending finding for %s not applied: %s",
                            waiting["file"], err)
                return record | {"finding": self.get(record["id"])}
            written = self._write(db, record["id"], finding, waiting["who"])
            db.execute(f"DELETE FROM pending_findings WHERE id IN "
                       f"({', '.join('?' * len(rows))})", [row["id"] for row in rows])
        return record | {"finding": written}

    # ------------------------------------------------------------------ internals

    def _write(self, db: sqlite3.Connection, result_id: int, finding: dict, who: str) -> dict:
        before = self.get(result_id)
        after = finding | {"who": who, "at": _now()}
        db.execute("INSERT OR REPLACE INTO findings (result_id, label, source, note, who, at) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (result_id, *(after[key] for key in FINDING_KEYS)))
        self.audit.record(who, "finding.set", f"result {result_id}", before, after,
                          connection=db)
        return after

    def _import_row(self, db, number: int, cells: dict, who: str, known_labels: list[str],
                    report: dict) -> None:
        file = cells.get("file", "")
        entry = {"row": number, "file": file[:MAX_FILE_CHARS]}
        if not file:
            report["invalid"].append(entry | {"why": "no file: give the image's sha256 or its "
                                                     "upload id"})
            return
        if len(file) > MAX_FILE_CHARS:
            report["invalid"].append(entry | {"why": "file is too long for a sha256 or an "
                                                     "upload id"})
            return
        source = cells.get("source") or IMPORT_SOURCE
        results = [_result_dict(row) for row in db.execute(
            "SELECT * FROM results WHERE file_sha256 = ? OR upload_id = ? ORDER BY id",
            (file.lower(), file)).fetchall()]
        usable = [r for r in results if r["status"] != STATUS_ERROR]
        if results and not usable:
            ids = ", ".join(str(r["id"]) for r in results)
            report["invalid"].append(entry | {"why": f"the file's result ({ids}) could not "
                                                     "be classified: nothing to confirm"})
            return
        if not usable:
            try:
                finding = _checked(cells.get("label", ""), source, cells.get("note") or None,
                                   known_labels, None)
            except FindingError as err:
                report["invalid"].append(entry | {"why": str(err)})
                return
            db.execute("INSERT OR REPLACE INTO pending_findings (file, label, source, note, "
                       "who, at) VALUES (?, ?, ?, ?, ?, ?)",
                       (file.lower() if _is_sha256(file) else file, finding["label"],
                        finding["source"], finding["note"], who, _now()))
            report["unmatched"].append(entry | {"why": "no result for this file yet: kept "
                                                       "pending, applied when it arrives"})
            return
        applied, refused = [], []
        for result in usable:
            try:
                finding = _checked(cells.get("label", ""), source, cells.get("note") or None,
                                   _classes(result), result["id"])
            except FindingError as err:
                refused.append(str(err))
                continue
            self._write(db, result["id"], finding, who)
            applied.append(result["id"])
        if not applied:
            report["invalid"].append(entry | {"why": refused[0]})
            return
        report["applied"] += len(applied)
        if len(usable) > 1:
            report["several"].append(entry | {"results": applied, "why": (
                f"the same file is {len(usable)} results; the finding went to "
                f"{', '.join(map(str, applied))}")})


def _result(db: sqlite3.Connection, result_id: int) -> dict:
    row = db.execute("SELECT * FROM results WHERE id = ?", (result_id,)).fetchone()
    if row is None:
        raise NoSuchResult(f"no result {result_id}")
    return _result_dict(row)


def _classes(result: dict) -> list[str]:
    """The class names of the model that gave the result (none for a result in error)."""
    return list(result.get("probabilities") or {})


def _checked(label: str, source: str, note: str | None, classes, result_id) -> dict:
    """The finding with label and source in their canonical spelling, or FindingError."""
    if not isinstance(label, str) or not label.strip():
        raise FindingError("label is missing: give a class name or not_assessable")
    allowed = list(classes) + [NOT_ASSESSABLE]
    by_key = {name.casefold(): name for name in allowed}
    canonical = by_key.get(label.strip().casefold())
    if canonical is None:
        whose = f"result {result_id}'s model" if result_id is not None else "the current model"
        raise FindingError(f"label {label.strip()[:60]!r} is not one of the classes of "
                           f"{whose}: {', '.join(allowed)}")
    if not isinstance(source, str) or source.strip().lower() not in SOURCES:
        raise FindingError(f"source must be one of {', '.join(SOURCES)}, not "
                           f"{str(source)[:40]!r}")
    if note is not None and not isinstance(note, str):
        raise FindingError("note must be text")
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise FindingError(f"note is {len(note)} characters; at most {MAX_NOTE_CHARS}")
    note = "".join(ch for ch in note if ch.isprintable() or ch == "\n")
    return {"label": canonical, "source": source.strip().lower(), "note": note or None}


def _finding(row: sqlite3.Row) -> dict:
    return {key: row[key] for key in FINDING_KEYS}


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(ch in "0123456789abcdefABCDEF" for ch in text)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
