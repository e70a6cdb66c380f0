"""The acquisition-shift gate: what an `ok` answer promises must hold on other scanners' images.

For every cell (family × severity) of the battery (`edge/shift.py`), a model's device
decisions (`edge.classifier.decide`, the manifest's thresholds) on a class-balanced sample of the
test split, shifted, must satisfy:

- accuracy among `ok` answers >= `min_ok_accuracy` (0: the referral's target accuracy, 0.97 by
  default). A cell whose images are all referred passes this: referral is a safe answer;
- acceptance (share answered `ok`) >= `min_mild_acceptance` in each family's mildest cell, so a
  model that refers every slightly different image is not called safe;
- acceptance >= `min_resolution_acceptance` in every source-resolution cell: every real image
  arrives at another size than the model's input, so referring those is no answer.

The Quantizer runs it on the float SavedModel and on every TFLite variant; a variant that fails
does not ship. `worst_cell` names the cell the run summary and the demo print.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from components.lib import referral_gate
from edge import shift
from edge.classifier import (
    REASON_LOW_CONFIDENCE,
    REASON_OUT_OF_DISTRIBUTION,
    REASON_UNSTABLE,
    STATUS_OK,
)

RESOLUTION_FAMILY = "source_resolution"
# A model's outputs on a batch of model inputs: (probabilities [N, C], ood_score [N] or None,
# and optionally stability [N] or None).
Predict = Callable[[np.ndarray], tuple]


@dataclasses.dataclass(frozen=True)
class ShiftGateConfig:
    images: int = 400  # class-balanced sample of the test split; 0: no battery
    min_ok_accuracy: float = 0.0  # 0: the referral's target accuracy
    min_mild_acceptance: float = 0.5
    min_resolution_acceptance: float = 0.9
    families: tuple[str, ...] = ()  # empty: every family of edge/shift.py
    seed: int = 0


def sample(labels: np.ndarray, per_class_total: int, seed: int) -> np.ndarray:
    """Indices of a seeded, class-balanced sample of at most `per_class_total` images."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = max(1, per_class_total // max(1, len(classes)))
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def measure(models: dict[str, Predict], images: list[np.ndarray], labels: np.ndarray,
            referral: dict, model_size: int, config: ShiftGateConfig = ShiftGateConfig()
            ) -> dict[str, list[dict]]:
    """{model name: one row per cell}; each cell's inputs are made once for every model."""
    rows = {name: [] for name in models}
    for cell in shift.cells(config.families or None):
        inputs = shift.model_inputs(images, cell, model_size, config.seed)
        for name, predict in models.items():
            probabilities, ood, *stability = predict(inputs)
            rows[name].append(cell_row(cell, probabilities, ood, labels, referral,
                                       *stability[:1]))
    return rows


def cell_row(cell: shift.Cell, probabilities: np.ndarray, ood: np.ndarray | None,
             labels: np.ndarray, referral: dict, stability: np.ndarray | None = None) -> dict:
    decisions = referral_gate.decisions(probabilities, ood, referral, stability)
    ok = np.array([status == STATUS_OK for status, _ in decisions], bool)
    right = probabilities.argmax(axis=1) == labels
    reasons = [reason for _, reason in decisions]
    return {
        "family": cell.family,
        "severity": cell.severity,
        "cell": cell.name,
        "mildest": shift.is_mildest(cell),
        "images": int(len(labels)),
        "acceptance": _share(ok),
        "accuracy_ok": float(right[ok].mean()) if ok.any() else None,  # None: all referred
        "accuracy_all": _share(right),
        "wrong_ok": int((ok & ~right).sum()),
        "referred_ood": _share(r == REASON_OUT_OF_DISTRIBUTION for r in reasons),
        "referred_unstable": _share(r == REASON_UNSTABLE for r in reasons),
        "referred_low_confidence": _share(r == REASON_LOW_CONFIDENCE for r in reasons),
    }


def verdict(rows: list[dict], referral: dict, config: ShiftGateConfig = ShiftGateConfig()
            ) -> dict:
    """{passed, min_ok_accuracy, failures: one sentence per failed check, worst: the worst
    cell's row, summary: one sentence}."""
    floor = config.min_ok_accuracy or float(referral.get("target_accuracy", 0.97))
    failures = []
    for row in rows:
        if row["accuracy_ok"] is not None and row["accuracy_ok"] < floor:
            failures.append(f"{row['cell']}: accuracy among ok {row['accuracy_ok']:.3f} < "
                            f"{floor:.2f} ({row['wrong_ok']} wrong ok answers)")
        if row["family"] == RESOLUTION_FAMILY:
            minimum, what = config.min_resolution_acceptance, "source-resolution acceptance"
        elif row["mildest"]:
            minimum, what = config.min_mild_acceptance, "mildest-cell acceptance"
        else:
            continue
        if row["acceptance"] < minimum:
            failures.append(f"{row['cell']}: {what} {row['acceptance']:.3f} < {minimum:.2f}")
    worst = worst_cell(rows)
    summary = (f"acquisition-shift battery, {len(rows)} cells: "
               + ("pass" if not failures else f"FAIL ({len(failures)} checks: "
                  + "; ".join(failures[:3]) + ("; ..." if len(failures) > 3 else "") + ")")
               + (f"; worst cell {describe(worst)}" if worst else ""))
    return {"passed": not failures, "min_ok_accuracy": floor, "failures": failures,
            "worst": worst, "summary": summary}


def worst_cell(rows: list[dict]) -> dict | None:
    """The cell with the lowest accuracy among ok answers (ties: the lower acceptance)."""
    judged = [row for row in rows if row["accuracy_ok"] is not None]
    if not judged:
        return None
    return min(judged, key=lambda row: (row["accuracy_ok"], row["acceptance"]))


def describe(row: dict) -> str:
    return (f"{row['cell']} (accuracy among ok {row['accuracy_ok']:.3f}, acceptance "
            f"{row['acceptance']:.3f}, accuracy of all answers {row['accuracy_all']:.3f})")


def _share(flags) -> float:
    flags = list(flags)
    return float(np.mean(flags)) if flags else math.nan
