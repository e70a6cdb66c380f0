"""One hostile file is one error record: `cxr-edge classify` never loses a batch to it."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from edge import cli, heatmap, spec
from edge.classifier import Classifier
from tests.edge import fuzz
from tests.edge.conftest import radiograph_like
from tests.edge.golden import model_path

pytest.importorskip("pydicom")


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def mixed_batch(tmp_path):
    """Good PNG/JPEG/DICOM files, and every DICOM that once crashed the decoder."""
    batch = tmp_path / "batch"
    batch.mkdir()
    Image.fromarray(radiograph_like(64, 48)).save(batch / "good.png")
    Image.fromarray(radiograph_like(64, 48, seed=1)).save(batch / "good.jpg", quality=90)
    samples = fuzz.make_dicom_samples()
    for name in ("implicit.dcm", "mono1.dcm", "windowed.dcm"):
        (batch / f"good_{name}").write_bytes(samples[name])
    crashers = [p for p in fuzz.saved_cases() if p.suffix == ".dcm"]
    assert len(crashers) >= 5
    for path in crashers:
        shutil.copy(path, batch / f"bad_{path.name}")
    return batch, len(crashers)


def test_crashing_dicoms_get_one_error_record_each_and_good_files_are_classified(
    mixed_batch, capsys
):
    batch, bad_count = mixed_batch
    code, out, err = _run(
        capsys, "classify", "--model", model_path("int8"), batch, "--format", "json"
    )
    records = json.loads(out)
    names = [record["path"].rsplit("/", 1)[-1] for record in records]
    assert sorted(names) == sorted(p.name for p in batch.iterdir())  # exactly one each
    for name, record in zip(names, records, strict=True):
        if name.startswith("good"):
            assert record["status"] == "ok", record
            assert record["predicted_class"] in spec.CLASS_NAMES
        else:
            assert record["status"] == "error", record
            assert record["reason"] == "malformed_dicom", record
            assert record["error"]
    assert code == cli.EXIT_FILES_FAILED
    assert f"{len(records)} images, {bad_count} failed" in err
    assert "Traceback" not in err  # tracebacks only with --debug


def test_table_and_csv_carry_the_error_reason_too(mixed_batch, capsys):
    batch, bad_count = mixed_batch
    code, out, _ = _run(capsys, "classify", "--model", model_path("int8"), batch)
    assert code == cli.EXIT_FILES_FAILED
    assert sum(" malformed_dicom " in line for line in out.splitlines()) == bad_count
    code, out, _ = _run(
        capsys, "classify", "--model", model_path("int8"), batch, "--format", "csv"
    )
    assert sum(",malformed_dicom," in line for line in out.splitlines()) == bad_count


def test_debug_shows_each_failures_traceback(mixed_batch, capsys):
    batch, bad_count = mixed_batch
    code, _, err = _run(
        capsys, "classify", "--model", model_path("int8"), batch, "--format", "json", "--debug"
    )
    assert code == cli.EXIT_FILES_FAILED
    assert err.count("Traceback (most recent call last)") >= bad_count
    assert "cxr-edge DEBUG edge.imageio" in err
    # The debug handler goes away with the command.
    code, _, err = _run(capsys, "classify", "--model", model_path("int8"), batch)
    assert "Traceback" not in err


def test_an_unforeseen_inference_failure_is_one_record(tmp_path, capsys, monkeypatch):
    for name in ("a.png", "b.png"):
        Image.fromarray(radiograph_like(40, 30)).save(tmp_path / name)
    calls = []
    real = Classifier.classify

    def fails_once(self, gray):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("a bug in the runner")
        return real(self, gray)

    monkeypatch.setattr(Classifier, "classify", fails_once)
    code, out, _ = _run(
        capsys, "classify", "--model", model_path("int8"), tmp_path, "--format", "json"
    )
    first, second = json.loads(out)
    assert (first["status"], first["reason"]) == ("error", "inference_failed")
    assert "KeyError" in first["error"]
    assert second["status"] == "ok" and code == cli.EXIT_FILES_FAILED


def test_a_heatmap_that_cannot_be_written_keeps_the_classification(
    tmp_path, capsys, monkeypatch
):
    Image.fromarray(radiograph_like(40, 30)).save(tmp_path / "a.png")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(heatmap, "save_overlay", disk_full)
    code, out, _ = _run(
        capsys, "classify", "--model", model_path("fp32"), tmp_path / "a.png",
        "--heatmaps", tmp_path / "maps", "--format", "json",
    )
    (record,) = json.loads(out)
    assert code == cli.EXIT_OK and record["status"] == "ok"
    assert "No space left" in record["heatmap_error"] and "heatmaps" not in record
    assert np.isclose(sum(record["probabilities"].values()), 1, atol=1e-4)
