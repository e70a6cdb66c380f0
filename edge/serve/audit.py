"""The append-only audit log: every change to a finding, a calibration or a user.

Each row says who, when, what (action and target) and the value before and after (JSON). SQLite
triggers refuse UPDATE and DELETE on the table, so not even the station's own code can rewrite
the past. Callers write the audit row inside the same transaction as the change.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import sqlite3

from edge.serve.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
COLUMNS = ("id", "at", "who", "action", "target", "before", "after")


class AuditLog:
    def __init__(self, database: Database):
        self.database = database
        database.script(SCHEMA)

    def record(self, who: str, action: str, target: str, before=None, after=None,
               connection: sqlite3.Connection | None = None) -> int:
        """Appends one row; pass the transaction's connection to write it with the change.

        action: e.g. "finding.set", "calibration.apply", "user.add"; target: what it acted on
        ("result 12", "user ana"); before/after: JSON-serialisable values (None: absent)."""
        values = (_now(), who, action, target, _json(before), _json(after))
        with self.database.transaction() as db:
            cursor = (connection or db).execute(
                "INSERT INTO audit (at, who, action, target, before, after) "
                "VALUES (?, ?, ?, ?, ?, ?)", values)
            return cursor.lastrowid

    def list(self, limit: int = 500, before_id: int | None = None) -> list[dict]:
        """Newest first."""
        where, values = ("WHERE id < ?", (before_id,)) if before_id is not None else ("", ())
        rows = self.database.all(f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?",
                                 (*values, max(1, min(int(limit), 10_000))))
        return [_as_dict(row) for row in rows]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.database.all("SELECT * FROM audit ORDER BY id"):
            writer.writerow([_cell(row[key]) for key in COLUMNS])
        return buffer.getvalue()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _as_dict(row: sqlite3.Row) -> dict:
    record = dict(row)
    for key in ("before", "after"):
        record[key] = None if record[key] is None else json.loads(record[key])
    return record


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text
