"""EdgePusher: pushes the selected TFLite variant of a blessed model to a serving directory.

Pushes only when the Evaluator blessed the model AND the Quantizer selected a variant. Each push
is a versioned directory (UTC timestamp) holding model.tflite, labels.txt and manifest.json
(edge.manifest: sha256, class names, input size, preprocessing, metrics, data fingerprint,
pipeline run id); `latest` points at the newest. Pushing a model byte-identical to the latest
one reuses that version instead of duplicating it. Emits a standard PushedModel artifact.

Given an Ed25519 private key (the `signing_key` parameter, by default $CXR_SIGNING_KEY; off when
neither is set, and never generated here), each pushed manifest is signed (edge.signing), so a
device holding the public key can tell a model this pipeline pushed from any other.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.evaluation import GateConfig, evaluation_summary, gate_outcomes
from components.quantizer import QuantizedModel, selected_variant
from edge import manifest as edge_manifest
from edge import signing as edge_signing
from edge import spec

LATEST_LINK = "latest"
LATEST_FILE = "LATEST"  # the same pointer as text, for file systems without symlinks
VERSIONS_DIR = "versions"
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
    private_key = edge_signing.load_private_key(signing_key) if signing_key else None
    sha256 = edge_manifest.file_sha256(variant["file"])
    latest = latest_push(destination)
    if latest is not None and latest["manifest"].get("sha256") == sha256:
        return {"pushed": True, "reused": True, "version_dir": latest["dir"], "sha256": sha256,
                "signed_by": _ensure_signed(latest["dir"], private_key),
                "reason": "identical to the latest push; no new version written"}  # fmt: skip
    version = _new_version_name(destination)
    version_dir = os.path.join(destination, VERSIONS_DIR, version)
    edge_manifest.write_model_dir(
        version_dir,
        variant["file"],
        class_names=class_names,
        variant=variant["variant"],
        metrics=metrics,
        data_fingerprint=data_fingerprint,
        pipeline_run_id=pipeline_run_id,
        synthetic_data=synthetic_data,
        referral=variant.get("referral"),
    )
    signed_by = _ensure_signed(version_dir, private_key)  # before `latest` points at it
    _point_latest(destination, version)
    return {"pushed": True, "reused": False, "version_dir": version_dir, "sha256": sha256,
            "signed_by": signed_by,
            "reason": f"pushed {variant['variant']} as version {version}"
                      + (f", signed with key {signed_by}" if signed_by else "")}  # fmt: skip


def latest_push(destination: str) -> dict | None:
    """{"dir", "manifest"} of the version `latest` points at, or None before the first push."""
    pointer = os.path.join(destination, LATEST_FILE)
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as handle:
        version_dir = os.path.join(destination, VERSIONS_DIR, handle.read().strip())
    manifest_path = os.path.join(version_dir, spec.MANIFEST_FILENAME)
    if not os.path.isfile(manifest_path):
        return None
    with open(manifest_path) as handle:
        return {"dir": version_dir, "manifest": json.load(handle)}


def examples_fingerprint(examples_uri: str) -> str:
    """sha256 over the Examples artifact's split files (names and bytes), in a stable order."""
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(examples_uri)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, examples_uri).encode() + b"\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return "sha256:" + digest.hexdigest()


def _ensure_signed(version_dir: str, private_key) -> str | None:
    """Signs the version's manifest unless this key's valid signature is already there.

    A reused version pushed before signing was set up, or under a key since rotated, gets this
    key's signature; returns the key id (None without a key).
    """
    if private_key is None:
        return None
    manifest_path = os.path.join(version_dir, spec.MANIFEST_FILENAME)
    with open(manifest_path, "rb") as handle:
        manifest_bytes = handle.read()
    signature_path = os.path.join(version_dir, edge_signing.SIGNATURE_FILENAME)
    try:
        return edge_signing.verify_manifest(
            manifest_bytes, Path(signature_path), [private_key.public_key()]
        )
    except edge_signing.SignatureError:
        edge_signing.sign_manifest(version_dir, private_key, spec.MANIFEST_FILENAME)
        return edge_signing.key_id(private_key)


def _new_version_name(destination: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    name, suffix = stamp, 1
    while os.path.exists(os.path.join(destination, VERSIONS_DIR, name)):
        suffix += 1
        name = f"{stamp}-{suffix}"
    return name


def _point_latest(destination: str, version: str) -> None:
    # Write-then-rename so a reader never sees a half-written pointer.
    pointer = os.path.join(destination, LATEST_FILE)
    with open(pointer + ".tmp", "w") as handle:
        handle.write(version + "\n")
    os.replace(pointer + ".tmp", pointer)
    link = os.path.join(destination, LATEST_LINK)
    try:
        os.symlink(os.path.join(VERSIONS_DIR, version), link + ".tmp")
        os.replace(link + ".tmp", link)
    except OSError as err:  # e.g. no symlinks on this file system: LATEST still points
        logging.warning("EdgePusher: could not link %s: %s", link, err)


class EdgePusherExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX API)
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
        os.makedirs(pushed_model.uri, exist_ok=True)
        with open(os.path.join(pushed_model.uri, PUSH_RECORD), "w") as handle:
            json.dump(record, handle, indent=2)
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
                signing_key=os.path.abspath(signing_key) if signing_key else None,
                push_destination=os.path.abspath(push_destination),
                gate_config_json=(gate_config or GateConfig()).to_json(),
                synthetic_data=int(synthetic_data),
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            )
        )


def read_push_record(pushed_model_uri: str | None) -> dict | None:
    """push.json of an EdgePusher output ({pushed, reason, version_dir, …}), or None."""
    if not pushed_model_uri:
        return None
    path = os.path.join(pushed_model_uri, PUSH_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
