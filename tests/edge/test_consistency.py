"""The consistency check on the device: a model exported with it carries a `stability` output,
and an image whose answer a mild re-acquisition changes is referred as `unstable`, in every
output format and in the Android export's referral category."""

import json

import numpy as np
import pytest

from edge import cli
from edge.classifier import (
    REASON_OUT_OF_DISTRIBUTION,
    REASON_UNSTABLE,
    STATUS_OK,
    STATUS_REFER,
    Classifier,
    decide,
)
from edge.manifest import write_model_dir
from tests.edge.golden import CONSISTENCY_MODEL, REFERRAL

CONFIDENT = np.array([0.9, 0.05, 0.03, 0.02], np.float32)


def spot(centre: float, ring: float = 40.0) -> np.ndarray:
    """A dark image (in distribution) with a one-pixel detail at (16, 16) and its four
    neighbours at `ring`."""
    pixels = np.full((32, 32), 40, np.uint8)
    pixels[15:18, 16] = pixels[16, 15:18] = ring
    pixels[16, 16] = centre
    return pixels


def test_decide_refers_unstable_after_out_of_distribution_and_before_low_confidence():
    assert decide(CONFIDENT, 0.5, 1.0, 0.6, 0.3) == (STATUS_OK, None)
    assert decide(CONFIDENT, 0.5, 1.0, 0.6, -0.1) == (STATUS_REFER, REASON_UNSTABLE)
    assert decide(CONFIDENT, 0.5, 1.0, 0.6, float("nan")) == (STATUS_REFER, REASON_UNSTABLE)
    assert decide(CONFIDENT, 1.5, 1.0, 0.6, -0.1) == (STATUS_REFER, REASON_OUT_OF_DISTRIBUTION)
    assert decide(CONFIDENT * 0.5, 0.5, 1.0, 0.6, -0.1)[1] == REASON_UNSTABLE
    assert decide(CONFIDENT, 0.5, 1.0, 0.6, 0.1, unstable_below=0.2)[1] == REASON_UNSTABLE
    assert decide(CONFIDENT, 0.5, 1.0, 0.6, None) == (STATUS_OK, None)  # no check in the model


@pytest.fixture
def model_dir(tmp_path):
    referral = REFERRAL | {"refer_below": 0.0, "unstable_below": 0.0}
    write_model_dir(tmp_path / "model", CONSISTENCY_MODEL, variant="float32", referral=referral)
    return tmp_path / "model"


def test_a_faint_detail_is_unstable_and_a_clear_one_is_ok(model_dir):
    classifier = Classifier.open(model_dir)
    assert classifier.has_consistency_check
    clear = classifier.classify(spot(200))
    assert (clear.status, clear.predicted_class) == (STATUS_OK, classifier.class_names[0])
    assert clear.stability > 0
    # Above its 5x5 mean by a hair its neighbours take back: blurred, it is below that mean.
    faint = classifier.classify(spot(52, ring=28))
    assert faint.predicted_class == classifier.class_names[0]
    assert (faint.status, faint.reason) == (STATUS_REFER, REASON_UNSTABLE)
    assert faint.stability < 0
    bright = classifier.classify(np.full((32, 32), 200, np.uint8))  # mean 200 → ood 2
    assert bright.reason == REASON_OUT_OF_DISTRIBUTION


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_the_reason_and_the_stability_reach_the_output(model_dir, tmp_path, capsys, fmt):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(spot(52, ring=28)).save(folder / "faint.png")
    Image.fromarray(spot(200)).save(folder / "clear.png")
    code = cli.main(["classify", "--model", str(model_dir), str(folder), "--format", fmt])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK
    if fmt == "table":
        assert REASON_UNSTABLE in out
        return
    records = {r["path"].split("/")[-1]: r for r in json.loads(out)}
    assert records["faint.png"]["reason"] == REASON_UNSTABLE
    assert records["faint.png"]["stability"] < 0
    assert records["clear.png"]["status"] == STATUS_OK and records["clear.png"]["stability"] > 0
