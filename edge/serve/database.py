"""The station's one SQLite file: results, findings, users, calibrations and the audit log.

One connection, shared by the worker thread and the request handlers behind one lock, so a
change and its audit row are written in one transaction (`transaction()`): either both are
kept or neither. The file is created 0600 in a 0700 data dir before SQLite opens it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path

DB_FILENAME = "history.sqlite3"


class Database:
    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.data_dir / DB_FILENAME
        if not self.path.exists():  # created 0600 before SQLite opens it (its -wal/-shm follow)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        for path, mode in ((self.data_dir, 0o700), (self.path, 0o600)):
            if path.stat().st_uid == os.getuid():  # patient data: ours alone, even if it existed
                path.chmod(mode)
        self.lock = threading.RLock()
        self.connection = sqlite3.connect(self.path, check_same_thread=False,
                                          isolation_level=None)
        self.connection.row_factory = sqlite3.Row
        with self.lock:
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.execute("PRAGMA foreign_keys=ON")

    def script(self, sql: str) -> None:
        """Creates a module's tables (CREATE ... IF NOT EXISTS)."""
        with self.lock:
            self.connection.executescript(sql)

    def execute(self, sql: str, values=()) -> sqlite3.Cursor:
        with self.lock:
            return self.connection.execute(sql, values)

    def one(self, sql: str, values=()) -> sqlite3.Row | None:
        with self.lock:
            return self.connection.execute(sql, values).fetchone()

    def all(self, sql: str, values=()) -> list[sqlite3.Row]:
        with self.lock:
            return self.connection.execute(sql, values).fetchall()

    @contextlib.contextmanager
    def transaction(self):
        """Everything inside is written together or not at all (nesting joins the outer one)."""
        with self.lock:
            if self.connection.in_transaction:
                yield self.connection
                return
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.connection.close()
