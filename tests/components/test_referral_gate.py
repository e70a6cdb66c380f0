"""The referral gate's numbers and verdicts as pure functions, and the built-in OOD set."""

import numpy as np
import pytest

from components.lib import ood_images, referral_gate
from components.lib.referral_gate import Outputs

REFERRAL = {"ood_threshold": 1.0, "refer_below": 0.6}


def _outputs(test_ood, ood_ood, test_top=0.9):
    test_probabilities = np.tile([test_top, 1 - test_top], (len(test_ood), 1))
    return Outputs(test_probabilities, np.asarray(test_ood, float),
                   np.tile([0.9, 0.1], (len(ood_ood), 1)), np.asarray(ood_ood, float))


def test_measure_counts_acceptance_ok_and_ood_referral_per_family():
    outputs = _outputs(test_ood=[0.2, 0.5, 1.5, 0.9], ood_ood=[3.0, 0.5, 2.0, 9.0])
    measured = referral_gate.measure(outputs, REFERRAL, ["flat", "flat", "noise", "noise"])
    assert measured["test_acceptance"] == 0.75
    assert measured["ood_referred"] == 0.75
    assert measured["ood_referred_by_family"] == {"flat": 0.5, "noise": 1.0}
    unsure = _outputs(test_ood=[0.2, 0.5], ood_ood=[3.0], test_top=0.55)
    assert referral_gate.measure(unsure, REFERRAL)["test_ok"] == 0.0  # low confidence


def test_stability_refers_unstable_images_and_enters_the_agreement():
    outputs = _outputs(test_ood=[0.2, 0.5, 0.5, 1.5], ood_ood=[3.0])
    outputs.test_stability = np.array([0.8, -0.2, 0.1, -0.5])
    measured = referral_gate.measure(outputs, REFERRAL | {"unstable_below": 0.0})
    assert measured["test_unstable"] == 0.25  # the OOD image is referred as OOD first
    assert measured["test_ok"] == 0.5 and measured["test_acceptance"] == 0.75
    steadier = Outputs.of((outputs.test_probabilities, outputs.test_ood,
                           np.array([0.8, 0.3, 0.1, -0.5])),
                          (outputs.ood_probabilities, outputs.ood_ood))
    assert steadier.ood_stability is None
    assert referral_gate.agreement(outputs, steadier, REFERRAL) == pytest.approx(4 / 5)


def test_agreement_compares_ok_refer_decisions_with_the_float_model():
    reference = _outputs(test_ood=[0.2, 0.5, 0.9, 0.95], ood_ood=[3.0] * 4)
    same = _outputs(test_ood=[0.25, 0.45, 0.8, 0.99], ood_ood=[2.5] * 4)
    flipped = _outputs(test_ood=[0.2, 0.5, 1.2, 0.95], ood_ood=[3.0, 3.0, 0.9, 3.0])
    assert referral_gate.agreement(reference, same, REFERRAL) == 1.0
    assert referral_gate.agreement(reference, flipped, REFERRAL) == pytest.approx(6 / 8)


def test_verdict_names_each_number_and_threshold():
    passed, lines = referral_gate.verdict(
        {"test_acceptance": 0.97, "ood_referred": 0.93}, 0.995)
    assert not passed
    assert lines == ["test acceptance 0.970 (min 0.95): pass",
                     "OOD referral 0.930 (min 0.95): FAIL",
                     "ok/refer agreement with float 0.995 (min 0.99): pass"]


def test_ood_set_is_deterministic_covers_every_family_and_is_not_one_flat_thing():
    first, again = ood_images.generate(64, per_family=4), ood_images.generate(64, per_family=4)
    assert [name for _, name, _ in first] == [name for _, name, _ in again]
    assert all((a[2] == b[2]).all() for a, b in zip(first, again, strict=True))
    assert {family for family, _, _ in first} == set(ood_images.FAMILIES)
    assert all(p.dtype == np.uint8 and p.shape == (64, 64) for _, _, p in first)
    stds = [p.std() for family, _, p in first if family != "flat"]
    assert min(stds) > 1.0  # everything but the flat fields has structure
    other = ood_images.generate(64, per_family=4, seed=1)
    assert any((a[2] != b[2]).any() for a, b in zip(first, other, strict=True))
