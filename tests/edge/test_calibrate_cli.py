"""cxr-edge calibrate and --site-calibration, driven through edge.cli.main like a user would."""

import csv
import hashlib
import json

import numpy as np
from PIL import Image

from edge import cli
from edge.site import calibration
from tests.edge.golden import model_path

CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
MODEL = model_path("fp32")


def _site(tmp_path, n=48):
    """n small grey images, and findings naming half by relative path and half by sha256."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        gray = (rng.random((48, 48)) * (80 + 3 * i)).astype(np.uint8)
        path = folder / f"case-{i}.png"
        Image.fromarray(gray).save(path)
        key = f"images/{path.name}" if i % 2 else hashlib.sha256(path.read_bytes()).hexdigest()
        rows.append((key, CLASSES[i % 4]))
    rows.append(("images/nowhere.png", "COVID"))  # matches no image: listed, not dropped
    findings = tmp_path / "findings.csv"
    with findings.open("w", newline="") as handle:
        csv.writer(handle).writerows([("file", "label"), *rows])
    return folder, findings


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_calibrate_writes_the_record_and_classify_screens_with_it(tmp_path, capsys):
    folder, findings = _site(tmp_path)
    out = tmp_path / "site.json"
    code, table, err = _run(capsys, "calibrate", "--model", MODEL, "--findings", findings,
                            folder, "--target", "sensitivity=0.8", "--precision", "0.3",
                            "--cost-per-test", "3", "--out", out)
    assert code == 0, err
    assert "threshold  TP" in table and "cost/case" in table
    assert "48 with a finding" in err and "1 findings match no image: line 50" in err
    record = json.loads(out.read_text())
    for key in ("score", "threshold", "target", "n_positive", "n_negative", "model_sha256"):
        assert key in record
    assert (record["n_positive"], record["n_negative"]) == (36, 12)
    assert record["model_sha256"] == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert record["estimates"]["sensitivity"]["value"] >= 0.8

    code, text, err = _run(capsys, "classify", "--model", MODEL, "--site-calibration", out,
                           folder, "--format", "json")
    assert code == 0, err
    results = json.loads(text)
    fitted = calibration.load(out)
    for result in results:
        assert result["screen_threshold"] == round(fitted.threshold, 6)
        expected = 1 - result["probabilities"]["Normal"] >= fitted.threshold
        assert result["screen"] == ("positive" if expected else "negative"), result
    assert {r["screen"] for r in results} <= {"positive", "negative"}

    code, text, _ = _run(capsys, "classify", "--model", MODEL, folder, "--format", "json")
    assert all(r["screen"] is None and "screen_threshold" in r for r in json.loads(text))


def test_a_calibration_for_another_model_is_refused(tmp_path, capsys):
    folder, findings = _site(tmp_path)
    out = tmp_path / "site.json"
    assert _run(capsys, "calibrate", "--model", MODEL, "--findings", findings, folder,
                "--target", "sensitivity=0.8", "--precision", "0.3", "--out", out)[0] == 0
    code, _, err = _run(capsys, "classify", "--model", model_path("int8"), "--site-calibration",
                        out, folder)
    assert code == 2 and "recalibrate" in err


def test_too_few_cases_are_refused_with_what_is_missing(tmp_path, capsys):
    folder, findings = _site(tmp_path, n=12)
    code, table, err = _run(capsys, "calibrate", "--model", MODEL, "--findings", findings,
                            folder, "--target", "sensitivity=0.9", "--out", tmp_path / "s.json")
    assert code == 2 and "more confirmed positives" in err, err
    assert "threshold  TP" in table  # the table is still shown
    assert not (tmp_path / "s.json").exists()
    code, _, err = _run(capsys, "calibrate", "--model", MODEL, "--findings", findings, folder,
                        "--target", "sensitivity", "--out", tmp_path / "s.json")
    assert code == 2 and "NAME=VALUE" in err
