"""ImageValidator: passes a clean ingest, fails bad ones naming the check and the numbers."""

import collections
import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from ingest_fixtures import read_examples
from PIL import Image
from tfx.types import artifact_utils, standard_artifacts

from components import image_validator
from components.image_example_gen import executor as example_gen_executor
from components.lib import artifact_types, demo_data
from edge import spec


@pytest.fixture(scope="module")
def clean_run(clean_tree, tmp_path_factory):
    from ingest_fixtures import example_gen_runner

    return example_gen_runner(tmp_path_factory.mktemp("clean_run"))(clean_tree)


@pytest.mark.slow
def test_clean_ingest_passes_and_writes_findings(clean_run, tmp_path):
    findings = _validate(tmp_path, clean_run.examples, clean_run.summary_artifact)

    assert findings["passed"] is True
    assert {c["name"] for c in findings["checks"]} == {
        "class_missing", "class_below_minimum", "unexpected_class", "proportion_drift",
        "decode_failures", "channels", "image_size", "content_hash_leakage"}
    assert sum(findings["counts"]["train"].values()) == 4 * 6


@pytest.mark.slow
def test_tree_missing_a_class_fails(tmp_path, run_example_gen):
    root = tmp_path / "three_classes"
    demo_data.generate(root, per_class=8, size=64, seed=4)
    shutil.rmtree(root / "Viral Pneumonia")
    run = run_example_gen(str(root))

    with pytest.raises(image_validator.ImageValidationError,
                       match=r"\[class_missing\] 3 class/split pair\(s\).*'Viral Pneumonia'"):
        _validate(tmp_path, run.examples, run.summary_artifact,
                  class_names=json.dumps(list(spec.CLASS_NAMES)))
    findings = _findings(tmp_path)  # written before raising
    assert findings["passed"] is False
    assert _check(findings, "class_below_minimum")["numbers"]["totals"]["Viral Pneumonia"] == 0


@pytest.mark.slow
def test_leaky_split_fails(clean_run, tmp_path):
    leaky = _copy_examples(clean_run.examples, tmp_path / "leaky")
    train = read_examples(leaky, "train")
    _write_split(leaky, "test", read_examples(leaky, "test") + train[:2])

    with pytest.raises(image_validator.ImageValidationError,
                       match=r"\[content_hash_leakage\] 2 content hash\(es\)"):
        _validate(tmp_path, leaky, clean_run.summary_artifact)
    assert _check(_findings(tmp_path), "content_hash_leakage")["numbers"]["count"] == 2


@pytest.mark.slow
def test_drift_decode_failures_channels_and_sizes_fail(clean_run, tmp_path):
    bad = _copy_examples(clean_run.examples, tmp_path / "bad")
    evaluation = read_examples(bad, "eval")
    covid = [r for r in evaluation if r[spec.LABEL_NAME_KEY] == b"COVID"][0]
    broken = dict(covid, **{spec.IMAGE_KEY: covid[spec.IMAGE_KEY][:40],
                            spec.CONTENT_HASH_KEY: b"broken"})
    rgb = dict(covid, **{spec.IMAGE_KEY: _png(np.zeros((64, 64, 3), np.uint8)),
                         spec.CONTENT_HASH_KEY: b"rgb"})
    tiny = dict(covid, **{spec.IMAGE_KEY: _png(np.zeros((8, 8), np.uint8)),
                          spec.CONTENT_HASH_KEY: b"tiny"})
    _write_split(bad, "eval", evaluation + [broken, rgb, tiny])

    with pytest.raises(image_validator.ImageValidationError) as raised:
        _validate(tmp_path, bad, clean_run.summary_artifact)

    message = str(raised.value)
    assert "[proportion_drift]" in message and "eval" in message
    assert "[decode_failures] 0 quarantined at ingestion + 1 stored images" in message
    assert "[channels] 1 image(s)" in message and "[image_size] 1 image(s)" in message
    assert "content_hash_leakage" not in message
    drift = _check(_findings(tmp_path), "proportion_drift")["numbers"]["drift"]["eval"]
    assert drift["COVID"] == pytest.approx(4 / 7 - 1 / 4, abs=1e-3)


def test_quarantined_files_count_as_decode_failures():
    stats = {"train": _stats({"A": 10}), "eval": _stats({"A": 2})}
    summary = {"quarantined": 2, "files": 14}

    findings = image_validator.run_checks(stats, ["A"], summary, image_validator.DEFAULTS)

    check = _check(findings, "decode_failures")
    assert not check["passed"] and check["numbers"]["fraction"] == pytest.approx(2 / 14)


def _validate(tmp_path, examples, summary_artifact, **properties):
    findings = artifact_types.ImageValidationFindings()
    findings.uri = str(tmp_path / "findings")
    os.makedirs(findings.uri, exist_ok=True)
    image_validator.Executor().Do(
        {image_validator.EXAMPLES_KEY: [examples],
         image_validator.SUMMARY_KEY: [summary_artifact]},
        {image_validator.FINDINGS_KEY: [findings]}, properties)
    return _findings(tmp_path)


def _findings(tmp_path):
    with open(tmp_path / "findings" / image_validator.FINDINGS_FILE) as f:
        return json.load(f)


def _check(findings, name):
    return next(c for c in findings["checks"] if c["name"] == name)


def _stats(counts):
    total = sum(counts.values())
    return {"examples": total, "counts": collections.Counter(counts),
            "labels": {(0, "A")}, "hashes": {}, "decode_failures": [],
            "channel_violations": [], "size_violations": []}


def _copy_examples(examples, uri):
    shutil.copytree(examples.uri, uri)
    copy = standard_artifacts.Examples()
    copy.uri = str(uri)
    copy.split_names = examples.split_names
    copy.set_string_custom_property(
        example_gen_executor.CLASS_NAMES_PROPERTY,
        examples.get_string_custom_property(example_gen_executor.CLASS_NAMES_PROPERTY))
    return copy


def _write_split(examples, split, records):
    folder = artifact_utils.get_split_uri([examples], split)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(folder, "data_tfrecord-00000-of-00001.gz"),
                              options) as writer:
        for record in records:
            writer.write(_to_example(record).SerializeToString())


def _to_example(record):
    feature = {}
    for key, value in record.items():
        if isinstance(value, bytes):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        else:
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
