"""Pusher, report, quarantine writer and ingestion listing on a remote file system.

TensorFlow's in-memory `ram://` file system stands in for gs:// or s3://: it is served by the
same gfile layer (tfx.dsl.io.fileio) and has no local path, so any os.path / open() left on the
way fails here. What cannot work remotely (a private key in a bucket) must fail with a message
naming the path and why.
"""

import csv
import io
import json
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf
from tfx.dsl.io import fileio

from components.edge_pusher import (
    LATEST_FILE,
    LATEST_LINK,
    VERSIONS_DIR,
    examples_fingerprint,
    latest_push,
    push,
    read_push_record,
)
from components.image_example_gen import ingest, write
from components.image_example_gen.executor import (
    QUARANTINE_CSV,
    QUARANTINE_JSON,
    quarantine_failure_message,
    write_quarantine_evidence,
    write_quarantine_report,
)
from components.lib import storage
from components.lib.model_summary import (
    ModelSummary,
    read_model_summary,
    write_model_summary,
)
from components.quantizer import (
    VARIANTS_FILENAME,
    QuantizerConfig,
    quantize_and_select,
    selected_variant,
)
from components.report import REPORT_FILENAME, ReportInputs, write_report
from edge import manifest as edge_manifest
from edge import signing, spec
from tests.components import evalkit

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "edge", "data")


@pytest.fixture
def ram():
    """A fresh ram:// folder (the file system lives as long as the process)."""
    root = f"ram://cxr-test-{uuid.uuid4().hex}"
    fileio.makedirs(root)
    return root


def _upload(local_path: str, remote_path: str) -> str:
    fileio.makedirs(os.path.dirname(remote_path))
    fileio.copy(local_path, remote_path, overwrite=True)
    return remote_path


def _push(destination, model_file, variant, signing_key=None):
    return push(destination, blessed=True, variant={"variant": variant, "file": model_file},
                class_names=spec.CLASS_NAMES, metrics={"variant": {"macro_f1": 0.95}},
                data_fingerprint="sha256:abc", pipeline_run_id="run-1",
                signing_key=signing_key)


def test_ram_filesystem_is_served_by_fileio(ram):
    storage.write_text(f"{ram}/a/b.txt", "hello")
    assert fileio.listdir(f"{ram}/a") == ["b.txt"]
    assert tf.io.gfile.exists(f"{ram}/a/b.txt") and not os.path.exists(f"{ram}/a/b.txt")


def test_pusher_writes_versions_and_latest_to_a_remote_destination(ram, tmp_path):
    quantized = f"{ram}/quantized"
    int8 = _upload(os.path.join(GOLDEN, "golden_int8.tflite"), f"{quantized}/int8.tflite")
    fp16 = _upload(os.path.join(GOLDEN, "golden_fp16.tflite"), f"{quantized}/float16.tflite")
    keys_dir = tmp_path / "keys"
    private_key, public_key = signing.generate_keypair(keys_dir)
    destination = f"{ram}/serving"

    first = _push(destination, int8, "int8", signing_key=str(private_key))
    assert first["pushed"] and not first["reused"] and first["signed_by"]
    assert first["version_dir"].startswith(f"{destination}/{VERSIONS_DIR}/")
    assert sorted(fileio.listdir(first["version_dir"])) == sorted(
        [spec.MODEL_FILENAME, spec.LABELS_FILENAME, spec.MANIFEST_FILENAME,
         signing.SIGNATURE_FILENAME])
    # LATEST is the pointer on an object store; no symbolic link, no leftover temporary file.
    assert sorted(fileio.listdir(destination)) == [LATEST_FILE, VERSIONS_DIR]
    assert LATEST_LINK not in fileio.listdir(destination)

    again = _push(destination, int8, "int8", signing_key=str(private_key))
    assert again["reused"] and again["version_dir"] == first["version_dir"]
    newer = _push(destination, fp16, "float16")
    assert not newer["reused"] and len(fileio.listdir(f"{destination}/{VERSIONS_DIR}")) == 2
    latest = latest_push(destination)
    assert latest["dir"] == newer["version_dir"]
    assert latest["manifest"]["sha256"] == newer["sha256"]

    # What was pushed loads and verifies on a device once copied down (a device reads locally).
    local = tmp_path / "device"
    local.mkdir()
    for name in fileio.listdir(first["version_dir"]):
        fileio.copy(f"{first['version_dir']}/{name}", str(local / name))
    loaded = edge_manifest.load_model_dir(local, trusted_keys=[str(public_key)])
    assert loaded.manifest["sha256"] == first["sha256"]
    assert loaded.manifest["variant"] == "int8"


def test_a_reused_remote_version_is_signed_in_place(ram, tmp_path):
    int8 = os.path.join(GOLDEN, "golden_int8.tflite")
    destination = f"{ram}/serving"
    unsigned = _push(destination, int8, "int8")
    assert not fileio.exists(f"{unsigned['version_dir']}/{signing.SIGNATURE_FILENAME}")
    private_key, _ = signing.generate_keypair(tmp_path / "keys")
    signed = _push(destination, int8, "int8", signing_key=str(private_key))
    assert signed["reused"] and signed["signed_by"]
    assert fileio.exists(f"{unsigned['version_dir']}/{signing.SIGNATURE_FILENAME}")


def test_a_private_key_in_a_bucket_is_refused_before_anything_is_written(ram):
    key = storage.write_text(f"{ram}/keys/{signing.PRIVATE_KEY_FILENAME}", "not read")
    destination = f"{ram}/serving"
    with pytest.raises(storage.LocalPathRequired) as raised:
        _push(destination, os.path.join(GOLDEN, "golden_int8.tflite"), "int8", signing_key=key)
    message = str(raised.value)
    assert key in message and "must be a local path" in message and "private key" in message
    assert not fileio.exists(destination)


def test_push_record_variants_and_model_summary_round_trip_remotely(ram):
    storage.write_json(f"{ram}/pushed/push.json", {"pushed": True, "reason": "ok"})
    assert read_push_record(f"{ram}/pushed") == {"pushed": True, "reason": "ok"}
    assert read_push_record(f"{ram}/nothing-here") is None
    table = {"selected": "int8", "selected_file": "int8.tflite", "selection": {},
             "variants": [{"variant": "int8", "size_bytes": 5}]}
    storage.write_json(f"{ram}/quantized/{VARIANTS_FILENAME}", table)
    assert selected_variant(f"{ram}/quantized")["file"] == f"{ram}/quantized/int8.tflite"
    write_model_summary(f"{ram}/quantized", ModelSummary("baseline", True, [], None))
    assert read_model_summary(f"{ram}/quantized").model_kind == "baseline"


def test_examples_fingerprint_reads_a_remote_examples_artifact(ram):
    storage.write_bytes(f"{ram}/examples/Split-train/data.gz", b"one")
    before = examples_fingerprint(f"{ram}/examples")
    storage.write_bytes(f"{ram}/examples/Split-train/data.gz", b"two")
    assert examples_fingerprint(f"{ram}/examples") != before


def test_quarantine_report_and_evidence_are_written_remotely(ram):
    entries = [{"path": "COVID/a.png", "reason": "empty_file", "message": "0 bytes"},
               {"path": "Normal/b.png", "reason": "decode_failed", "message": "truncated"}]
    report = write_quarantine_report(f"{ram}/artifact", entries)
    assert report["count"] == 2
    evidence = write_quarantine_evidence(f"{ram}/pipeline/quarantine", "run-7", entries)
    assert evidence == f"{ram}/pipeline/quarantine/run-7"
    for folder in (f"{ram}/artifact", evidence):
        assert sorted(fileio.listdir(folder)) == sorted([QUARANTINE_CSV, QUARANTINE_JSON])
        rows = list(csv.DictReader(io.StringIO(
            storage.read_bytes(f"{folder}/{QUARANTINE_CSV}").decode())))
        assert [row["path"] for row in rows] == ["COVID/a.png", "Normal/b.png"]
        assert storage.read_json(f"{folder}/{QUARANTINE_JSON}")["by_reason"] == {
            "decode_failed": 1, "empty_file": 1}
    summary = {"quarantined": 2, "files": 10, "quarantine_fraction": 0.2,
               "quarantined_by_reason": report["by_reason"]}
    message = quarantine_failure_message(summary, 0.05, entries, evidence)
    assert f"{evidence}/{QUARANTINE_CSV}" in message


def test_report_reads_and_writes_remote_artifacts(ram, tmp_path):
    counts = {split: dict.fromkeys(evalkit.CLASS_NAMES, n)
              for split, n in (("train", 12), ("eval", 2), ("test", 4))}
    storage.write_json(f"{ram}/ingest/summary.json", {
        "class_names": list(evalkit.CLASS_NAMES), "files": 73, "examples": 72, "counts": counts,
        "quarantined": 1, "quarantined_by_reason": {"empty_file": 1},
        "duplicates": {"groups": 2, "extra_copies": 3, "members": []}})
    write_quarantine_report(f"{ram}/quarantine", [
        {"path": "COVID/broken.png", "reason": "empty_file", "message": "0 bytes"}])
    storage.write_json(f"{ram}/model/training_summary.json", {
        "config": {"model": "baseline"}, "best_eval_macro_f1": 0.5,
        "history": [{"epoch": i + 1, "seconds": float(i), "loss": 1.0 / (i + 1),
                     "eval_macro_f1": 0.3 + 0.1 * i} for i in range(3)]})
    storage.write_bytes(f"{ram}/model_run/embeddings_before.png",
                        evalkit.png_bytes(np.full((8, 8), 200, np.uint8)))
    storage.write_json(f"{ram}/quantized/{VARIANTS_FILENAME}",
                       {"variants": [], "selected": None, "skipped": "not blessed"})
    storage.write_json(f"{ram}/pushed/push.json",
                       {"pushed": False, "reason": "not blessed", "pipeline_run_id": "run-9"})
    out = f"{ram}/report"
    path = write_report(ReportInputs(
        ingest_summary_uri=f"{ram}/ingest", quarantine_uri=f"{ram}/quarantine",
        serving_model_dir=f"{ram}/model", model_run_uri=f"{ram}/model_run",
        quantized_model_uri=f"{ram}/quantized", pushed_model_uri=f"{ram}/pushed",
        synthetic_data=True, pipeline_run_id="run-9"), out)
    assert path == f"{out}/{REPORT_FILENAME}"
    page = storage.read_bytes(path).decode("utf-8")
    assert "SYNTHETIC DATA" in page and "run-9" in page and "empty_file" in page
    assert "Embeddings before training" in page  # read from ram:// by glob
    assert "not blessed" in page
    assert fileio.exists(f"{out}/training_curves.png")  # a chart written beside the page

    # Example counts straight from a remote Examples artifact (no ingest summary).
    examples = evalkit.write_examples(str(tmp_path / "examples"),
                                      {"train": 3, "eval": 1, "test": 2})
    for folder, _, files in os.walk(examples):
        for name in files:
            local = os.path.join(folder, name)
            _upload(local, f"{ram}/examples/{os.path.relpath(local, examples)}")
    path = write_report(ReportInputs(examples_uri=f"{ram}/examples"), f"{ram}/report2")
    page = storage.read_bytes(path).decode("utf-8")
    assert "counts read from the Examples" in page
    assert "<tr><td>train</td><td>3</td><td>3</td><td>3</td><td>3</td><td>12</td></tr>" in page


def test_ingestion_lists_and_decodes_a_remote_class_tree(ram):
    rng = np.random.default_rng(0)
    for label, name in enumerate(("COVID", "Normal")):
        for index in range(2):
            storage.write_bytes(f"{ram}/data/{name}/images/{name}-{index}.png",
                                evalkit.png_bytes(evalkit.synthetic_image(label, rng)))
    storage.write_bytes(f"{ram}/data/COVID/masks/ignored.png", b"x")
    storage.write_bytes(f"{ram}/data/Normal/images/empty.png", b"")
    names, ignored = ingest.resolve_class_names(f"{ram}/data")
    assert names == ["COVID", "Normal"] and ignored == []
    files = ingest.list_class_files(f"{ram}/data", names)
    assert files == [("COVID/images/COVID-0.png", 0), ("COVID/images/COVID-1.png", 0),
                     ("Normal/images/Normal-0.png", 1), ("Normal/images/Normal-1.png", 1),
                     ("Normal/images/empty.png", 1)]
    kind, record = ingest.decode_file(f"{ram}/data", files[0][0], 0, names)
    assert kind == "ok" and record["width"] == evalkit.IMAGE_SIZE
    kind, entry = ingest.decode_file(f"{ram}/data", "Normal/images/empty.png", 1, names)
    assert kind == "quarantine" and entry["reason"] == "empty_file"
    assert json.loads(json.dumps(entry))  # plain data, as Beam pickles it


def test_split_shards_are_written_and_renamed_on_a_remote_file_system(ram):
    folder = f"{ram}/examples/Split-train"
    records = [(ingest.seeded_key(0, f"p{i}"), f"record {i}".encode()) for i in range(5)]
    path = write.write_shard(write.shard_path(folder, 0, 2), reversed(records))
    # What a failed attempt leaves: removed once the run is over.
    storage.write_bytes(f"{write.shard_path(folder, 1, 2)}{write.PARTIAL}dead", b"half")
    write.finish_split(folder, 2)

    assert sorted(fileio.listdir(folder)) == ["data_tfrecord-00000-of-00002.gz",
                                              "data_tfrecord-00001-of-00002.gz"]
    read = list(tf.data.TFRecordDataset(path, compression_type="GZIP").as_numpy_iterator())
    assert read == [record for _, record in sorted(records)]
    empty = write.shard_path(folder, 1, 2)
    assert list(tf.data.TFRecordDataset(empty, compression_type="GZIP")) == []


def test_quantizer_converts_locally_and_writes_its_variants_remotely(ram, tmp_path):
    examples = evalkit.write_examples(str(tmp_path / "examples"),
                                      {"train": 8, "eval": 1, "test": 3})
    model_dir = evalkit.train_tiny_model(examples, str(tmp_path / "model"), epochs=1)
    out = f"{ram}/quantized"
    table = quantize_and_select(model_dir, examples, out, QuantizerConfig(
        variants=("float32",), latency_runs=1, fail_if_none_pass=False))
    row = table["variants"][0]
    assert row["file"] == f"{out}/float32.tflite"  # copied up; the local work folder is gone
    assert fileio.stat(row["file"]).length == row["size_bytes"]
    assert storage.read_json(f"{out}/{VARIANTS_FILENAME}")["variants"][0]["file"] == row["file"]
    # The pusher reads a remote model file (hashes a local copy, uploads the version).
    record = _push(f"{ram}/serving", row["file"], "float32")
    pushed = f"{record['version_dir']}/{spec.MODEL_FILENAME}"
    assert storage.read_bytes(pushed) == storage.read_bytes(row["file"])
    assert record["sha256"] == storage.read_json(
        f"{record['version_dir']}/{spec.MANIFEST_FILENAME}")["sha256"]
