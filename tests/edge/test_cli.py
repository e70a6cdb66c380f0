"""cxr-edge classify / bench / info, driven through edge.cli.main like a user would."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from edge import cli, spec
from edge.manifest import write_model_dir
from edge.record import FIELDS
from tests.edge.conftest import PLANTED, radiograph_like
from tests.edge.golden import PLAIN_MODEL, model_path


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bad_inputs_give_one_record_each_and_the_batch_goes_on(planted, capsys):
    folder, _ = planted
    code, out, err = _run(
        capsys, "classify", "--model", model_path("int8"), folder, "--format", "json"
    )
    records = json.loads(out)
    by_name = {record["path"].split("/")[-1]: record for record in records}
    assert sorted(by_name) == sorted(PLANTED) and len(records) == len(PLANTED)
    for name, reason in PLANTED.items():
        record = by_name[name]
        assert set(FIELDS) <= set(record), record  # one schema: null where a key does not apply
        if reason is None:
            assert record["status"] == "ok", record
            assert record["predicted_class"] in spec.CLASS_NAMES
            assert set(record["probabilities"]) == set(spec.CLASS_NAMES)
            assert record["latency_ms"] > 0
        else:
            assert (record["status"], record["reason"]) == ("error", reason), record
            assert record["error"]
    assert code == cli.EXIT_FILES_FAILED
    assert "ai-edge-litert" in err and f"{len(PLANTED)} images" in err


def test_good_batch_exits_zero_and_csv_and_out_file(planted, capsys, tmp_path):
    folder, _ = planted
    out_file = tmp_path / "records.csv"
    good = [folder / name for name, reason in PLANTED.items() if reason is None]
    code, out, _ = _run(
        capsys, "classify", "--model", model_path("fp32"), *good, "--format", "csv",
        "--out", out_file,
    )
    assert code == cli.EXIT_OK and out == ""
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert len(rows) == len(good)
    assert all(row["status"] == "ok" for row in rows)
    total = sum(float(rows[0][f"p_{name}"]) for name in spec.CLASS_NAMES)
    assert abs(total - 1) < 1e-4


def test_table_refer_and_folder_recursion(tmp_path, capsys):
    nested = tmp_path / "batch" / "a" / "b"
    nested.mkdir(parents=True)
    Image.fromarray(radiograph_like(64, 48)).save(nested / "deep.png")
    Image.fromarray(radiograph_like(64, 48, seed=1)).save(tmp_path / "batch" / "top.jpg")
    (tmp_path / "batch" / "notes.txt").write_text("ignored: not an image name")
    code, out, _ = _run(
        capsys, "classify", "--model", PLAIN_MODEL, tmp_path / "batch", "--refer-below", "0.9"
    )
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["path", "status", "class", "p"]
    assert len(lines) == 3 and all(" refer " in line for line in lines[1:])
    assert code == cli.EXIT_OK  # "refer" is an answer, not a failure


def test_heatmaps_are_written_for_attention_models(planted, capsys, tmp_path):
    folder, _ = planted
    heatmaps = tmp_path / "heatmaps"
    code, out, _ = _run(
        capsys, "classify", "--model", model_path("fp32"), folder / "ok.png",
        folder / "exif_rotated.jpg", "--heatmaps", heatmaps, "--format", "json",
    )
    assert code == cli.EXIT_OK
    records = json.loads(out)
    for record in records:
        (written,) = record["heatmaps"]
        overlay = Image.open(written)
        assert overlay.mode == "RGB" and overlay.format == "PNG"
    rotated = Image.open(records[1]["heatmaps"][0])
    assert rotated.size == (40, 30)  # drawn over the EXIF-rotated image
    assert np.asarray(rotated).std() > 0


def test_real_dicom_classifies(real_dicom_path, capsys):
    code, out, _ = _run(
        capsys, "classify", "--model", model_path("int8"), real_dicom_path, "--format", "json"
    )
    (record,) = json.loads(out)
    assert code == cli.EXIT_OK and record["status"] == "ok", record


def test_refused_model_exits_2_with_a_clear_message(tmp_path, capsys):
    pushed = tmp_path / "pushed"
    write_model_dir(pushed, model_path("fp32"), variant="fp32")
    (pushed / spec.MODEL_FILENAME).write_bytes(model_path("fp16").read_bytes())
    code, out, err = _run(capsys, "classify", "--model", pushed, tmp_path)
    assert code == cli.EXIT_USAGE and out == ""
    assert "does not match its manifest" in err


def test_info_and_bench_report_the_model(tmp_path, capsys):
    pushed = tmp_path / "pushed"
    write_model_dir(pushed, model_path("uint8_io"), variant="int8", metrics={"macro_f1": 0.9})
    code, out, _ = _run(capsys, "info", "--model", pushed, "--format", "json")
    info = json.loads(out)
    assert code == 0 and info["verified_manifest"] is True
    assert info["runtime"].startswith("ai-edge-litert") and info["signature"] == "serving_tensor"
    assert info["input"]["dtype"] == "uint8" and info["input"]["quantization"]["scale"] == 1.0
    assert {o["key"] for o in info["outputs"]} == {"probabilities", "attention_1"}
    assert info["class_names"] == list(spec.CLASS_NAMES) and info["metrics"]["macro_f1"] == 0.9
    code, out, _ = _run(capsys, "info", "--model", pushed)
    assert "metric macro_f1" in out and "uint8 [1, 32, 32, 1]" in out

    code, out, err = _run(capsys, "bench", "--model", pushed, "--runs", "5", "--threads", "1")
    bench = json.loads(out)
    assert code == 0 and bench["runs"] == 5 and "latency_ms_p90" in err
    assert 0 < bench["latency_ms_median"] <= bench["latency_ms_p90"]
    assert bench["images_per_s"] > 0 and bench["peak_rss_mb"] > 10 and bench["cold_start_ms"] > 0


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["classify", "--model", str(PLAIN_MODEL)])  # no inputs
    assert caught.value.code == 2
    code, _, err = _run(capsys, "classify", "--model", PLAIN_MODEL, "x.png", "--refer-below", "2")
    assert code == cli.EXIT_USAGE and "refer_below" in err
