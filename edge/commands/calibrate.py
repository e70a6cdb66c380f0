"""`cxr-edge calibrate`: a site's screening threshold from its confirmed cases, offline.

    cxr-edge calibrate --model DIR --findings FINDINGS.csv IMAGES_OR_FOLDERS...
        --target sensitivity=0.90 [--score abnormal|CLASS] --out site.json

FINDINGS.csv has the columns `file` (a path, relative to the CSV or absolute, or the file's
sha256) and `label` (a class name or not_assessable). Each image is classified, matched to
its finding, and the threshold table is printed; the calibration record goes to --out.
The same edge.site code serves the station's Site page and API.
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from pathlib import Path

from edge.commands.classify import iter_inputs
from edge.commands.common import EXIT_OK, open_classifier, table
from edge.record import classify_source
from edge.site import calibration as site_calibration
from edge.site import screening

SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
REPORTED_ROWS = 10  # unmatched rows listed by name; the rest are counted


def calibrate_command(args) -> int:
    classifier = open_classifier(args)
    findings = read_findings(Path(args.findings))
    files = list(iter_inputs(args.inputs))
    cases, unmatched_images, failed = [], 0, 0
    matched: set[int] = set()
    for path in files:
        row = _match(findings, path)
        if row is None:
            unmatched_images += 1
            continue
        matched.add(row["row"])
        record = classify_source(classifier, path).record
        if record["status"] == "error":
            failed += 1
            print(f"cxr-edge: {path}: {record['reason']}: {record['error']}", file=sys.stderr)
            continue
        cases.append(record | {"label": row["label"], "path": str(path)})
    unmatched_rows = [row for row in findings["rows"] if row["row"] not in matched]
    _report_matching(len(files), len(cases), unmatched_images, failed, unmatched_rows)
    score = args.score
    screening.check_score(score, classifier.class_names)
    _print_table(cases, classifier.class_names, score, args.cost_per_test)
    referral_targets = {key: value for key, value in (("ood_acceptance", args.ood_acceptance),
                                                      ("accuracy", args.accuracy))
                        if value is not None}
    calibration = site_calibration.fit(
        cases, classifier.class_names, score, parse_target(args.target),
        model_sha256=classifier.model_sha256,
        model_version=(classifier.model.manifest or {}).get("version"),
        created_by="cxr-edge calibrate", precision=args.precision,
        referral_targets=referral_targets)
    site_calibration.save(calibration, args.out)
    estimates = calibration.estimates
    print(f"cxr-edge: {calibration.score} score >= {calibration.threshold:.6g} reaches "
          f"{calibration.target}: sensitivity {_estimate(estimates['sensitivity'])}, "
          f"specificity {_estimate(estimates['specificity'])}, referred "
          f"{estimates['referred_share']:.1%}; written to {args.out}", file=sys.stderr)
    return EXIT_OK


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDERS")
    parser.add_argument("--findings", required=True, metavar="FINDINGS_CSV",
                        help="columns file (path or sha256) and label (class or not_assessable)")
    parser.add_argument("--target", required=True, action="append", metavar="NAME=VALUE",
                        help="sensitivity=0.90, specificity=0.70 or max_referral_rate=0.30 "
                        "(repeat to require several; a sensitivity target takes the highest "
                        "threshold that meets it)")
    parser.add_argument("--score", default=screening.SCORE_ABNORMAL,
                        help="abnormal (1 - P(normal class), the default) or a class name")
    parser.add_argument("--out", required=True, metavar="SITE_JSON")
    parser.add_argument("--cost-per-test", type=float, default=None, metavar="C",
                        help="the cost of one confirmatory test: adds cost per true case found")
    parser.add_argument("--precision", type=float, default=screening.DEFAULT_PRECISION,
                        metavar="H", help="refuse unless the target's 95%% interval can be "
                        f"±H or narrower (default {screening.DEFAULT_PRECISION})")
    parser.add_argument("--ood-acceptance", type=float, default=None, metavar="A",
                        help="also fit a local OOD threshold accepting a share A of the "
                        "confirmed cases")
    parser.add_argument("--accuracy", type=float, default=None, metavar="Q",
                        help="also fit a local low-confidence threshold for accuracy Q")


def parse_target(items: list[str]) -> dict:
    target = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            target[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--target {item!r}: write NAME=VALUE, e.g. sensitivity=0.90") \
                from None
    return screening.check_target(target)


def read_findings(path: Path) -> dict:
    """{"rows": [...], "by_path": {resolved path: row}, "by_sha256": {hex: row}}."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ValueError(f"cannot read the findings {path}: {err}") from err
    reader = csv.DictReader(text.splitlines())
    missing = {"file", "label"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{path} needs the columns file and label; it lacks {sorted(missing)}")
    rows, by_path, by_sha256 = [], {}, {}
    for number, raw in enumerate(reader, start=2):
        name, label = (raw.get("file") or "").strip(), (raw.get("label") or "").strip()
        if not name or not label:
            raise ValueError(f"{path} line {number}: file and label must not be empty")
        row = {"row": number, "file": name, "label": label}
        rows.append(row)
        if SHA256.match(name):
            by_sha256[name.lower()] = row
        else:
            by_path[_resolved(path.parent / name)] = row
    return {"rows": rows, "by_path": by_path, "by_sha256": by_sha256}


def _match(findings: dict, path: Path) -> dict | None:
    row = findings["by_path"].get(_resolved(path))
    if row is None and findings["by_sha256"]:
        try:
            row = findings["by_sha256"].get(hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError:
            row = None
    return row


def _resolved(path: Path) -> str:
    return str(path.expanduser().resolve())


def _report_matching(files: int, cases: int, unmatched_images: int, failed: int,
                     unmatched_rows: list[dict]) -> None:
    print(f"cxr-edge: {files} images, {cases} with a finding, {unmatched_images} without one, "
          f"{failed} failed to decode", file=sys.stderr)
    if unmatched_rows:
        shown = ", ".join(f"line {r['row']} ({r['file']})" for r in unmatched_rows[:REPORTED_ROWS])
        more = len(unmatched_rows) - REPORTED_ROWS
        print(f"cxr-edge: {len(unmatched_rows)} findings match no image: {shown}"
              + (f" and {more} more" if more > 0 else ""), file=sys.stderr)


def _print_table(cases: list[dict], class_names, score: str, cost: float | None) -> None:
    usable, _ = site_calibration.split_cases(cases, class_names)
    scores, positives = screening.scores_and_positives(usable, score, class_names)
    rows = [["threshold", "TP", "FP", "TN", "FN", "sens", "spec", "PPV", "NPV", "referred"]
            + (["cost/case"] if cost is not None else [])]
    for row in screening.threshold_table(scores, positives, cost):
        rows.append([f"{row['threshold']:.2f}", row["tp"], row["fp"], row["tn"], row["fn"]]
                    + [_value(row[key]) for key in ("sensitivity", "specificity", "ppv", "npv")]
                    + [row["referred"]]
                    + ([row["cost_per_true_case"] if row["cost_per_true_case"] is not None
                        else "-"] if cost is not None else []))
    sys.stdout.write(table(rows))


def _value(estimate: dict) -> str:
    return "-" if estimate["value"] is None else f"{estimate['value']:.3f}"


def _estimate(estimate: dict) -> str:
    if estimate["value"] is None:
        return "-"
    lo, hi = estimate["ci"]
    return f"{estimate['value']:.3f} (95% CI {lo:.3f}-{hi:.3f}, n={estimate['n']})"
