"""Macro F1: the one definition used for checkpoint selection, summaries and evaluation.

A class with no true and no predicted examples scores F1 0 here (sklearn's zero_division=0),
so a split missing a class can never look better than one that has it.
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
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    denominator = predicted + actual
    return np.where(denominator > 0, 2 * true_positive / np.maximum(denominator, 1), 0.0)


def per_class_recall(y_true, y_pred, num_classes: int) -> np.ndarray:
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    actual = confusion.sum(axis=1)
    return np.where(actual > 0, np.diag(confusion) / np.maximum(actual, 1), 0.0)


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
