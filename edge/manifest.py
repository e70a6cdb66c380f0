"""The pushed model directory: model.tflite + labels.txt + manifest.json, written and verified.

The Pusher writes it with `write_model_dir`; the device opens it with `load_model_dir`, which
refuses a directory whose files disagree (checksum, input size, class order, class count) with
a message that says which file to fix. The directory is closed: the manifest can only name a
file inside it, and no file may be a symbolic link that leads out of it. Given trusted public
keys, it also refuses a directory without a valid signature (edge.signing). A bare .tflite path
is accepted too, without a manifest, unless a trusted key is given.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge import signing, spec
from edge.runtime import ModelRunner

FORMAT_VERSION = 1

# How an image becomes the model's input (edge.preprocess / the trainer's TF twin).
PREPROCESSING = {
    "color": "grayscale, 8-bit (edge.imageio.load_grayscale)",
    "resize": "bilinear",
    "antialias": True,
    "keep_aspect_ratio": False,
    "value_range": [0, 255],
    "standardization": "inside the model",
}


class ManifestError(ValueError):
    """A model directory whose files disagree with each other or with the model."""


@dataclass
class LoadedModel:
    """A verified model ready to run: its runner, class names and manifest (None if bare)."""

    runner: ModelRunner
    class_names: tuple[str, ...]
    manifest: dict | None
    source: Path  # what the user passed: the directory or the .tflite file
    signed_by: str | None = None  # the trusted key's id when a signature was verified

    @property
    def input_size(self) -> int:
        return self.runner.input_size


def write_model_dir(
    out_dir: str | os.PathLike,
    model: str | os.PathLike | bytes,
    *,
    class_names: tuple[str, ...] | list[str] = spec.CLASS_NAMES,
    variant: str,
    metrics: dict | None = None,
    data_fingerprint: str | None = None,
    pipeline_run_id: str | None = None,
    synthetic_data: bool = False,
    created_at: str | None = None,
    referral: dict | None = None,
) -> Path:
    """Writes model.tflite, labels.txt and manifest.json into out_dir; returns the manifest path.

    referral: the thresholds chosen on eval when the model was trained (trainer/referral.py):
    ood_threshold, refer_below, temperature, method... The device reads them from here.

    The input size and dtype are read from the model itself, and the class count is checked
    against its probabilities output, so a manifest cannot describe a different model.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / spec.MODEL_FILENAME
    if isinstance(model, (bytes, bytearray)):
        model_path.write_bytes(model)
    elif Path(model).resolve() != model_path.resolve():
        shutil.copyfile(model, model_path)
    runner = ModelRunner(model_path)
    if runner.class_count != len(class_names):
        raise ManifestError(
            f"the model outputs {runner.class_count} classes but {len(class_names)} class "
            f"names were given: {list(class_names)}"
        )
    (out / spec.LABELS_FILENAME).write_text("".join(f"{name}\n" for name in class_names))
    manifest = {
        "format_version": FORMAT_VERSION,
        "model_file": spec.MODEL_FILENAME,
        "sha256": file_sha256(model_path),
        "class_names": list(class_names),
        "input_size": runner.input_size,
        "input": {
            "dtype": "float32",  # what the caller feeds; the runner quantizes if needed
            "tensor_dtype": runner.input.dtype,
            "value_range": [0, 255],
            "channels": 1,
            "layout": "NHWC",
            "shape": list(runner.input.shape),
        },
        "preprocessing": PREPROCESSING,
        "variant": variant,
        "referral": referral or {},
        "metrics": metrics or {},
        "data_fingerprint": data_fingerprint,
        "pipeline_run_id": pipeline_run_id,
        "synthetic_data": bool(synthetic_data),
        "created_at": created_at or _now(),
    }
    manifest_path = out / spec.MANIFEST_FILENAME
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest_path


def load_model_dir(
    path: str | os.PathLike,
    *,
    threads: int | None = None,
    trusted_keys: tuple[str | os.PathLike, ...] | list = (),
) -> LoadedModel:
    """Opens a pushed directory (verified against its manifest) or a bare .tflite file.

    trusted_keys: Ed25519 public key files (PEM). When given, only a directory whose manifest
    is signed by one of them is accepted.
    """
    source = Path(path)
    public_keys = _load_trusted_keys(trusted_keys)
    if source.is_dir():
        return _load_verified_dir(source, threads, public_keys)
    if not source.is_file():
        raise ManifestError(f"{source} is neither a model directory nor a .tflite file")
    if public_keys:
        raise ManifestError(
            f"{source} is a bare model file, but a trusted key was given: only a model "
            "directory with a signed manifest is accepted"
        )
    runner = _open_runner(source, threads)
    labels = source.with_name(spec.LABELS_FILENAME)
    if labels.is_file():
        class_names = _read_labels(labels)
    elif runner.class_count == len(spec.CLASS_NAMES):
        class_names = tuple(spec.CLASS_NAMES)
    else:
        class_names = tuple(f"class_{i}" for i in range(runner.class_count))
    _check_class_count(class_names, runner, labels if labels.is_file() else source)
    return LoadedModel(runner=runner, class_names=class_names, manifest=None, source=source)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_verified_dir(directory: Path, threads: int | None, public_keys: list) -> LoadedModel:
    manifest_path = directory / spec.MANIFEST_FILENAME
    if not manifest_path.is_file():
        raise ManifestError(
            f"{directory} has no {spec.MANIFEST_FILENAME}; pass the .tflite file itself to run "
            "it unverified"
        )
    _check_inside(directory, manifest_path)
    # Read once: the bytes whose signature is checked are the bytes that are parsed.
    manifest_bytes = manifest_path.read_bytes()
    signed_by = None
    if public_keys:
        try:
            signed_by = signing.verify_manifest(
                manifest_bytes, directory / signing.SIGNATURE_FILENAME, public_keys
            )
        except signing.SignatureError as err:
            raise ManifestError(str(err)) from err
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{manifest_path} is not valid JSON: {err}") from err
    if not isinstance(manifest, dict):
        raise ManifestError(f"{manifest_path} is not a JSON object")
    missing = [key for key in ("format_version", "model_file", "sha256", "class_names",
                               "input_size") if key not in manifest]
    if missing:
        raise ManifestError(f"{manifest_path} lacks {missing}")
    _check_types(manifest, manifest_path)
    if manifest["format_version"] != FORMAT_VERSION:
        raise ManifestError(
            f"{manifest_path} has format_version {manifest['format_version']}; this runner "
            f"reads version {FORMAT_VERSION}"
        )
    model_path = _model_file_in(directory, manifest["model_file"], manifest_path)
    actual = file_sha256(model_path)
    if actual != manifest["sha256"]:
        raise ManifestError(
            f"{model_path} does not match its manifest: sha256 {actual[:16]}..., manifest "
            f"says {str(manifest['sha256'])[:16]}... The file was changed or copied "
            "incompletely; push the model again."
        )
    class_names = tuple(manifest["class_names"])
    labels_path = directory / spec.LABELS_FILENAME
    if labels_path.is_file() or labels_path.is_symlink():
        _check_inside(directory, labels_path)
        labels = _read_labels(labels_path)
        if labels != class_names:
            raise ManifestError(
                f"{labels_path} lists {list(labels)} but the manifest says "
                f"{list(class_names)}: class order must match the model's outputs"
            )
    runner = _open_runner(model_path, threads)
    _check_class_count(class_names, runner, manifest_path)
    if runner.input_size != manifest["input_size"]:
        raise ManifestError(
            f"the manifest says input size {manifest['input_size']} but {model_path.name} "
            f"takes {runner.input_size}x{runner.input_size} images"
        )
    expected_dtype = manifest.get("input", {}).get("tensor_dtype")
    if expected_dtype is not None and expected_dtype != runner.input.dtype:
        raise ManifestError(
            f"the manifest says the input tensor is {expected_dtype} but {model_path.name} "
            f"takes {runner.input.dtype}"
        )
    return LoadedModel(runner=runner, class_names=class_names, manifest=manifest,
                       source=directory, signed_by=signed_by)


def _check_types(manifest: dict, manifest_path: Path) -> None:
    """A hand-edited or forged manifest gets a ManifestError, not a crash further down."""
    names = manifest["class_names"]
    wrong = [
        key
        for key, ok in (
            ("sha256", isinstance(manifest["sha256"], str)),
            ("class_names", isinstance(names, list) and all(isinstance(n, str) for n in names)),
            ("input_size", type(manifest["input_size"]) is int),
            ("input", isinstance(manifest.get("input", {}), dict)),
            ("referral", _valid_referral(manifest.get("referral", {}))),
        )
        if not ok
    ]
    if wrong:
        raise ManifestError(
            f"{manifest_path} has values of the wrong type for {wrong}: "
            + ", ".join(f"{key}={manifest.get(key)!r}" for key in wrong)
        )


def _valid_referral(referral) -> bool:
    """{} or thresholds the classifier can use: ood_threshold > 0, refer_below in 0..1,
    unstable_below in -1..1 (a margin of probabilities)."""
    if not isinstance(referral, dict):
        return False
    ood = referral.get("ood_threshold", spec.DEFAULT_OOD_THRESHOLD)
    below = referral.get("refer_below", 0.0)
    unstable = referral.get("unstable_below", 0.0)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                  for v in (ood, below, unstable))
    return numbers and ood > 0 and 0.0 <= below <= 1.0 and -1.0 <= unstable <= 1.0


def _model_file_in(directory: Path, name, manifest_path: Path) -> Path:
    """The model file the manifest names: a plain file name whose file stays in the directory."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or any(separator in name for separator in ("/", "\\", "\0"))
    ):
        raise ManifestError(
            f"{manifest_path} names model_file {name!r}; it must be the name of a file in the "
            "model directory itself (no folders, no absolute path, no '..')"
        )
    model_path = directory / name
    if not model_path.exists() and not model_path.is_symlink():
        raise ManifestError(f"{model_path} (named by the manifest) does not exist")
    _check_inside(directory, model_path)
    return model_path


def _check_inside(directory: Path, path: Path) -> None:
    """Refuses a file that is not a regular file inside directory once symlinks are followed."""
    real_dir, real = directory.resolve(), path.resolve()
    if real_dir not in real.parents:
        raise ManifestError(
            f"{path} is a symbolic link to {real}, outside the model directory {real_dir}: a "
            "model directory must hold its own files"
        )
    if not real.is_file():
        raise ManifestError(f"{path} is not a regular file")


def _load_trusted_keys(paths) -> list:
    try:
        return [signing.load_public_key(path) for path in paths]
    except signing.SignatureError as err:
        raise ManifestError(str(err)) from err


def _open_runner(model_path: Path, threads: int | None) -> ModelRunner:
    try:
        return ModelRunner(model_path, threads=threads)
    except ValueError as err:
        raise ManifestError(str(err)) from err


def _check_class_count(class_names: tuple[str, ...], runner: ModelRunner, named_by: Path) -> None:
    if runner.class_count != len(class_names):
        raise ManifestError(
            f"{named_by} lists {len(class_names)} classes {list(class_names)} but "
            f"{runner.model_path.name} outputs {runner.class_count} probabilities"
        )


def _read_labels(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
