import numpy as np
import pytest
from sklearn.metrics import f1_score

from trainer import metrics


def test_macro_f1_matches_sklearn_on_random_labels():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    expected = f1_score(y_true, y_pred, average="macro", labels=range(4), zero_division=0)
    assert metrics.macro_f1(y_true, y_pred, 4) == pytest.approx(expected)


def test_class_absent_everywhere_counts_as_zero():
    # Two perfect classes out of four: a missing class can never raise the score.
    assert metrics.macro_f1([0, 1, 0, 1], [0, 1, 0, 1], 4) == pytest.approx(0.5)


def test_single_class_predictor_scores_low():
    y_true = np.repeat(np.arange(4), 25)
    assert metrics.macro_f1(y_true, np.zeros(100, int), 4) == pytest.approx(0.1)


def test_report_names_classes_and_recall():
    report = metrics.f1_report([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    assert report["per_class_recall"] == {"a": 0.5, "b": 1.0}
    assert set(report["per_class_f1"]) == {"a", "b"}


def test_out_of_range_label_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        metrics.macro_f1([0, 5], [0, 1], 4)
