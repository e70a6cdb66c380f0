"""Patient identifiers stay on the device, and by default not even there: keyed hashes.

A keyed hash (HMAC-SHA256 with a random key kept in the data dir) lets the station group a
patient's or an order's images and find them again from the identifier a clinician types, while
the history alone, copied or exported, names no one. With --keep-identifiers the values are
stored as sent.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILENAME = "identifier.key"
HASH_CHARS = 32  # 128 bits: no collisions among a clinic's patients


class IdentifierKeeper:
    def __init__(self, data_dir: str | os.PathLike, keep: bool = False):
        self.keep = keep
        self._key = _station_key(Path(data_dir) / KEY_FILENAME)

    def fields(self, dataset) -> dict:
        """The history's identifier columns for one received dataset."""
        patient = _value(dataset, "PatientID")
        accession = _value(dataset, "AccessionNumber")
        return {"patient_id_hash": self.digest(patient), "accession_hash": self.digest(accession),
                "patient_id": patient if self.keep else None,
                "accession_number": accession if self.keep else None}

    def digest(self, value: str | None) -> str | None:
        if not value:
            return None
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_CHARS]


def _station_key(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    key = secrets.token_bytes(32)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())  # a key lost to a power cut would orphan every stored hash
    return key


def _value(dataset, keyword: str) -> str | None:
    try:
        value = str(dataset.get(keyword) or "").strip()
    except Exception:  # a damaged identifier is treated as absent
        return None
    return value or None
