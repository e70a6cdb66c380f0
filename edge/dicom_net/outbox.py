"""The persistent outbox: results waiting to reach the PACS, in the station's SQLite database.

A result's SR and Secondary Capture are written here, as encoded DICOM, in the same database
as its history row and before the image's C-STORE is acknowledged, so a power cut or a SIGKILL
loses nothing the node answered. A delivery thread sends what is due, one association per
round, and retries a PACS that is down with exponential backoff. Each object is sent until the
PACS acknowledges it; an object acknowledged but not yet marked sent (a crash in between) is
sent once more with the same SOP Instance UID, which a PACS stores once.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from dataclasses import dataclass

from edge.serve.database import Database

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    result_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    destination TEXT NOT NULL,
    data BLOB,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT,
    UNIQUE (result_id, kind, destination)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (sent_at, next_attempt);
"""
BATCH = 16  # objects per association


@dataclass(frozen=True)
class Item:
    id: int
    kind: str  # "sr" or "sc"
    sop_class_uid: str
    sop_instance_uid: str
    data: bytes


class Outbox:
    def __init__(self, database: Database, retry_first_s: float, retry_max_s: float):
        self.database = database
        self.retry_first_s, self.retry_max_s = retry_first_s, retry_max_s
        database.script(SCHEMA)
        self.wake = threading.Event()

    def add(self, result_id: int, destination: str, objects: dict[str, object]) -> None:
        """objects: {kind: pydicom Dataset}; all or none are queued, once per result and kind."""
        from pydicom.filebase import DicomBytesIO

        now = _now()
        rows = []
        for kind, dataset in objects.items():
            buffer = DicomBytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            rows.append((result_id, kind, str(dataset.SOPClassUID),
                         str(dataset.SOPInstanceUID), destination, buffer.getvalue(), now))
        with self.database.transaction() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO outbox (result_id, kind, sop_class_uid, sop_instance_uid, "
                "destination, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self.wake.set()

    def has(self, result_id: int, destination: str) -> bool:
        return self.database.one("SELECT 1 FROM outbox WHERE result_id = ? AND destination = ?",
                                 (result_id, destination)) is not None

    def due(self, destination: str, now: float | None = None) -> list[Item]:
        rows = self.database.all(
            "SELECT id, kind, sop_class_uid, sop_instance_uid, data FROM outbox WHERE sent_at "
            "IS NULL AND destination = ? AND next_attempt <= ? ORDER BY id LIMIT ?",
            (destination, time.time() if now is None else now, BATCH))
        return [Item(*row) for row in rows]

    def sent(self, item_id: int) -> None:
        # The bytes are dropped once the PACS has them: an SD card is small.
        self.database.execute("UPDATE outbox SET sent_at = ?, data = NULL, last_error = NULL "
                              "WHERE id = ?", (_now(), item_id))

    def failed(self, item_id: int, error: str) -> float:
        """Records a failed attempt; returns the seconds until the next one."""
        with self.database.transaction() as connection:
            attempts = connection.execute("SELECT attempts FROM outbox WHERE id = ?",
                                          (item_id,)).fetchone()[0] + 1
            wait = min(self.retry_first_s * 2 ** (attempts - 1), self.retry_max_s)
            connection.execute("UPDATE outbox SET attempts = ?, next_attempt = ?, last_error = ? "
                               "WHERE id = ?", (attempts, time.time() + wait, error[:500],
                                                item_id))
        return wait

    def next_due_in(self, destination: str) -> float | None:
        row = self.database.one("SELECT MIN(next_attempt) FROM outbox WHERE sent_at IS NULL "
                                "AND destination = ?", (destination,))
        return None if row[0] is None else max(0.0, row[0] - time.time())

    def summary(self) -> dict:
        """Counts for the page and /api/dicom: waiting, sent, and the last error."""
        waiting, sent = self.database.one(
            "SELECT COALESCE(SUM(sent_at IS NULL), 0), COALESCE(SUM(sent_at IS NOT NULL), 0) "
            "FROM outbox")
        last = self.database.one("SELECT last_error FROM outbox WHERE sent_at IS NULL AND "
                                 "last_error IS NOT NULL ORDER BY id DESC LIMIT 1")
        return {"waiting": waiting, "sent": sent, "last_error": last[0] if last else None}

    def for_result(self, result_id: int) -> list[dict]:
        rows = self.database.all("SELECT kind, sop_instance_uid, destination, attempts, "
                                 "last_error, sent_at FROM outbox WHERE result_id = ? ORDER BY id",
                                 (result_id,))
        return [dict(row) for row in rows]


class Delivery:
    """A thread that sends what is due to one destination until stopped.

    send(destination, items) -> {item id: None (stored) or an error text}; raises when no
    association could be made (the PACS is down): every item then waits its backoff."""

    def __init__(self, outbox: Outbox, destination, send):
        self.outbox, self.destination, self.send = outbox, destination, send
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cxr-dicom-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.outbox.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        key = str(self.destination)
        while not self._stop.is_set():
            try:
                items = self.outbox.due(key)
                if items:
                    self._deliver(items)
                    continue
                wait = self.outbox.next_due_in(key)
            except Exception:  # the thread must outlive any one failure; it retries later
                log.exception("cxr-edge dicom: the outbox round failed")
                wait = self.outbox.retry_first_s
            self.outbox.wake.wait(self.outbox.retry_max_s if wait is None else wait)
            self.outbox.wake.clear()

    def _deliver(self, items: list[Item]) -> None:
        try:
            outcomes = self.send(self.destination, items)
        except Exception as err:
            text = f"{type(err).__name__}: {err}"
            for item in items:
                wait = self.outbox.failed(item.id, text)
            log.warning("cxr-edge dicom: %s is unreachable (%s); %d result objects wait, next "
                        "try in %.0f s", self.destination, text, len(items), wait)
            return
        for item in items:
            error = outcomes.get(item.id, "no answer from the PACS")
            if error is None:
                self.outbox.sent(item.id)
            else:
                self.outbox.failed(item.id, error)
                log.warning("cxr-edge dicom: %s refused %s %s: %s", self.destination, item.kind,
                            item.sop_instance_uid, error)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
