"""The model being served: verified when it loads, swapped for a newer push that verifies.

--model may name a pushed model directory, a bare .tflite, the pusher's destination (its LATEST
file names the current version) or that destination's `latest` link. Every few seconds the
pointer and the files are looked at again; when they changed, the new model is verified
(edge.manifest.load_model_dir: checksums, class order, signature with trusted keys) and only
then swapped in. A model that does not verify is refused and the old one keeps serving.

The served files are a private copy, verified again after copying: what was checked is what
runs, and editing or truncating the source directory later cannot reach the running
interpreter (LiteRT maps the model file into memory).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edge import signing, spec
from edge.classifier import Classifier, ClassifierOptions
from edge.manifest import ManifestError, load_model_dir
from edge.runtime import RuntimeUnavailable

LATEST_FILE, VERSIONS_DIR = spec.LATEST_FILE, spec.VERSIONS_DIR  # the pusher's layout

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    classifier: Classifier
    version: str
    info: dict  # what the API and the provenance page show (no filesystem paths)
    fingerprint: tuple
    copy_dir: Path | None = None  # the private copy; removed when the model is retired


@dataclass
class ModelSlot:
    """Holds the current ServedModel; `check()` swaps in a newer one that verifies."""

    source: Path
    options: ClassifierOptions
    _current: ServedModel | None = None
    _seen: tuple | None = None
    last_error: dict | None = None  # the last refused load: when and why
    events: list = field(default_factory=list)  # recent loads and refusals, newest last
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def current(self) -> ServedModel:
        if self._current is None:
            raise RuntimeError("no model loaded yet: call load() first")
        return self._current

    def load(self) -> ServedModel:
        """The first load: raises ManifestError/RuntimeUnavailable (the server does not start)."""
        target = resolve(self.source)
        fingerprint = files_fingerprint(target)
        served = open_verified(target, self.options, fingerprint)
        self._current, self._seen = served, fingerprint
        self._event("loaded", served.version)
        return served

    def check(self) -> str | None:
        """Looks for a new push; returns "loaded", "refused" or None (nothing changed)."""
        with self._lock:
            try:
                target = resolve(self.source)
                fingerprint = files_fingerprint(target)
            except (OSError, ManifestError) as err:
                return self._refuse(("unresolved", str(err)), err)
            if fingerprint == self._seen:
                if self._current and fingerprint == self._current.fingerprint:
                    self.last_error = None  # back to what is being served
                return None
            self._seen = fingerprint  # a broken push is reported once, not every few seconds
            try:
                served = open_verified(target, self.options, fingerprint)
            except (ManifestError, RuntimeUnavailable, OSError, ValueError) as err:
                return self._refuse(fingerprint, err)
            retired, self._current = self._current, served
            self.last_error = None
            self._event("loaded", served.version)
            log.warning("cxr-edge serve: now serving model %s (was %s)", served.version,
                        retired.version if retired else None)
            if retired is not None:
                retire(retired)
            return "loaded"

    def close(self) -> None:
        if self._current is not None:
            retire(self._current)

    def _refuse(self, fingerprint, err: Exception) -> str | None:
        if self.last_error and self.last_error.get("fingerprint") == repr(fingerprint):
            return None
        message = without_paths(str(err))
        self.last_error = {"at": _now(), "error": message, "fingerprint": repr(fingerprint)}
        self._event("refused", message)
        log.error("cxr-edge serve: refused the new model, still serving %s: %s",
                  self._current.version if self._current else None, err)
        return "refused"

    def _event(self, kind: str, detail: str) -> None:
        self.events = (self.events + [{"at": _now(), "event": kind, "detail": detail}])[-20:]


def resolve(source: Path) -> Path:
    """The model directory (or file) `source` stands for right now."""
    pointer = source / LATEST_FILE
    if source.is_dir() and pointer.is_file() and not (source / spec.MANIFEST_FILENAME).exists():
        name = pointer.read_text().strip()
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ManifestError(f"{pointer} names {name!r}, not a version directory name")
        return source / VERSIONS_DIR / name
    return Path(os.path.realpath(source))  # follows `latest` to the version it points at now


def files_fingerprint(target: Path) -> tuple:
    """What changes when a push or an edit touches the model: path, names, sizes, times."""
    if target.is_dir():
        entries = sorted(os.scandir(target), key=lambda entry: entry.name)
        stats = [(e.name, e.stat(follow_symlinks=True)) for e in entries if e.is_file()]
    else:
        stats = [(target.name, target.stat())]
    return (str(target),) + tuple((name, s.st_size, s.st_mtime_ns, s.st_ino) for name, s in stats)


def open_verified(target: Path, options: ClassifierOptions, fingerprint: tuple) -> ServedModel:
    """Verifies target, copies its files privately, verifies and opens the copy."""
    original = load_model_dir(target, threads=1, trusted_keys=options.trusted_keys)
    copy_dir = Path(tempfile.mkdtemp(prefix="cxr-serve-model-"))
    try:
        opened = _copy_model(original, target, copy_dir)
        classifier = Classifier.open(opened, options)
        if classifier.model.manifest != original.manifest:
            raise ManifestError(f"{target} changed while it was being loaded; trying again")
    except BaseException:
        shutil.rmtree(copy_dir, ignore_errors=True)
        raise
    version = _version_name(target)
    return ServedModel(classifier=classifier, version=version,
                       info=describe(classifier, version), fingerprint=fingerprint,
                       copy_dir=copy_dir)


def retire(served: ServedModel) -> None:
    # The worker may still be running the old interpreter: unlinking mapped files is safe.
    if served.copy_dir is not None:
        shutil.rmtree(served.copy_dir, ignore_errors=True)


def describe(classifier: Classifier, version: str) -> dict:
    """The model's provenance for the API and the page: the manifest's story, no paths."""
    model = classifier.model
    manifest = model.manifest or {}
    quantization = model.runner.quantization()
    return {
        "version": version,
        "variant": manifest.get("variant"),
        "quantization": quantization.get("scheme"),
        "sha256": manifest.get("sha256"),
        "verified_manifest": model.manifest is not None,
        "signed_by": model.signed_by,
        "created_at": manifest.get("created_at"),
        "pipeline_run_id": manifest.get("pipeline_run_id"),
        "data_fingerprint": manifest.get("data_fingerprint"),
        "synthetic_data": manifest.get("synthetic_data"),
        "class_names": list(classifier.class_names),
        "input_size": classifier.input_size,
        "runtime": classifier.runtime,
        "has_attention": classifier.has_attention,
        "has_ood_score": classifier.has_ood_score,
        "referral": {**classifier.referral, "refer_below": classifier.refer_below,
                     "ood_threshold": classifier.ood_threshold},  # the values in effect
        "metrics": manifest.get("metrics") or {},
        "loaded_at": _now(),
    }


def _copy_model(original, target: Path, copy_dir: Path) -> Path:
    if original.manifest is None:  # a bare .tflite (no trusted key was given)
        destination = copy_dir / target.name
        shutil.copyfile(target, destination)
        return destination
    names = [spec.MANIFEST_FILENAME, spec.LABELS_FILENAME, signing.SIGNATURE_FILENAME,
             original.manifest["model_file"]]
    for name in names:
        source = target / name
        if source.is_file():  # load_model_dir refused links out of the directory
            shutil.copyfile(source, copy_dir / name)
    return copy_dir


def _version_name(target: Path) -> str:
    """The pusher's version (its directory name), else the directory's or file's name."""
    return target.name if target.is_dir() else target.stem


def without_paths(message: str) -> str:
    """An error for the page and the API: each absolute path cut to its last part (the log
    keeps the whole message), so no response reveals the server's folders."""
    return re.sub(r"(?<![\w.])/(?:[^\s'\"/:,]+/)*([^\s'\",:]+)", r"\1", message)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
