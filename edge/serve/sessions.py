"""Login sessions of named users, kept in the station's SQLite so every process agrees.

The cookie carries a random id; the table keeps only its sha256, so a copy of the database
opens no session. A session ends after `idle_s` without a request or `max_s` after login,
whichever comes first; logging out, a new password or removing the user ends it at once.
Times are wall-clock seconds, because another process (the CLI) and a restart read them too.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time

from edge.serve.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created REAL NOT NULL,
    seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_name ON sessions (name);
"""
ID_BYTES = 32
# A request refreshes `seen` at most this often (a write per request would be wasted work); a
# tiny idle lifetime (tests) refreshes proportionally more often.
SEEN_RESOLUTION_S = 30.0


class Sessions:
    def __init__(self, database: Database):
        self.database = database

    def open(self, name: str, max_s: float, idle_s: float, now: float | None = None) -> str:
        """A new session for `name`; returns the id for the cookie (never stored as such)."""
        now = time.time() if now is None else now
        session_id = secrets.token_urlsafe(ID_BYTES)
        with self.database.transaction() as db:
            db.execute("DELETE FROM sessions WHERE created < ? OR seen < ?",
                       (now - max_s, now - idle_s))  # expired ones, anyone's
            db.execute("INSERT INTO sessions (id_sha256, name, created, seen) VALUES (?, ?, ?, ?)",
                       (_digest(session_id), name, now, now))
        return session_id

    def find(self, session_id: str, max_s: float, idle_s: float,
             now: float | None = None) -> str | None:
        """The user name of a live session (its idle clock restarts), or None."""
        now = time.time() if now is None else now
        key = _digest(session_id)
        row = self.database.one("SELECT name, created, seen FROM sessions WHERE id_sha256 = ?",
                                (key,))
        if row is None:
            return None
        if row["created"] < now - max_s or row["seen"] < now - idle_s:
            self.database.execute("DELETE FROM sessions WHERE id_sha256 = ?", (key,))
            return None
        if now - row["seen"] >= min(SEEN_RESOLUTION_S, idle_s / 4):
            self.database.execute("UPDATE sessions SET seen = ? WHERE id_sha256 = ?", (now, key))
        return row["name"]

    def end(self, session_id: str) -> None:
        self.database.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_digest(session_id),))

    @staticmethod
    def end_all(name: str, connection: sqlite3.Connection) -> int:
        """Ends every session of `name` inside the caller's transaction; returns how many."""
        return connection.execute("DELETE FROM sessions WHERE name = ?", (name,)).rowcount


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
