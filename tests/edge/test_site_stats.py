"""edge.site's statistics against hand-worked values and brute force (numpy only)."""

import itertools

import numpy as np
import pytest

from edge.site import calibration, screening, stats

CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")


def test_wilson_matches_the_published_values():
    # Newcombe (1998), table I: 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775; 10/10 -> 0.7225-1
    for (k, n), (lo, hi) in {(81, 263): (0.2553, 0.3662), (0, 10): (0.0, 0.2775),
                             (10, 10): (0.7225, 1.0)}.items():
        got = stats.wilson(k, n)
        assert got == pytest.approx((lo, hi), abs=1e-4), (k, n, got)
    assert stats.wilson(0, 0) is None


def test_cases_for_precision_is_the_smallest_n_that_reaches_the_half_width():
    for p, h in ((0.9, 0.05), (0.9, 0.10), (0.7, 0.10)):
        n = stats.cases_for_precision(p, h)
        assert _half_width(p, n) <= h + 1e-9 < _half_width(p, n - 1), (p, h, n)
    assert stats.cases_for_precision(0.9, 0.05) > 130  # the textbook z² p (1-p) / h² = 138


def _half_width(p, n):
    lo, hi = stats.wilson(p * n, n)
    return (hi - lo) / 2


def test_kappa_and_one_vs_rest_on_a_worked_confusion_matrix():
    matrix = np.array([[20, 5], [10, 15]])  # observed 0.70, chance 0.50 -> kappa 0.40
    assert stats.cohen_kappa(matrix) == pytest.approx(0.4)
    per_class = stats.one_vs_rest(matrix, ["a", "b"])
    assert per_class["a"]["sensitivity"]["value"] == 0.8
    assert per_class["a"]["specificity"]["value"] == 0.6
    assert per_class["a"]["ppv"]["value"] == pytest.approx(20 / 30, abs=1e-4)
    assert per_class["a"]["npv"]["value"] == 0.75
    assert stats.cohen_kappa(np.zeros((2, 2))) is None


def test_auc_equals_the_pairwise_probability_and_the_roc_ends_at_the_corners():
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(40), 1)  # ties on purpose
    positives = rng.random(40) < 0.5
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0)
             for p, n in itertools.product(scores[positives], scores[~positives])]
    assert stats.auc(scores, positives) == pytest.approx(np.mean(pairs))
    fpr, tpr, _ = stats.roc_curve(scores, positives)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(np.mean(pairs))
    lo, hi = stats.bootstrap_auc_interval(scores, positives)
    assert lo <= stats.auc(scores, positives) <= hi


def test_the_threshold_table_counts_each_case_once_and_costs_per_true_case():
    scores = np.array([0.1, 0.4, 0.6, 0.9])
    positives = np.array([False, True, False, True])
    rows = {row["threshold"]: row for row in screening.threshold_table(scores, positives, 2.0)}
    row = rows[0.5]
    assert (row["tp"], row["fp"], row["tn"], row["fn"], row["referred"]) == (1, 1, 1, 1, 2)
    assert row["cost_per_true_case"] == 4.0  # two tests for one true case
    assert rows[0.0]["sensitivity"]["value"] == 1.0 and rows[1.0]["referred"] == 0


def _synthetic_site(n, seed, separation=1.2):
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, n, p=[0.3, 0.2, 0.35, 0.15])
    cases = []
    for label in labels:
        logits = rng.normal(0, 1, len(CLASSES))
        logits[CLASSES.index(label)] += separation
        p = np.exp(logits) / np.exp(logits).sum()
        cases.append({"probabilities": dict(zip(CLASSES, p.tolist(), strict=True)),
                      "label": str(label)})
    return cases


def test_the_operating_point_meets_its_target_and_holds_on_the_other_half():
    """Calibrate on one half of a site, check the other: the point meets the target on the
    first half, and the second half's sensitivity lies in the reported interval (nearly always:
    20 sites, at most 3 outside a 95% interval)."""
    outside = 0
    for seed in range(20):
        cases = _synthetic_site(400, seed)
        fitted = calibration.fit(cases[:200], CLASSES, "abnormal", {"sensitivity": 0.9},
                                 model_sha256="0" * 64)
        assert fitted.estimates["sensitivity"]["value"] >= 0.9
        held = [c for c in cases[200:] if c["label"] != "Normal"]
        sensitivity = np.mean([fitted.screen(c["probabilities"])["screen"] == "positive"
                               for c in held])
        lo, hi = fitted.estimates["sensitivity"]["ci"]
        outside += not lo <= sensitivity <= hi
    assert outside <= 3, outside


@pytest.mark.parametrize("target", [{"specificity": 0.7}, {"max_referral_rate": 0.5},
                                    {"sensitivity": 0.85, "specificity": 0.5}])
def test_other_targets_are_met_on_the_calibration_cases(target):
    cases = _synthetic_site(300, 7)
    fitted = calibration.fit(cases, CLASSES, "abnormal", target, model_sha256="0" * 64)
    if "specificity" in target:
        assert fitted.estimates["specificity"]["value"] >= target["specificity"]
    if "sensitivity" in target:
        assert fitted.estimates["sensitivity"]["value"] >= target["sensitivity"]
    if "max_referral_rate" in target:
        assert fitted.estimates["referred_share"] <= target["max_referral_rate"]


def test_too_few_confirmed_cases_are_refused_with_how_many_more():
    cases = _synthetic_site(30, 1)
    with pytest.raises(screening.CalibrationRefused, match=r"needs at least \d+ and 10.*more"):
        calibration.fit(cases, CLASSES, "abnormal", {"sensitivity": 0.9}, model_sha256="0" * 64)
    with pytest.raises(screening.CalibrationRefused, match="no threshold reaches"):
        calibration.fit(_synthetic_site(300, 2, separation=0), CLASSES, "abnormal",
                        {"sensitivity": 0.99, "specificity": 0.99}, model_sha256="0" * 64)


def test_a_class_score_and_not_assessable_cases():
    cases = _synthetic_site(300, 4) + [{"probabilities": None, "label": "not_assessable"}] * 3
    fitted = calibration.fit(cases, CLASSES, "COVID", {"sensitivity": 0.8}, model_sha256="a" * 64)
    assert fitted.positive_classes == ("COVID",) and fitted.n_not_assessable == 3
    assert fitted.n_positive == sum(c["label"] == "COVID" for c in cases)
    with pytest.raises(ValueError, match="normal class"):
        calibration.fit(cases, ("a", "b"), "abnormal", {"sensitivity": 0.8}, "a" * 64)


def test_a_calibration_is_bound_to_its_model(tmp_path):
    fitted = calibration.fit(_synthetic_site(300, 5), CLASSES, "abnormal",
                             {"sensitivity": 0.9}, model_sha256="a" * 64)
    calibration.save(fitted, tmp_path / "site.json")
    loaded = calibration.load(tmp_path / "site.json")
    assert loaded == fitted
    assert calibration.for_model(loaded, "a" * 64, CLASSES) == fitted
    with pytest.raises(calibration.CalibrationError, match="recalibrate"):
        calibration.for_model(loaded, "b" * 64, CLASSES)
    (tmp_path / "bad.json").write_text('{"score": "abnormal"}')
    with pytest.raises(calibration.CalibrationError, match="lacks"):
        calibration.load(tmp_path / "bad.json")


def test_local_referral_thresholds_meet_their_targets():
    cases = _synthetic_site(300, 6)
    rng = np.random.default_rng(0)
    for case in cases:
        case["ood_score"] = float(rng.random())
    fitted = calibration.fit_referral(cases, CLASSES, {"ood_acceptance": 0.95, "accuracy": 0.8})
    accepted = np.mean([c["ood_score"] <= fitted["ood_threshold"] for c in cases])
    assert accepted >= 0.95
    kept = [c for c in cases if max(c["probabilities"].values()) >= fitted["refer_below"]]
    accuracy = np.mean([max(c["probabilities"], key=c["probabilities"].get) == c["label"]
                        for c in kept])
    assert accuracy >= 0.8
