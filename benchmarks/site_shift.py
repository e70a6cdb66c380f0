"""How referral and sensitivity move on a second clinic's images, and what calibrating fixes.

    .venv-edge/bin/python benchmarks/site_shift.py --model demo-run/pipeline/serving/latest \
        [--site "Clinic B" --site ...] [--per-class 60] [--seed 9140] [--out site-shift.json]

For no site and for each named site (components/lib/site_shift.py), fresh SYNTHETIC phantoms are
written at the model's input size to a temporary folder (plus one unshifted set drawn at the
training set's sides, the in-distribution reference) and classified file by file through
`edge.record.classify_source`, as `cxr-edge classify` does. Per site: the share referred, by
reason; accuracy among ok; macro F1 (top-1, all images); and the abnormal screen (abnormal =
any class but the normal one, screen positive when 1 − P(normal) ≥ 0.5): sensitivity and
specificity over all images. Then `cxr-edge calibrate --target sensitivity=0.90` runs on the
odd-numbered half of each class and its threshold is applied to the even-numbered half:
held-out sensitivity against the interval calibration reported. Numpy, Pillow and the edge
runtime only (no TensorFlow). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.lib import demo_data, site_shift
from edge.classifier import STATUS_OK, STATUS_REFER, Classifier, ClassifierOptions
from edge.record import classify_source
from edge.site import calibration as site_calibration
from edge.site import screening, stats

DEFAULT_SITES = ("Clinic B", "Hill County", "St. Elsewhere")
REASONS = ("out_of_distribution", "low_confidence", "unstable")
SCREEN_AT = 0.5  # the uncalibrated screen: abnormal when 1 − P(normal) is at least this
CALIBRATION_TARGET = "sensitivity=0.90"
# The demo's training phantoms are drawn from the model's side up to this (pipelines/demo.py's
# DEMO_MAX_DRAWN_SIZE; not imported: that module loads TensorFlow): the in-distribution row.
TRAINING_MAX_SIDE = 256


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="pushed model directory or .tflite")
    parser.add_argument("--site", action="append", dest="sites",
                        help=f"a site name (repeat; default {', '.join(DEFAULT_SITES)})")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=9140)
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip the calibrate-on-half, test-on-the-other-half step")
    parser.add_argument("--out", help="write the rows (and each site's profile) as JSON here")
    args = parser.parse_args(argv)
    sites = [None] + list(args.sites or DEFAULT_SITES)
    rows = measure(args.model, sites, args.per_class, args.seed, not args.no_calibrate)
    print_table(rows)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)
            handle.write("\n")
    return 0


def measure(model_dir: str, sites: list[str | None], per_class: int, seed: int,
            calibrate: bool = True) -> list[dict]:
    classifier = Classifier.open(model_dir, ClassifierOptions(threads=1))
    names = classifier.class_names
    normal = screening.normal_class(names)
    size = classifier.input_size
    # (label, site, largest drawn side): the training sizes, the native size, then each site.
    sets = [(site or "(none)", site, None) for site in sites]
    if size < TRAINING_MAX_SIDE:
        sets.insert(0, (f"(none, {size}-{TRAINING_MAX_SIDE} px)", None, TRAINING_MAX_SIDE))
    rows = []
    with tempfile.TemporaryDirectory(prefix="site-shift-") as work:
        for label, site, max_size in sets:
            folder = os.path.join(work, f"set-{len(rows)}")
            written = demo_data.generate(folder, per_class=per_class, size=size, seed=seed,
                                         class_names=names, site=site, max_size=max_size)
            cases = [classify_source(classifier, path).record
                     | {"path": path, "label": name, "index": index}
                     for name in names for index, path in enumerate(written[name], start=1)]
            row = {"site": label, "images": len(cases), "max_size": max_size,
                   "profile": None if site is None
                   else site_shift.profile_for(site).parameters()}
            row |= _scores(cases, names, normal)
            if calibrate:
                row["calibration"] = _calibrate_on_half(model_dir, cases, names, normal, folder)
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"{'site':20s} {'n':>4s} {'referred':>8s} {'ood':>6s} {'lowconf':>7s} "
              f"{'unstable':>8s} {'acc|ok':>6s} {'macroF1':>7s} {'sens':>6s} {'spec':>6s}")
    print(header)
    for row in rows:
        reasons = row["referred_by_reason"]
        print(f"{row['site']:20s} {row['images']:4d} {row['referred']:8.3f} "
              f"{reasons['out_of_distribution']:6.3f} {reasons['low_confidence']:7.3f} "
              f"{reasons['unstable']:8.3f} {row['accuracy_ok']:6.3f} {row['macro_f1']:7.3f} "
              f"{row['sensitivity']['value']:6.3f} {row['specificity']['value']:6.3f}")
    calibrated = [row for row in rows if row.get("calibration")]
    if not calibrated:
        return
    print(f"\ncalibrated on the odd-numbered half ({CALIBRATION_TARGET}), "
          "applied to the even-numbered half:")
    print(f"{'site':20s} {'threshold':>9s} {'sens (calibration, 95% CI)':>27s} "
          f"{'held-out sens':>13s} {'held-out spec':>13s} {'sens@0.5 held-out':>17s}")
    for row in calibrated:
        cal = row["calibration"]
        if "refused" in cal:
            print(f"{row['site']:20s} refused: {cal['refused']}")
            continue
        fitted = cal["fitted_sensitivity"]
        interval = f"{fitted['value']:.3f} ({fitted['ci'][0]:.3f}-{fitted['ci'][1]:.3f})"
        print(f"{row['site']:20s} {cal['threshold']:9.4f} {interval:>27s} "
              f"{cal['held_out_sensitivity']['value']:13.3f} "
              f"{cal['held_out_specificity']['value']:13.3f} "
              f"{cal['held_out_sensitivity_at_0.5']['value']:17.3f}")


def _scores(cases: list[dict], names, normal: str) -> dict:
    """Referral, accuracy among ok, macro F1 and the uncalibrated abnormal screen."""
    answered = [c for c in cases if c["probabilities"]]
    status = np.array([c["status"] for c in cases])
    reasons = np.array([c["reason"] or "" for c in cases])
    truth = np.array([c["label"] for c in answered])
    top = np.array([c["predicted_class"] for c in answered])
    ok = np.array([c["status"] == STATUS_OK for c in answered])
    abnormal = np.array([_abnormal(c) for c in answered]) >= SCREEN_AT
    positive = truth != normal
    return {
        "errors": int(len(cases) - len(answered)),
        "ok": float((status == STATUS_OK).mean()),
        "referred": float((status == STATUS_REFER).mean()),
        "referred_by_reason": {reason: float(((status == STATUS_REFER) & (reasons == reason))
                                             .mean()) for reason in REASONS},
        "accuracy_ok": float((truth[ok] == top[ok]).mean()) if ok.any() else float("nan"),
        "accuracy_all": float((truth == top).mean()),
        "macro_f1": _macro_f1(truth, top, names),
        "sensitivity": stats.estimate(int((abnormal & positive).sum()), int(positive.sum())),
        "specificity": stats.estimate(int((~abnormal & ~positive).sum()),
                                      int((~positive).sum())),
    }


def _calibrate_on_half(model_dir, cases, names, normal, folder) -> dict:
    """`cxr-edge calibrate` on the odd-numbered images, its threshold on the even ones."""
    fit_half = [c for c in cases if c["index"] % 2 == 1]
    held_out = [c for c in cases if c["index"] % 2 == 0 and c["probabilities"]]
    findings = os.path.join(folder, "findings.csv")
    with open(findings, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows([os.path.relpath(c["path"], folder), c["label"]] for c in fit_half)
    out = os.path.join(folder, "calibration.json")  # beside the site profile, not over it
    command = [sys.executable, "-m", "edge", "calibrate", "--model", model_dir,
               "--findings", findings, "--target", CALIBRATION_TARGET, "--out", out,
               *[c["path"] for c in fit_half]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"refused": done.stderr.strip().splitlines()[-1] if done.stderr else
                f"exit {done.returncode}"}
    calibration = site_calibration.load(out)
    positive = np.array([c["label"] != normal for c in held_out])
    score = np.array([calibration.score_of(c["probabilities"]) for c in held_out])

    def held_out_rates(threshold):
        screened = score >= threshold
        return (stats.estimate(int((screened & positive).sum()), int(positive.sum())),
                stats.estimate(int((~screened & ~positive).sum()), int((~positive).sum())))

    sensitivity, specificity = held_out_rates(calibration.threshold)
    sensitivity_default, specificity_default = held_out_rates(SCREEN_AT)
    return {"threshold": calibration.threshold, "fit_cases": len(fit_half),
            "held_out_cases": len(held_out),
            "fitted_sensitivity": calibration.estimates["sensitivity"],
            "fitted_specificity": calibration.estimates["specificity"],
            "held_out_sensitivity": sensitivity, "held_out_specificity": specificity,
            "held_out_sensitivity_at_0.5": sensitivity_default,
            "held_out_specificity_at_0.5": specificity_default,
            "held_out_within_interval": bool(
                calibration.estimates["sensitivity"]["ci"][0] <= sensitivity["value"]
                <= calibration.estimates["sensitivity"]["ci"][1])}


def _abnormal(case: dict) -> float:
    return screening.screening_score(case["probabilities"], screening.SCORE_ABNORMAL,
                                     list(case["probabilities"]))


def _macro_f1(truth, predicted, names) -> float:
    scores = []
    for name in names:
        tp = np.sum((predicted == name) & (truth == name))
        fp = np.sum((predicted == name) & (truth != name))
        fn = np.sum((predicted != name) & (truth == name))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))


if __name__ == "__main__":
    sys.exit(main())
