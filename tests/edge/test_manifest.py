"""edge.manifest: a pushed model directory is verified, and a mismatch is refused clearly."""

import json
import shutil

import pytest

from edge import spec
from edge.manifest import ManifestError, file_sha256, load_model_dir, write_model_dir
from tests.edge.golden import PLAIN_MODEL, model_path


@pytest.fixture
def pushed(tmp_path):
    directory = tmp_path / "pushed"
    write_model_dir(
        directory,
        model_path("int8_io"),
        variant="int8",
        metrics={"macro_f1": 0.93},
        data_fingerprint="abc123",
        pipeline_run_id="run-1",
        synthetic_data=True,
    )
    return directory


def _rewrite(directory, **changes):
    path = directory / spec.MANIFEST_FILENAME
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_written_directory_loads_and_describes_the_model(pushed):
    assert sorted(p.name for p in pushed.iterdir()) == sorted(
        [spec.MODEL_FILENAME, spec.LABELS_FILENAME, spec.MANIFEST_FILENAME]
    )
    manifest = json.loads((pushed / spec.MANIFEST_FILENAME).read_text())
    assert manifest["sha256"] == file_sha256(pushed / spec.MODEL_FILENAME)
    assert manifest["input_size"] == 32
    assert manifest["input"] == {
        "dtype": "float32",
        "tensor_dtype": "int8",
        "value_range": [0, 255],
        "channels": 1,
        "layout": "NHWC",
        "shape": [1, 32, 32, 1],
    }
    assert manifest["class_names"] == list(spec.CLASS_NAMES)
    assert manifest["synthetic_data"] is True and manifest["metrics"] == {"macro_f1": 0.93}
    for key in ("format_version", "model_file", "preprocessing", "variant", "created_at",
                "data_fingerprint", "pipeline_run_id"):
        assert key in manifest
    loaded = load_model_dir(pushed)
    assert loaded.class_names == spec.CLASS_NAMES and loaded.input_size == 32
    assert loaded.manifest["variant"] == "int8"


def test_changed_model_bytes_are_refused(pushed):
    shutil.copyfile(model_path("fp32"), pushed / spec.MODEL_FILENAME)
    with pytest.raises(ManifestError, match="does not match its manifest: sha256"):
        load_model_dir(pushed)


def test_class_order_mismatch_is_refused(pushed):
    labels = list(spec.CLASS_NAMES)
    labels[0], labels[1] = labels[1], labels[0]
    (pushed / spec.LABELS_FILENAME).write_text("\n".join(labels) + "\n")
    with pytest.raises(ManifestError, match="class order must match"):
        load_model_dir(pushed)


def test_class_count_mismatch_is_refused(pushed):
    three = list(spec.CLASS_NAMES[:3])
    _rewrite(pushed, class_names=three)
    (pushed / spec.LABELS_FILENAME).write_text("\n".join(three) + "\n")
    with pytest.raises(ManifestError, match="lists 3 classes .* outputs 4 probabilities"):
        load_model_dir(pushed)


def test_input_size_and_dtype_mismatch_are_refused(pushed):
    _rewrite(pushed, input_size=224)
    with pytest.raises(ManifestError, match="input size 224 .* takes 32x32"):
        load_model_dir(pushed)
    _rewrite(pushed, input_size=32, input={"tensor_dtype": "float32"})
    with pytest.raises(ManifestError, match="input tensor is float32 .* takes int8"):
        load_model_dir(pushed)


def test_missing_or_broken_manifest_is_refused(pushed, tmp_path):
    (pushed / spec.MANIFEST_FILENAME).write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_model_dir(pushed)
    (pushed / spec.MANIFEST_FILENAME).unlink()
    with pytest.raises(ManifestError, match="has no manifest.json"):
        load_model_dir(pushed)
    with pytest.raises(ManifestError, match="neither a model directory nor"):
        load_model_dir(tmp_path / "nothing")
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ManifestError, match="not a loadable TFLite model"):
        load_model_dir(tmp_path / "junk.tflite")


def test_writer_refuses_wrong_class_count_and_bare_file_uses_labels(tmp_path):
    with pytest.raises(ManifestError, match="outputs 4 classes but 2 class names"):
        write_model_dir(tmp_path / "bad", PLAIN_MODEL, class_names=["a", "b"], variant="fp32")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copyfile(PLAIN_MODEL, bare / "m.tflite")
    assert load_model_dir(bare / "m.tflite").class_names == spec.CLASS_NAMES
    (bare / spec.LABELS_FILENAME).write_text("w\nx\ny\nz\n")
    loaded = load_model_dir(bare / "m.tflite")
    assert loaded.class_names == ("w", "x", "y", "z") and loaded.manifest is None
