"""EdgePusher's push rules without a pipeline: refusals, versions, `latest`, no duplicate push."""

import json
import os

from components.edge_pusher import (
    LATEST_FILE,
    LATEST_LINK,
    VERSIONS_DIR,
    examples_fingerprint,
    push,
)
from edge import manifest as edge_manifest
from edge import spec

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "edge", "data")


def _variant(name: str) -> dict:
    return {"variant": name, "file": os.path.join(GOLDEN, f"golden_{name}.tflite")}


def _push(destination, variant, blessed=True):
    return push(str(destination), blessed=blessed, variant=variant, class_names=spec.CLASS_NAMES,
                metrics={"variant": {"macro_f1": 0.95}}, data_fingerprint="sha256:abc",
                pipeline_run_id="run-1")


def test_unblessed_or_unquantized_models_are_not_pushed(tmp_path):
    refused = _push(tmp_path, _variant("int8"), blessed=False)
    assert not refused["pushed"] and "did not bless" in refused["reason"]
    refused = _push(tmp_path, None)
    assert not refused["pushed"] and "no TFLite variant" in refused["reason"]
    assert os.listdir(tmp_path) == []


def test_push_writes_a_verifiable_version_and_points_latest_at_it(tmp_path):
    record = _push(tmp_path, _variant("int8"))
    assert record["pushed"] and not record["reused"]
    manifest_path = os.path.join(record["version_dir"], spec.MANIFEST_FILENAME)
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    pushed_file = os.path.join(record["version_dir"], spec.MODEL_FILENAME)
    assert manifest["sha256"] == edge_manifest.file_sha256(pushed_file) == record["sha256"]
    assert manifest["pipeline_run_id"] == "run-1"
    assert manifest["data_fingerprint"] == "sha256:abc"
    assert manifest["variant"] == "int8"
    loaded = edge_manifest.load_model_dir(tmp_path / LATEST_LINK)
    assert loaded.manifest["sha256"] == record["sha256"]


def test_same_model_is_not_pushed_twice_and_a_new_one_becomes_latest(tmp_path):
    first = _push(tmp_path, _variant("int8"))
    again = _push(tmp_path, _variant("int8"))
    assert again["reused"] and again["version_dir"] == first["version_dir"]
    newer = _push(tmp_path, _variant("fp16"))
    assert not newer["reused"] and newer["version_dir"] != first["version_dir"]
    assert len(os.listdir(tmp_path / VERSIONS_DIR)) == 2
    assert (tmp_path / LATEST_FILE).read_text().strip() == os.path.basename(newer["version_dir"])
    assert os.path.realpath(tmp_path / LATEST_LINK) == os.path.realpath(newer["version_dir"])


def test_examples_fingerprint_changes_with_the_data(tmp_path):
    split = tmp_path / "Split-train"
    split.mkdir()
    (split / "data.gz").write_bytes(b"one")
    before = examples_fingerprint(str(tmp_path))
    assert before == examples_fingerprint(str(tmp_path))
    (split / "data.gz").write_bytes(b"two")
    assert examples_fingerprint(str(tmp_path)) != before
