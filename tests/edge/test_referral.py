"""Referral on the device: `refer` with a reason (out_of_distribution before low_confidence),
thresholds from the manifest unless overridden, and the reason in every output format."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from edge import cli
from edge.classifier import (
    REASON_LOW_CONFIDENCE,
    REASON_OUT_OF_DISTRIBUTION,
    STATUS_OK,
    STATUS_REFER,
    Classifier,
    ClassifierOptions,
    decide,
)
from edge.manifest import write_model_dir
from tests.edge.golden import REFERRAL, REFERRAL_MODEL

# Golden model (tests/edge/golden.py): ood_score = mean level / 100; the top probability grows
# with the brightness difference between the left and the right half.


def image(left: float, right: float) -> np.ndarray:
    pixels = np.full((32, 32), right, np.uint8)
    pixels[:, :16] = left
    return pixels


def test_decide_puts_out_of_distribution_before_low_confidence():
    confident, unsure = np.array([0.9, 0.1]), np.array([0.5, 0.5])
    assert decide(confident, 0.5, 1.0, 0.6) == (STATUS_OK, None)
    assert decide(unsure, 0.5, 1.0, 0.6) == (STATUS_REFER, REASON_LOW_CONFIDENCE)
    assert decide(confident, 1.5, 1.0, 0.6) == (STATUS_REFER, REASON_OUT_OF_DISTRIBUTION)
    assert decide(unsure, 1.5, 1.0, 0.6) == (STATUS_REFER, REASON_OUT_OF_DISTRIBUTION)
    assert decide(confident, float("nan"), 1.0, 0.6)[1] == REASON_OUT_OF_DISTRIBUTION
    assert decide(confident, None, 1.0, 0.6) == (STATUS_OK, None)  # a model without a score


@pytest.fixture
def model_dir(tmp_path):
    write_model_dir(tmp_path / "model", REFERRAL_MODEL, variant="float32", referral=REFERRAL)
    return tmp_path / "model"


def test_thresholds_come_from_the_manifest_and_options_override_them(model_dir):
    classifier = Classifier.open(model_dir)
    assert (classifier.ood_threshold, classifier.refer_below) == (1.0, 0.6)
    bright_and_sure = classifier.classify(image(250, 50))  # mean 150 → ood 1.5
    assert (bright_and_sure.status, bright_and_sure.reason) == (
        STATUS_REFER, REASON_OUT_OF_DISTRIBUTION)
    assert bright_and_sure.ood_score == pytest.approx(1.5, abs=0.01)
    dark_and_sure = classifier.classify(image(90, 0))  # ood 0.45, top probability ~0.99
    assert (dark_and_sure.status, dark_and_sure.reason) == (STATUS_OK, None)
    dark_and_unsure = classifier.classify(image(20, 20))  # top probability 0.25
    assert (dark_and_unsure.status, dark_and_unsure.reason) == (
        STATUS_REFER, REASON_LOW_CONFIDENCE)

    lenient = Classifier.open(model_dir, ClassifierOptions(ood_threshold=2.0, refer_below=0.0))
    assert lenient.classify(image(250, 50)).status == STATUS_OK
    assert lenient.classify(image(20, 20)).status == STATUS_OK


def test_a_forged_referral_record_is_refused(model_dir):
    from edge.manifest import ManifestError

    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["referral"] = {"ood_threshold": "never", "refer_below": 0.5}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="referral"):
        Classifier.open(model_dir)


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_reason_and_ood_score_reach_every_output_format(model_dir, tmp_path, capsys, fmt):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, pixels in {"bright.png": image(250, 50), "dark.png": image(90, 0),
                         "unsure.png": image(20, 20)}.items():
        Image.fromarray(pixels).save(folder / name)
    code = cli.main(["classify", "--model", str(model_dir), str(folder), "--format", fmt])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK  # "refer" is an answer, not a failure
    if fmt == "json":
        records = {r["path"].split("/")[-1]: r for r in json.loads(out)}
    elif fmt == "csv":
        records = {r["path"].split("/")[-1]: r for r in csv.DictReader(io.StringIO(out))}
    else:
        assert "out_of_distribution" in out and "low_confidence" in out
        return
    assert records["bright.png"]["status"] == "refer"
    assert records["bright.png"]["reason"] == "out_of_distribution"
    assert float(records["bright.png"]["ood_score"]) == pytest.approx(1.5, abs=0.01)
    assert records["unsure.png"]["reason"] == "low_confidence"
    assert records["dark.png"]["status"] == "ok" and not records["dark.png"].get("reason")
