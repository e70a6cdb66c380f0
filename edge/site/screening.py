"""The screening decision a clinic chooses: a score, a threshold, and the evidence for it.

The score is "abnormal" (1 − P(normal class)) or one class's probability. A result is screen
positive when its score is at least the threshold. The threshold table is the form of WHO/TDR's
toolkit for the local calibration of CAD thresholds: at each candidate threshold TP, FP, TN,
FN, sensitivity, specificity, PPV, NPV, the number referred for a confirmatory test and, given
the cost of one test, the cost per true case found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.site import stats

SCORE_ABNORMAL = "abnormal"
NORMAL_NAMES = ("normal", "no finding", "no_finding")  # how a class list spells "normal"
NOT_ASSESSABLE = "not_assessable"
TABLE_STEP = 0.05  # the toolkit's candidate thresholds: 0.00, 0.05, ..., 1.00
TARGETS = ("sensitivity", "specificity", "max_referral_rate")
# The interval half-width a calibration must reach at its target: the minimum number of
# confirmed cases is the n for which the Wilson interval is this narrow (stats.cases_for_precision).
DEFAULT_PRECISION = 0.10
MIN_OTHER_GROUP = 10  # the group the target does not constrain still needs a few cases


class CalibrationRefused(ValueError):
    """Too few confirmed cases, or a target that no threshold reaches; says what is missing."""


def normal_class(class_names) -> str | None:
    return next((name for name in class_names if name.strip().lower() in NORMAL_NAMES), None)


def check_score(score: str, class_names) -> None:
    if score == SCORE_ABNORMAL:
        if normal_class(class_names) is None:
            raise ValueError(f"the score 'abnormal' needs a normal class; this model's classes "
                             f"are {list(class_names)}: choose one of them as the score")
    elif score not in class_names:
        raise ValueError(f"unknown score {score!r}: use 'abnormal' or one of {list(class_names)}")


def screening_score(probabilities: dict, score: str, class_names) -> float:
    """The score of one result from its class probabilities (a name -> p mapping)."""
    if score == SCORE_ABNORMAL:
        return 1.0 - float(probabilities[normal_class(class_names)])
    return float(probabilities[score])


def is_positive_label(label: str, score: str, class_names) -> bool:
    """What the reference says for the screening question: abnormal, or that class."""
    if score == SCORE_ABNORMAL:
        return label != normal_class(class_names)
    return label == score


def scores_and_positives(cases: list[dict], score: str,
                         class_names) -> tuple[np.ndarray, np.ndarray]:
    """Each confirmed case's screening score, and whether its reference label is positive."""
    scores = np.array([screening_score(c["probabilities"], score, class_names) for c in cases],
                      float)
    positives = np.array([is_positive_label(c["label"], score, class_names) for c in cases],
                         bool)
    return scores, positives


def top_class(probabilities: dict) -> str:
    """The model's answer: the class of highest probability."""
    return max(probabilities, key=probabilities.get)


def positive_classes(score: str, class_names) -> list[str]:
    return [name for name in class_names if is_positive_label(name, score, class_names)]


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def referred(self) -> int:
        return self.tp + self.fp

    def row(self, threshold: float, cost_per_test: float | None = None) -> dict:
        row = {"threshold": round(float(threshold), 6), "tp": self.tp, "fp": self.fp,
               "tn": self.tn, "fn": self.fn,
               "sensitivity": stats.estimate(self.tp, self.tp + self.fn),
               "specificity": stats.estimate(self.tn, self.tn + self.fp),
               "ppv": stats.estimate(self.tp, self.tp + self.fp),
               "npv": stats.estimate(self.tn, self.tn + self.fn),
               "referred": self.referred,
               "referred_share": round(self.referred / max(self.tp + self.fp + self.tn + self.fn,
                                                           1), 4)}
        if cost_per_test is not None:
            row["cost_per_true_case"] = (None if self.tp == 0
                                         else round(cost_per_test * self.referred / self.tp, 2))
        return row


def counts_at(scores: np.ndarray, positives: np.ndarray, threshold: float) -> Counts:
    called = np.asarray(scores) >= threshold
    positives = np.asarray(positives, bool)
    return Counts(tp=int((called & positives).sum()), fp=int((called & ~positives).sum()),
                  tn=int((~called & ~positives).sum()), fn=int((~called & positives).sum()))


def threshold_table(scores, positives, cost_per_test: float | None = None,
                    extra: tuple[float, ...] = ()) -> list[dict]:
    """One row per candidate threshold (the toolkit's grid plus `extra`), lowest first."""
    grid = np.round(np.arange(0, 1 + TABLE_STEP / 2, TABLE_STEP), 6)
    candidates = sorted(set(map(float, grid)) | {float(t) for t in extra})
    return [counts_at(scores, positives, t).row(t, cost_per_test) for t in candidates]


def minimum_cases(target: dict, precision: float = DEFAULT_PRECISION) -> dict:
    """{"positives": n, "negatives": n}: what a calibration at `target` needs (see module)."""
    positives = negatives = MIN_OTHER_GROUP
    if "sensitivity" in target:
        positives = max(positives, stats.cases_for_precision(target["sensitivity"], precision))
    if "specificity" in target:
        negatives = max(negatives, stats.cases_for_precision(target["specificity"], precision))
    return {"positives": positives, "negatives": negatives}


def check_target(target: dict) -> dict:
    """The target with float values; ValueError naming what is wrong."""
    if not isinstance(target, dict) or not target:
        raise ValueError(f"a target is one or more of {list(TARGETS)}, for example "
                         "{'sensitivity': 0.9}")
    unknown = sorted(set(target) - set(TARGETS))
    if unknown:
        raise ValueError(f"unknown target {unknown}: use {list(TARGETS)}")
    checked = {}
    for key, value in target.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < float(value) <= 1:
            raise ValueError(f"target {key} must be a number in (0, 1], got {value!r}")
        checked[key] = float(value)
    return checked


def operating_point(scores, positives, target: dict,
                    precision: float = DEFAULT_PRECISION) -> float:
    """The threshold that meets `target` on these cases, or CalibrationRefused.

    Among the thresholds that meet every key of the target: with a sensitivity target the one
    of highest specificity, then of highest sensitivity; otherwise (specificity floor, maximum
    referral rate) the one of highest sensitivity, then specificity. The threshold then sits
    halfway between the lowest case it calls positive and the next score below: the same
    counts on these cases, and a new case between the two is screened positive, not missed."""
    target = check_target(target)
    scores, positives = np.asarray(scores, float), np.asarray(positives, bool)
    needed = minimum_cases(target, precision)
    have = {"positives": int(positives.sum()), "negatives": int((~positives).sum())}
    short = {group: needed[group] - have[group] for group in needed
             if have[group] < needed[group]}
    if short:
        missing = " and ".join(f"{n} more confirmed {group}" for group, n in short.items())
        raise CalibrationRefused(
            f"too few confirmed cases for a calibration at {target}: {have['positives']} "
            f"positives and {have['negatives']} negatives, it needs at least "
            f"{needed['positives']} and {needed['negatives']} (±{precision:g} at the target, "
            f"Wilson 95%); record {missing}")
    candidates = np.unique(scores)
    counted = [(t, counts_at(scores, positives, t)) for t in candidates]
    passing = [(t, c) for t, c in counted if _meets(c, target)]
    if not passing:
        raise CalibrationRefused(f"no threshold reaches {target} on these "
                                 f"{len(scores)} confirmed cases")
    first, second = ((_specificity, _sensitivity) if "sensitivity" in target
                     else (_sensitivity, _specificity))
    chosen = max(passing, key=lambda item: (first(item[1]), second(item[1])))[0]
    below = scores[scores < chosen]
    return float((chosen + below.max()) / 2) if below.size else float(chosen)


def _sensitivity(counts: Counts) -> float:
    return counts.tp / max(counts.tp + counts.fn, 1)


def _specificity(counts: Counts) -> float:
    return counts.tn / max(counts.tn + counts.fp, 1)


def _meets(counts: Counts, target: dict) -> bool:
    total = counts.tp + counts.fp + counts.tn + counts.fn
    checks = {
        "sensitivity": lambda v: counts.tp >= v * (counts.tp + counts.fn) - 1e-9,
        "specificity": lambda v: counts.tn >= v * (counts.tn + counts.fp) - 1e-9,
        "max_referral_rate": lambda v: counts.referred <= v * total + 1e-9,
    }
    return all(checks[key](value) for key, value in target.items())

