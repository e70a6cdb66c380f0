"""Top-1 metrics: the one definition used for checkpoint selection, the Evaluator's gates, the
Quantizer's gate, summaries and the report.

Every score here is read off the arg-max (top-1) confusion matrix: a prediction is the class with
the highest probability, however low that probability is. The Evaluator's TFMA metrics
(components/lib/tfma_metrics.py) build that matrix in Beam and call the `*_from_confusion` functions
below, so the gate and the Trainer cannot compute two different "macro F1"s.

A class with no true and no predicted examples scores F1 0 here (sklearn's zero_division=0),
so a split missing a class can never look better than one that has it.

Calibration: expected calibration error (Guo et al. 2017) of the top-1 confidence over
`CALIBRATION_BINS` equal-width bins, with the reliability table it is computed from.
"""

from collections.abc import Sequence

import numpy as np


def macro_f1(y_true, y_pred, num_classes: int) -> float:
    """Unweighted mean of the per-class F1 scores over all `num_classes` classes."""
    return float(np.mean(per_class_f1(y_true, y_pred, num_classes)))


def per_class_f1(y_true, y_pred, num_classes: int) -> np.ndarray:
    """F1 of each class index 0..num_classes-1, from integer labels and predictions."""
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in length")
    return per_class_f1_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


def per_class_recall(y_true, y_pred, num_classes: int) -> np.ndarray:
    return per_class_recall_from_confusion(confusion_matrix(y_true, y_pred, num_classes))


def macro_f1_from_confusion(confusion) -> float:
    """Macro F1 of a square confusion matrix (rows true, columns predicted; counts or weights)."""
    return float(np.mean(per_class_f1_from_confusion(confusion)))


def per_class_f1_from_confusion(confusion) -> np.ndarray:
    confusion = _square(confusion)
    true_positive = np.diag(confusion)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return np.where(denominator > 0, 2 * true_positive / np.maximum(denominator, 1e-12), 0.0)


def per_class_recall_from_confusion(confusion) -> np.ndarray:
    confusion = _square(confusion)
    actual = confusion.sum(axis=1)
    return np.where(actual > 0, np.diag(confusion) / np.maximum(actual, 1e-12), 0.0)


def per_class_precision_from_confusion(confusion) -> np.ndarray:
    confusion = _square(confusion)
    predicted = confusion.sum(axis=0)
    return np.where(predicted > 0, np.diag(confusion) / np.maximum(predicted, 1e-12), 0.0)


def _square(confusion) -> np.ndarray:
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {confusion.shape}")
    return confusion


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} holds a class index outside 0..{num_classes - 1}")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    return confusion


def f1_report(y_true, y_pred, class_names: Sequence[str]) -> dict[str, object]:
    """Macro F1, per-class F1 and recall keyed by class name (JSON-ready)."""
    n = len(class_names)
    f1 = per_class_f1(y_true, y_pred, n)
    recall = per_class_recall(y_true, y_pred, n)
    return {
        "macro_f1": float(np.mean(f1)),
        "per_class_f1": {name: float(v) for name, v in zip(class_names, f1, strict=True)},
        "per_class_recall": {name: float(v) for name, v in zip(class_names, recall, strict=True)},
    }


CALIBRATION_BINS = 15


def calibration_bin(confidence, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """Index of the equal-width bin of (0, 1] each top-1 confidence falls in (1.0 → last bin)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability_table(probabilities, y_true, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """[bins, 3]: examples, summed top-1 confidence and correct top-1 answers per bin."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(np.float64)
    table = np.zeros((bins, 3))
    index = calibration_bin(confidence, bins)
    np.add.at(table[:, 0], index, 1.0)
    np.add.at(table[:, 1], index, confidence)
    np.add.at(table[:, 2], index, correct)
    return table


def expected_calibration_error_from_table(table) -> float:
    """Σ_bins (n_b / N) · |accuracy_b − confidence_b|, from a `reliability_table`."""
    table = np.asarray(table, dtype=np.float64)
    total = table[:, 0].sum()
    if total == 0:
        return float("nan")
    return float(np.abs(table[:, 2] - table[:, 1]).sum() / total)


def expected_calibration_error(probabilities, y_true, bins: int = CALIBRATION_BINS) -> float:
    return expected_calibration_error_from_table(reliability_table(probabilities, y_true, bins))
