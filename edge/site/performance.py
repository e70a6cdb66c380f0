"""The Site page's numbers over this station's results and its confirmed cases.

    per_class      sensitivity, specificity, PPV, NPV per class (Wilson 95%)
    confusion      [reference][model] counts; kappa: Cohen's kappa of model vs reference
    weekly         per ISO week: results, the share referred, out of distribution, and screen
                   positive (results screened at the time they were classified)
    screening      the chosen score's threshold table (WHO/TDR toolkit form) and ROC with AUC
"""

from __future__ import annotations

import datetime
from collections import defaultdict

import numpy as np

from edge.site import calibration as site_calibration
from edge.site import screening, stats

ROC_POINTS = 101  # the curve as the page draws it, thinned to at most this many points


def site_performance(results: list[dict], cases: list[dict], class_names, score: str,
                     calibration: site_calibration.SiteCalibration | None = None,
                     cost_per_test: float | None = None,
                     precision: float = screening.DEFAULT_PRECISION) -> dict:
    """results: every result (status, reason, created_at, screen); cases: confirmed ones
    (probabilities, predicted_class, label), as edge.serve.findings.confirmed_cases gives."""
    class_names = list(class_names)
    screening.check_score(score, class_names)
    usable, not_assessable = site_calibration.split_cases(cases, class_names)
    truth = [case["label"] for case in usable]
    predicted = [screening.top_class(case["probabilities"]) for case in usable]
    matrix = stats.confusion_matrix(truth, predicted, class_names)
    scores, positives = screening.scores_and_positives(usable, score, class_names)
    extra = (calibration.threshold,) if calibration is not None else ()
    area = stats.auc(scores, positives)
    interval = stats.bootstrap_auc_interval(scores, positives)
    kappa = stats.cohen_kappa(matrix)
    return {
        "classes": class_names,
        "confirmed": len(usable), "not_assessable": not_assessable,
        "per_class": stats.one_vs_rest(matrix, class_names),
        "confusion": {"rows": "reference", "columns": "model", "matrix": matrix.tolist()},
        "kappa": None if kappa is None else round(kappa, 4),
        "weekly": weekly_rates(results),
        "screening": {
            "score": score, "positive_classes": screening.positive_classes(score, class_names),
            "n_positive": int(positives.sum()), "n_negative": int((~positives).sum()),
            "table": screening.threshold_table(scores, positives, cost_per_test, extra),
            "cost_per_test": cost_per_test,
            "roc": roc_points(scores, positives),
            "auc": None if area is None else {
                "value": round(area, 4),
                "ci": None if interval is None else [round(v, 4) for v in interval]},
            "minimum_cases": {name: screening.minimum_cases({name: value}, precision)
                              for name, value in (("sensitivity", 0.9), ("specificity", 0.7))},
        },
    }


def weekly_rates(results: list[dict]) -> list[dict]:
    weeks: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for result in results:
        if result.get("status") == "error" or not result.get("created_at"):
            continue
        year, week, _ = datetime.datetime.fromisoformat(result["created_at"]).isocalendar()
        counts = weeks[f"{year}-W{week:02d}"]
        counts["results"] += 1
        counts["referred"] += result.get("status") == "refer"
        counts["out_of_distribution"] += result.get("reason") == "out_of_distribution"
        counts["screened"] += result.get("screen") is not None
        counts["screen_positive"] += result.get("screen") == site_calibration.SCREEN_POSITIVE
    rows = []
    for week in sorted(weeks):
        c = weeks[week]
        rows.append({"week": week, "results": c["results"],
                     "referred_share": round(c["referred"] / c["results"], 4),
                     "ood_share": round(c["out_of_distribution"] / c["results"], 4),
                     "screened": c["screened"],
                     "positive_share": (round(c["screen_positive"] / c["screened"], 4)
                                        if c["screened"] else None)})
    return rows


def roc_points(scores: np.ndarray, positives: np.ndarray) -> list[dict]:
    if positives.sum() == 0 or (~positives).sum() == 0:
        return []
    fpr, tpr, thresholds = stats.roc_curve(scores, positives)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
    return [{"fpr": round(float(fpr[i]), 4), "tpr": round(float(tpr[i]), 4),
             "threshold": None if not np.isfinite(thresholds[i]) else round(float(thresholds[i]),
                                                                            6)}
            for i in keep]


def preview(cases: list[dict], class_names, proposed: site_calibration.SiteCalibration,
            current: site_calibration.SiteCalibration | None) -> dict:
    """What applying `proposed` would have changed on the confirmed cases: against the current
    calibration, or without one against the model's own answer (its top class)."""
    usable, _ = site_calibration.split_cases(cases, class_names)
    before = after = 0
    changed = {"to_positive": 0, "to_negative": 0}
    missed_before = missed_after = 0
    for case in usable:
        was = (current.screen(case["probabilities"])["screen"] == "positive" if current
               else screening.is_positive_label(
                   screening.top_class(case["probabilities"]),
                   proposed.score, class_names))
        now = proposed.screen(case["probabilities"])["screen"] == "positive"
        positive = screening.is_positive_label(case["label"], proposed.score, class_names)
        before += was
        after += now
        missed_before += positive and not was
        missed_after += positive and not now
        if was != now:
            changed["to_positive" if now else "to_negative"] += 1
    return {"against": "the current calibration" if current else "the model's top class",
            "cases": len(usable), "positive_before": before, "positive_after": after,
            "missed_before": missed_before, "missed_after": missed_after} | changed
