"""components.lib.shift_gate: the verdict says which cell missed which floor, and a referred cell
is safe while a referred resolution cell or mildest cell is not."""

import numpy as np

from components.lib import shift_gate
from components.lib.shift_gate import ShiftGateConfig
from edge import shift

SIZE = 32
REFERRAL = {"ood_threshold": 1.0, "refer_below": 0.0, "target_accuracy": 0.97}
GATE = ShiftGateConfig(families=("source_resolution", "blur"))


def _images(count=8):
    rng = np.random.default_rng(0)
    # Label 0: a flat image, label 1: fine texture that blur removes.
    flat = [np.full((SIZE, SIZE), 120, np.uint8) for _ in range(count // 2)]
    textured = [rng.integers(0, 256, (SIZE, SIZE)).astype(np.uint8) for _ in range(count // 2)]
    return flat + textured, np.array([0] * (count // 2) + [1] * (count // 2))


def _texture(inputs):
    return np.abs(np.diff(inputs[..., 0], axis=2)).mean(axis=(1, 2))


def _texture_classifier(inputs):
    """Confident class 1 when there is pixel texture: blur turns it into a confident class 0."""
    is_textured = _texture(inputs) > 25
    probabilities = np.stack([~is_textured, is_textured], axis=1).astype(np.float32)
    return probabilities, np.zeros(len(inputs), np.float32)


def _texture_classifier_that_sees_blur(inputs):
    probabilities, _ = _texture_classifier(inputs)
    texture = _texture(inputs)
    # Neither flat nor sharp: the OOD score rises above its threshold of 1.
    ood = np.where((texture > 1) & (texture < 30), 2.0, 0.0).astype(np.float32)
    return probabilities, ood


def test_confident_wrong_answers_under_blur_fail_and_referring_them_passes():
    images, labels = _images()
    measured = shift_gate.measure(
        {"blind": _texture_classifier, "sees_blur": _texture_classifier_that_sees_blur},
        images, labels, REFERRAL, SIZE, GATE)
    expected = [cell.name for cell in shift.cells(GATE.families)]
    assert [row["cell"] for row in measured["blind"]] == expected

    blind = shift_gate.verdict(measured["blind"], REFERRAL, GATE)
    assert not blind["passed"]
    assert any(f.startswith("blur@2: accuracy among ok 0.500 < 0.97") for f in blind["failures"])
    assert blind["worst"]["family"] == "blur" and "FAIL" in blind["summary"]

    seeing = shift_gate.verdict(measured["sees_blur"], REFERRAL, GATE)
    blur_rows = {row["severity"]: row for row in measured["sees_blur"] if row["family"] == "blur"}
    assert blur_rows[2.0]["acceptance"] == 0.5 and blur_rows[2.0]["accuracy_ok"] == 1.0
    assert blur_rows[2.0]["referred_ood"] == 0.5
    assert seeing["passed"], seeing["failures"]


def test_referring_every_resolution_or_mildest_cell_fails_and_names_the_floor():
    images, labels = _images()

    def refers_everything(inputs):
        probabilities, _ = _texture_classifier(inputs)
        return probabilities, np.full(len(inputs), 5.0, np.float32)

    rows = shift_gate.measure({"m": refers_everything}, images, labels, REFERRAL, SIZE, GATE)["m"]
    assert all(row["accuracy_ok"] is None and row["acceptance"] == 0 for row in rows)
    result = shift_gate.verdict(rows, REFERRAL, GATE)
    assert not result["passed"] and result["worst"] is None
    assert "source_resolution@1.5: source-resolution acceptance 0.000 < 0.90" in result["failures"]
    assert "blur@0.5: mildest-cell acceptance 0.000 < 0.50" in result["failures"]
    assert not any(f.startswith("blur@2") for f in result["failures"])  # severe: referral is safe


def test_floor_is_configurable_and_the_sample_is_class_balanced():
    rows = [{"cell": "gamma@1.5", "family": "gamma", "severity": 1.5, "mildest": False,
             "acceptance": 1.0, "accuracy_ok": 0.96, "accuracy_all": 0.96, "wrong_ok": 4}]
    assert not shift_gate.verdict(rows, REFERRAL)["passed"]
    assert shift_gate.verdict(rows, REFERRAL, ShiftGateConfig(min_ok_accuracy=0.95))["passed"]
    labels = np.array([0] * 50 + [1] * 10 + [2] * 40)
    chosen = shift_gate.sample(labels, 24, seed=1)
    assert np.bincount(labels[chosen]).tolist() == [8, 8, 8]
    np.testing.assert_array_equal(chosen, shift_gate.sample(labels, 24, seed=1))
