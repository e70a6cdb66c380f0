"""EdgePusher: pushes the selected TFLite variant of a blessed model to a serving directory.

Pushes only when the Evaluator blessed the model AND the Quantizer selected a variant. Each push
is a versioned directory (UTC timestamp) holding model.tflite, labels.txt and manifest.json
(edge.manifest: sha256, class names, input size, preprocessing, metrics, data fingerprint,
pipeline run id); the text file LATEST names the newest, and on a local destination the
symbolic link `latest` points at it too. Pushing a model byte-identical to the latest one reuses
that version instead of duplicating it. Emits a standard PushedModel artifact.

The destination may be a local folder or a URI TensorFlow's file systems serve (gs://, s3://):
each version is assembled and signed in a local temporary folder (edge.manifest and
edge.signing write local files), then copied there with fileio; a remote destination gets LATEST
only (object stores have no symbolic links).

Given an Ed25519 private key (the `signing_key` parameter, by default $CXR_SIGNING_KEY; off when
neither is set, and never generated here), each pushed manifest is signed (edge.signing), so a
device holding the public key can tell a model this pipeline pushed from any other.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
from pathlib import Path

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.lib import storage
from components.lib.code_fingerprint import module_fingerprint
from components.lib.evaluation import GateConfig, evaluation_summary, gate_outcomes
from components.quantizer import QuantizedModel, selected_variant
from edge import manifest as edge_manifest
from edge import signing as edge_signing
from edge import spec

# The destination's layout; LATEST is the same pointer as the link, for stores without symlinks.
LATEST_LINK, LATEST_FILE, VERSIONS_DIR = spec.LATEST_LINK, spec.LATEST_FILE, spec.VERSIONS_DIR
PUSH_RECORD = "push.json"


def push(
    destination: str,
    *,
    blessed: bool,
    variant: dict | None,
    class_names: tuple[str, ...],
    metrics: dict,
    data_fingerprint: str | None,
    pipeline_run_id: str | None,
    synthetic_data: bool = False,
    signing_key: str | None = None,
) -> dict:
    """Pushes (or declines to) and returns a record of what happened and why.

    signing_key: path of an Ed25519 private key (PEM); the manifest is signed with it.
    """
    if not blessed:
        return {"pushed": False, "reason": "the Evaluator did not bless the model"}
    if variant is None:
        return {"pushed": False, "reason": "the Quantizer selected no TFLite variant"}
    # Loaded before anything is written: a key that was asked for but cannot be used stops the
    # push rather than shipping an unsigned model.
    private_key = _load_signing_key(signing_key) if signing_key else None
    with tempfile.TemporaryDirectory(prefix="cxr-push-") as staging:
        model_file = _local_copy(variant["file"], staging)
        sha256 = edge_manifest.file_sha256(model_file)
        latest = latest_push(destination)
        if latest is not None and latest["manifest"].get("sha256") == sha256:
            return {"pushed": True, "reused": True, "version_dir": latest["dir"],
                    "sha256": sha256, "signed_by": _ensure_signed(latest["dir"], private_key),
                    "reason": "identical to the latest push; no new version written"}
        version = _new_version_name(destination)
        version_dir = os.path.join(destination, VERSIONS_DIR, version)
        local_dir = os.path.join(staging, "version")
        edge_manifest.write_model_dir(
            local_dir,
            model_file,
            class_names=class_names,
            variant=variant["variant"],
            metrics=metrics,
            data_fingerprint=data_fingerprint,
            pipeline_run_id=pipeline_run_id,
            synthetic_data=synthetic_data,
            referral=variant.get("referral"),
        )
        signed_by = _sign_local(local_dir, private_key)[0]
        storage.upload_dir(local_dir, version_dir)  # complete before `latest` points at it
    _point_latest(destination, version)
    return {"pushed": True, "reused": False, "version_dir": version_dir, "sha256": sha256,
            "signed_by": signed_by,
            "reason": f"pushed {variant['variant']} as version {version}"
                      + (f", signed with key {signed_by}" if signed_by else "")}


def latest_push(destination: str) -> dict | None:
    """{"dir", "manifest"} of the version `latest` points at, or None before the first push."""
    pointer = os.path.join(destination, LATEST_FILE)
    if not fileio.exists(pointer):
        return None
    version_dir = os.path.join(destination, VERSIONS_DIR,
                               storage.read_bytes(pointer).decode("utf-8").strip())
    manifest = storage.read_json(os.path.join(version_dir, spec.MANIFEST_FILENAME))
    return None if manifest is None else {"dir": version_dir, "manifest": manifest}


def examples_fingerprint(examples_uri: str) -> str:
    """sha256 over the Examples artifact's split files (names and bytes), in a stable order."""
    digest = hashlib.sha256()
    for root, _, files in sorted(fileio.walk(examples_uri)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(storage.relative(path, examples_uri).encode() + b"\0")
            with fileio.open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return "sha256:" + digest.hexdigest()


def _ensure_signed(version_dir: str, private_key) -> str | None:
    """Signs the version's manifest unless this key's valid signature is already there.

    A reused version pushed before signing was set up, or under a key since rotated, gets this
    key's signature; returns the key id (None without a key). Works on a local copy of the
    manifest and signature (edge.signing reads and writes local files) and copies a new
    signature back.
    """
    if private_key is None:
        return None
    with tempfile.TemporaryDirectory(prefix="cxr-sign-") as local_dir:
        for name in (spec.MANIFEST_FILENAME, edge_signing.SIGNATURE_FILENAME):
            if fileio.exists(os.path.join(version_dir, name)):
                fileio.copy(os.path.join(version_dir, name), os.path.join(local_dir, name))
        key_id, signed_now = _sign_local(local_dir, private_key)
        if signed_now:
            fileio.copy(os.path.join(local_dir, edge_signing.SIGNATURE_FILENAME),
                        os.path.join(version_dir, edge_signing.SIGNATURE_FILENAME),
                        overwrite=True)
    return key_id


def _sign_local(local_dir: str, private_key) -> tuple[str | None, bool]:
    """(key id, whether a signature was written now) for a local version folder."""
    if private_key is None:
        return None, False
    with open(os.path.join(local_dir, spec.MANIFEST_FILENAME), "rb") as handle:
        manifest_bytes = handle.read()
    signature_path = Path(local_dir, edge_signing.SIGNATURE_FILENAME)
    try:
        return edge_signing.verify_manifest(
            manifest_bytes, signature_path, [private_key.public_key()]), False
    except edge_signing.SignatureError:
        edge_signing.sign_manifest(local_dir, private_key, spec.MANIFEST_FILENAME)
        return edge_signing.key_id(private_key), True


def _load_signing_key(signing_key: str):
    # A private key is read from this machine only, never copied out of a bucket to a temp file.
    storage.require_local(signing_key, "signing_key", "the Ed25519 private key is read from "
                          "this machine's file system only (mount it as a secret file)")
    return edge_signing.load_private_key(signing_key)


def _local_copy(model_file: str, staging: str) -> str:
    """The model as a local file: edge.manifest hashes and copies it with local file calls."""
    if not storage.is_remote(model_file):
        return model_file
    local = os.path.join(staging, os.path.basename(model_file))
    fileio.copy(model_file, local)
    return local


def _new_version_name(destination: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    name, suffix = stamp, 1
    while fileio.exists(os.path.join(destination, VERSIONS_DIR, name)):
        suffix += 1
        name = f"{stamp}-{suffix}"
    return name


def _point_latest(destination: str, version: str) -> None:
    # Write-then-rename so a reader never sees a half-written pointer (on an object store the
    # rename is a copy, itself atomic per object).
    pointer = os.path.join(destination, LATEST_FILE)
    storage.write_text(pointer + ".tmp", version + "\n")
    fileio.rename(pointer + ".tmp", pointer, overwrite=True)
    if storage.is_remote(destination):
        return  # no symbolic links on object stores: LATEST is the pointer there
    link = os.path.join(destination, LATEST_LINK)
    try:
        os.symlink(os.path.join(VERSIONS_DIR, version), link + ".tmp")
        os.replace(link + ".tmp", link)
    except OSError as err:  # e.g. no symlinks on this file system: LATEST still points
        logging.warning("EdgePusher: could not link %s: %s", link, err)


class EdgePusherExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):  # TFX API
        blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        quantized = artifact_utils.get_single_instance(input_dict["quantized_model"])
        pushed_model = artifact_utils.get_single_instance(output_dict["pushed_model"])
        gate_config = GateConfig.from_json(exec_properties.get("gate_config_json"))
        class_names = gate_config.class_names
        variant = selected_variant(quantized.uri)
        metrics = {"variant": _variant_metrics(variant)}
        if input_dict.get("evaluation"):
            evaluation_uri = artifact_utils.get_single_uri(input_dict["evaluation"])
            metrics["evaluator"] = evaluation_summary(evaluation_uri, gate_config)
            metrics["gates"] = [
                outcome.as_dict() for outcome in gate_outcomes(evaluation_uri, gate_config)
            ]
        examples = input_dict.get("examples")
        fingerprint = examples_fingerprint(examples[0].uri) if examples else None
        run_id = self._context.pipeline_run_id if self._context else None
        record = push(
            exec_properties["push_destination"],
            blessed=bool(blessing.get_int_custom_property("blessed")),
            variant=variant,
            class_names=class_names,
            metrics=metrics,
            data_fingerprint=fingerprint,
            pipeline_run_id=run_id,
            synthetic_data=bool(exec_properties.get("synthetic_data") or 0),
            signing_key=exec_properties.get("signing_key") or None,
        )
        record["pipeline_run_id"] = run_id
        logging.info("EdgePusher: %s", record["reason"])
        storage.write_json(os.path.join(pushed_model.uri, PUSH_RECORD), record, indent=2)
        pushed_model.set_int_custom_property("pushed", int(record["pushed"]))
        if record["pushed"]:
            pushed_model.set_string_custom_property("pushed_destination", record["version_dir"])
            pushed_model.set_string_custom_property(
                "pushed_version", os.path.basename(record["version_dir"])
            )
            pushed_model.set_string_custom_property("sha256", record["sha256"])
            if record.get("signed_by"):
                pushed_model.set_string_custom_property("signed_by", record["signed_by"])


def _variant_metrics(variant: dict | None) -> dict | None:
    if variant is None:
        return None
    # quantization/latency_threads/selection_reason: what `cxr-edge info` and `bench` show.
    keep = ("variant", "quantization", "size_bytes", "macro_f1", "per_class_f1",
            "per_class_recall", "accuracy", "f1_drop", "latency_ms", "latency_threads",
            "objective", "selection_reason", "runtime", "input_dtype")
    return {key: variant[key] for key in keep if key in variant}


class EdgePusherSpec(ComponentSpec):
    PARAMETERS = {
        "push_destination": ExecutionParameter(type=str),
        "gate_config_json": ExecutionParameter(type=str, optional=True),
        "synthetic_data": ExecutionParameter(type=int, optional=True),
        "signing_key": ExecutionParameter(type=str, optional=True),  # a path, never the key
        "code_fingerprint": ExecutionParameter(type=str, optional=True),  # code_fingerprint.py
    }
    INPUTS = {
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "quantized_model": ChannelParameter(type=QuantizedModel),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
        "examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {"pushed_model": ChannelParameter(type=standard_artifacts.PushedModel)}


class EdgePusher(base_component.BaseComponent):
    """Pushes model.tflite + labels.txt + manifest.json of a blessed, quantized model."""

    SPEC_CLASS = EdgePusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(EdgePusherExecutor)

    def __init__(
        self,
        model_blessing: types.BaseChannel,
        quantized_model: types.BaseChannel,
        push_destination: str,
        evaluation: types.BaseChannel | None = None,
        examples: types.BaseChannel | None = None,
        gate_config: GateConfig | None = None,
        synthetic_data: bool = False,
        signing_key: str | None = None,
    ):
        """signing_key: Ed25519 private key (PEM path); None reads $CXR_SIGNING_KEY."""
        if signing_key is None:
            signing_key = os.environ.get(edge_signing.SIGNING_KEY_ENV) or None
        super().__init__(
            spec=EdgePusherSpec(
                model_blessing=model_blessing,
                quantized_model=quantized_model,
                evaluation=evaluation,
                examples=examples,
                signing_key=storage.absolute(signing_key) if signing_key else None,
                push_destination=storage.absolute(push_destination),
                gate_config_json=(gate_config or GateConfig()).to_json(),
                synthetic_data=int(synthetic_data),
                code_fingerprint=module_fingerprint(__name__),
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )


def read_push_record(pushed_model_uri: str | None) -> dict | None:
    """push.json of an EdgePusher output ({pushed, reason, version_dir, …}), or None."""
    return storage.read_record(pushed_model_uri, PUSH_RECORD, ("pushed", "reason"))
