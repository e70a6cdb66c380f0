"""File access for artifact URIs and user-given roots: local paths, gs://, s3://, ram://.

Every read and write in components/ and pipelines/ whose path may be an artifact URI or a
user-given root goes through `tfx.dsl.io.fileio` (TensorFlow's gfile when TensorFlow is
installed), so a pipeline root or push destination on a bucket works as a local folder does.
What cannot work on a remote file system (a symbolic link, a library that opens a local file
by name) is done in a local temporary folder and copied, or refused by `require_local` with a
message naming the path and why.
"""

from __future__ import annotations

import json
import os

from tfx.dsl.io import fileio


class LocalPathRequired(ValueError):
    """A path that must be on this machine's file system was given as a remote URI."""


class ArtifactFileError(ValueError):
    """An artifact's file is there but is not what its producer writes."""


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URI with a scheme other than file:// (gs://, s3://, hdfs://, ram://…)."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def require_local(path: str | os.PathLike, what: str, why: str) -> str:
    """Returns path unchanged when local; raises LocalPathRequired naming it and why."""
    if is_remote(path):
        raise LocalPathRequired(f"{what} {os.fspath(path)!r} must be a local path: {why}")
    return os.fspath(path)


def absolute(path: str) -> str:
    """os.path.abspath for local paths; a URI is already absolute (abspath would mangle it)."""
    return path if is_remote(path) else os.path.abspath(path)


def write_text(path: str, text: str) -> str:
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "w") as handle:
        handle.write(text)
    return path


def write_bytes(path: str, data: bytes) -> str:
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "wb") as handle:
        handle.write(data)
    return path


def read_bytes(path: str) -> bytes:
    with fileio.open(path, "rb") as handle:
        return handle.read()


def read_json(path: str) -> dict | None:
    """The JSON file at path, or None when there is no such file."""
    if not fileio.exists(path) or fileio.isdir(path):
        return None
    with fileio.open(path, "r") as handle:
        return json.loads(handle.read())


def read_record(directory: str | None, filename: str, required: tuple[str, ...] = ()
                ) -> dict | None:
    """A producer's JSON record in an artifact directory, or None when there is none.

    Producers wrap this in their own reader (they own the file name and its keys); a record
    without one of `required` raises ArtifactFileError naming the file and the keys."""
    if not directory:
        return None
    path = os.path.join(directory, filename)
    record = read_json(path)
    if record is None:
        return None
    if not isinstance(record, dict):
        raise ArtifactFileError(f"{path}: expected a JSON object, got {type(record).__name__}")
    absent = [key for key in required if key not in record]
    if absent:
        raise ArtifactFileError(f"{path}: missing {absent} (its producer writes them: a file "
                                "from another version or a damaged one)")
    return record


def missing_reason(directory: str | None, filename: str, producer: str) -> str:
    """Why a consumer has no record: the producer did not run, or wrote no such file."""
    if not directory:
        return f"no {filename}: {producer} did not run (or is not wired to this component)"
    return f"no {filename} in {producer}'s output {directory}"


def write_json(path: str, value, **dump_args) -> str:
    return write_text(path, json.dumps(value, **dump_args))


def relative(path: str, root: str) -> str:
    """path below root, '/'-separated (os.path.relpath would resolve a URI against the cwd)."""
    root = root.rstrip("/")
    if not path.startswith(root + "/"):
        raise ValueError(f"{path!r} is not under {root!r}")
    return path[len(root) + 1:]


def upload_dir(local_dir: str, destination: str) -> None:
    """Copies a local folder's files (recursively) to destination, any file system."""
    for folder, _, filenames in os.walk(local_dir):
        inner = os.path.relpath(folder, local_dir)
        target = destination if inner == "." else os.path.join(destination, inner)
        fileio.makedirs(target)
        for name in sorted(filenames):
            fileio.copy(os.path.join(folder, name), os.path.join(target, name), overwrite=True)
