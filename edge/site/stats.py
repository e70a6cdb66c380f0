"""Interval estimates and agreement statistics for a few hundred confirmed cases (numpy only)."""

from __future__ import annotations

import math

import numpy as np

Z_95 = 1.959963984540054  # the two-sided 95% normal quantile
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0  # the same cases give the same interval on every device


def wilson(successes: int, total: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None when there is nothing to estimate.

    Unlike the normal approximation it stays inside 0..1 and is honest at 0/n and n/n, which
    is where a site's small counts often are."""
    if total <= 0:
        return None
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def cases_for_precision(p: float, half_width: float, z: float = Z_95) -> int:
    """The smallest n whose Wilson interval around a proportion p is at most ±half_width.

    Starts from the normal-approximation n = z² p (1 − p) / h² and walks to the exact one."""
    if not 0 < half_width < 0.5:
        raise ValueError(f"the interval half-width must be within 0..0.5, got {half_width}")
    n = max(1, math.ceil(z * z * p * (1 - p) / (half_width * half_width)) - 5)
    while _exact_half_width(p, n, z) > half_width:
        n += 1
    return n


def _exact_half_width(p: float, n: int, z: float) -> float:
    denominator = 1 + z * z / n
    return z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))


def estimate(successes: int, total: int) -> dict:
    """{"value", "ci": [lo, hi], "k", "n"}: one proportion as the API and site.json write it."""
    interval = wilson(successes, total)
    return {"value": None if not total else round(successes / total, 4),
            "ci": None if interval is None else [round(interval[0], 4), round(interval[1], 4)],
            "k": int(successes), "n": int(total)}


def confusion_matrix(truth: list[str], predicted: list[str], classes: list[str]) -> np.ndarray:
    """[true class, predicted class] counts in the given class order."""
    index = {name: i for i, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return matrix


def cohen_kappa(matrix: np.ndarray) -> float | None:
    """Agreement beyond chance between the model and the reference; None with no cases."""
    total = matrix.sum()
    if total == 0:
        return None
    observed = np.trace(matrix) / total
    expected = float((matrix.sum(axis=0) * matrix.sum(axis=1)).sum()) / (total * total)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return float((observed - expected) / (1 - expected))


def one_vs_rest(matrix: np.ndarray, classes: list[str]) -> dict[str, dict]:
    """Per class: sensitivity, specificity, PPV and NPV, each with its Wilson interval."""
    total = int(matrix.sum())
    result = {}
    for i, name in enumerate(classes):
        tp = int(matrix[i, i])
        fn = int(matrix[i].sum()) - tp
        fp = int(matrix[:, i].sum()) - tp
        tn = total - tp - fn - fp
        result[name] = {"tp": tp, "fp": fp, "tn": tn, "fn": fn,
                        "sensitivity": estimate(tp, tp + fn),
                        "specificity": estimate(tn, tn + fp),
                        "ppv": estimate(tp, tp + fp), "npv": estimate(tn, tn + fn)}
    return result


def roc_curve(scores: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """(false positive rate, true positive rate, threshold) with "positive when score ≥ t",
    from the strictest threshold (nothing positive) to the loosest (everything positive)."""
    scores, positives = np.asarray(scores, float), np.asarray(positives, bool)
    order = np.argsort(-scores, kind="mergesort")
    scores, positives = scores[order], positives[order]
    distinct = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tps = np.cumsum(positives)[distinct]
    fps = (distinct + 1) - tps
    n_pos, n_neg = max(int(positives.sum()), 1), max(int((~positives).sum()), 1)
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, scores[distinct]]
    return fpr, tpr, thresholds


def auc(scores: np.ndarray, positives: np.ndarray) -> float | None:
    """The area under the ROC curve as the Mann–Whitney probability (ties count half)."""
    scores, positives = np.asarray(scores, float), np.asarray(positives, bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_auc_interval(scores: np.ndarray, positives: np.ndarray,
                           rounds: int = BOOTSTRAP_ROUNDS,
                           seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """The 95% percentile interval of the AUC over resamples stratified by class."""
    scores, positives = np.asarray(scores, float), np.asarray(positives, bool)
    pos, neg = scores[positives], scores[~positives]
    if len(pos) < 2 or len(neg) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    labels = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    for _ in range(rounds):
        sample = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        values.append(auc(sample, labels))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), float)
    starts = np.r_[0, np.nonzero(np.diff(sorted_values))[0] + 1]
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    return ranks
