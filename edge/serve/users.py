"""The station's named users: name, role, scrypt password hash, and the sha256 of an API token.

Standard library only: `cxr-edge users` (edge/commands/users.py) and check_bind use this
without the web stack. Every change is written with its audit row in one transaction; the
audit row names the user and role, never a hash or a token.

A stored password describes itself, `scrypt$N$r$p$SALT$HASH` (base64 salt and hash), so a
later change of parameters still verifies the passwords set before it.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
from pathlib import Path

from edge.serve.audit import AuditLog
from edge.serve.database import DB_FILENAME, Database
from edge.serve.roles import ADMIN, ROLES
from edge.serve.sessions import SCHEMA as SESSIONS_SCHEMA
from edge.serve.sessions import Sessions

# scrypt's cost: 2**14 x 8 needs 16 MiB and ~50 ms on a PC (a few hundred on a Pi) per check,
# which makes an offline guess as slow while a login still feels instant.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
SCRYPT_MAXMEM = 64 * 1024 * 1024  # a stored hash asking for more is refused, not computed
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
TOKEN_BYTES = 32
TOKEN_PREFIX = "cxr_"  # recognisable in a config file or a secret scanner
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
RESERVED_NAMES = ("kiosk", "access-code")  # the principals of the modes without named users

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'reviewer', 'admin')),
    password TEXT NOT NULL,
    token_sha256 TEXT UNIQUE,
    created_at TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
"""


class UserError(ValueError):
    """A refused change (bad name, short password, unknown user), said for people."""


class Users:
    def __init__(self, database: Database, audit: AuditLog):
        self.database, self.audit = database, audit
        database.script(SCHEMA)
        database.script(SESSIONS_SCHEMA)
        self.sessions = Sessions(database)

    def any(self) -> bool:
        """True once the station has named users (then everyone logs in)."""
        return self.database.one("SELECT 1 FROM users LIMIT 1") is not None

    def get(self, name: str) -> dict | None:
        row = self.database.one("SELECT * FROM users WHERE name = ?", (_key(name),))
        return None if row is None else _public(row)

    def list(self) -> list[dict]:
        return [_public(row) for row in self.database.all("SELECT * FROM users ORDER BY name")]

    def add(self, name: str, role: str, password: str, by: str) -> dict:
        name = check_name(name)
        check_role(role)
        check_password(password)
        now = _now()
        with self.database.transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"there is already a user {name!r} (cxr-edge users passwd or "
                                "role to change it)")
            db.execute("INSERT INTO users (name, role, password, created_at, changed_at) "
                       "VALUES (?, ?, ?, ?, ?)", (name, role, hash_password(password), now, now))
            user = self._changed(db, name, by, "user.add", None)
        return user

    def set_password(self, name: str, password: str, by: str) -> dict:
        """A new password ends the user's sessions and revokes their API token."""
        check_password(password)
        with self.database.transaction() as db:
            before = self._existing(db, name)
            name = before["name"]
            db.execute("UPDATE users SET password = ?, token_sha256 = NULL, changed_at = ? "
                       "WHERE name = ?", (hash_password(password), _now(), name))
            self.sessions.end_all(name, db)
            return self._changed(db, name, by, "user.passwd", before)

    def set_role(self, name: str, role: str, by: str) -> dict:
        check_role(role)
        with self.database.transaction() as db:
            before = self._existing(db, name)
            name = before["name"]
            db.execute("UPDATE users SET role = ?, changed_at = ? WHERE name = ?",
                       (role, _now(), name))
            return self._changed(db, name, by, "user.role", before)

    def remove(self, name: str, by: str) -> dict:
        with self.database.transaction() as db:
            before = self._existing(db, name)
            name = before["name"]
            self.sessions.end_all(name, db)
            db.execute("DELETE FROM users WHERE name = ?", (name,))
            self.audit.record(by, "user.remove", f"user {name}", before, None, connection=db)
        return before

    def new_token(self, name: str, by: str) -> str:
        """A new API token for `name`, replacing any earlier one; returned once, kept hashed."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        with self.database.transaction() as db:
            before = self._existing(db, name)
            name = before["name"]
            db.execute("UPDATE users SET token_sha256 = ?, changed_at = ? WHERE name = ?",
                       (token_digest(token), _now(), name))
            self._changed(db, name, by, "user.token", before)
        return token

    def check_password(self, name: str, password: str) -> dict | None:
        """The user when the password is theirs, else None; as slow for an unknown name."""
        row = self.database.one("SELECT * FROM users WHERE name = ?", (_key(name),))
        matches = verify_password(row["password"] if row else _dummy_hash(), password)
        return _public(row) if row is not None and matches else None

    def by_token(self, token: str) -> dict | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        row = self.database.one("SELECT * FROM users WHERE token_sha256 = ?",
                                (token_digest(token),))
        return None if row is None else _public(row)

    def admins(self) -> int:
        return self.database.one("SELECT COUNT(*) FROM users WHERE role = ?", (ADMIN,))[0]

    def _existing(self, db: sqlite3.Connection, name: str) -> dict:
        row = db.execute("SELECT * FROM users WHERE name = ?", (_key(name),)).fetchone()
        if row is None:
            raise UserError(f"no user {name!r} (cxr-edge users list shows who there is)")
        return _public(row)

    def _changed(self, db: sqlite3.Connection, name: str, by: str, action: str,
                 before: dict | None) -> dict:
        after = _public(db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone())
        self.audit.record(by, action, f"user {name}", before, after, connection=db)
        return after


def has_users(data_dir: str | os.PathLike) -> bool:
    """Whether the station in data_dir has named users, read without creating anything."""
    path = Path(data_dir) / DB_FILENAME
    if not path.is_file():
        return False
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
            return db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # no users table yet (a station from before users), or unreadable
        return False


def check_name(name: str) -> str:
    name = _key(name)
    if not NAME_PATTERN.match(name):
        raise UserError(f"a user name is 1-32 lower-case letters, digits, '.', '_' or '-', "
                        f"starting with a letter or digit; not {name[:40]!r}")
    if name in RESERVED_NAMES:
        raise UserError(f"{name!r} is reserved (it names the station's mode without users)")
    return name


def check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"the role is one of {', '.join(ROLES)}; not {role!r}")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password has {len(password)} characters; it needs at least "
                        f"{MIN_PASSWORD_LENGTH} (a few words together are easy to remember)")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt),
                     _b64(digest)])


def verify_password(stored: str, password: str) -> bool:
    """Compares in constant time; a malformed or too costly stored hash never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        n, r, p, salt, digest = int(n), int(r), int(p), _unb64(salt), _unb64(digest)
    except ValueError:
        return False
    if scheme != "scrypt" or 128 * r * (n + p) > SCRYPT_MAXMEM or len(password) > \
            MAX_PASSWORD_LENGTH:
        return False
    try:
        given = _scrypt(password, salt, n, r, p, len(digest))
    except ValueError:
        return False
    return hmac.compare_digest(given, digest)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=SCRYPT_MAXMEM + 1024 * 1024)


def _key(name: str) -> str:
    """Names are stored in lower case: "Ana" on a phone's keyboard is ana."""
    return name.strip().lower()


def _public(row: sqlite3.Row) -> dict:
    """What may be shown and audited: never the hash or the token's digest."""
    return {"name": row["name"], "role": row["role"], "created_at": row["created_at"],
            "has_token": row["token_sha256"] is not None}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (ValueError, TypeError) as err:
        raise ValueError("not base64") from err


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@functools.cache
def _dummy_hash() -> str:
    """Checked for an unknown name, so that it takes as long as a known one."""
    return hash_password(secrets.token_urlsafe(16))
