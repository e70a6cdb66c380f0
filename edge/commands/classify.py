"""`cxr-edge classify`: one record per image (edge.record), as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

from edge import heatmap
from edge.classifier import STATUS_ERROR, Classifier
from edge.commands.common import (
    EXIT_FILES_FAILED,
    EXIT_OK,
    open_classifier,
    open_site_calibration,
    table,
)
from edge.imageio import DICOM_SUFFIXES
from edge.record import classify_source
from edge.site.calibration import SCREEN_FIELDS, SiteCalibration

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff") + DICOM_SUFFIXES
PROGRESS_MIN_FILES = 20  # shorter batches finish before a bar helps

log = logging.getLogger(__name__)


def classify_command(args) -> int:
    classifier = open_classifier(args)
    calibration = open_site_calibration(args, classifier)
    signer = classifier.model.signed_by
    signed = f", signed by trusted key {signer}" if signer else ""
    print(f"cxr-edge: {classifier.runtime}, model {args.model}{signed}", file=sys.stderr)
    if calibration is not None:
        print(f"cxr-edge: site calibration {calibration.id}: screen positive when "
              f"{calibration.score} score >= {calibration.threshold:.4g} "
              f"(target {calibration.target}, {calibration.n_positive} positive and "
              f"{calibration.n_negative} negative confirmed cases)", file=sys.stderr)
    files = list(iter_inputs(args.inputs))
    if args.heatmaps:
        if classifier.has_attention:
            Path(args.heatmaps).mkdir(parents=True, exist_ok=True)
        else:
            print("cxr-edge: the model has no attention outputs; no heatmaps", file=sys.stderr)
    progress = _Progress(len(files), args.progress)
    records = []
    heatmap_names: set[str] = set()
    for path in files:
        records.append(classify_file(classifier, path, args.heatmaps, heatmap_names,
                                     calibration))
        progress.step(path)
    progress.done()
    text = format_records(records, classifier.class_names, args.format)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    failed = sum(record["status"] == STATUS_ERROR for record in records)
    print(f"cxr-edge: {len(records)} images, {failed} failed", file=sys.stderr)
    return EXIT_FILES_FAILED if failed else EXIT_OK


def classify_file(
    classifier: Classifier, path: Path, heatmap_dir: str | None, used_names: set[str],
    calibration: SiteCalibration | None = None,
) -> dict:
    """One record per file, whatever happens to it."""
    started = time.perf_counter()
    outcome = classify_source(classifier, path, calibration)
    if outcome.failure is not None:  # --debug shows the traceback
        log.debug("%s: inference failed", path, exc_info=outcome.failure)
    record = {"path": str(path)} | outcome.record
    prediction = outcome.prediction
    if prediction is not None and heatmap_dir and prediction.attention:
        try:
            record["heatmaps"] = _write_heatmaps(
                path, outcome.gray, prediction.attention, heatmap_dir, used_names
            )
        except Exception as err:  # the classification stands; only the overlay is lost
            log.debug("%s: heatmap failed", path, exc_info=True)
            record["heatmap_error"] = f"{type(err).__name__}: {err}"
    record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return record


def iter_inputs(inputs: list[str]):
    """Files as given, folders walked recursively in sorted order.

    Inside folders only image-looking names are taken (plus extensionless DICOM); an entry
    named like an image that is not a regular file (say a directory x.png) is yielded so it
    gets an error record instead of vanishing.
    """
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            yield path
            continue
        for root, dirs, names in os.walk(path):
            dirs.sort()
            root_path = Path(root)
            for name in sorted(names + [d for d in dirs if _is_image_name(d)]):
                if name.startswith("."):
                    continue
                candidate = root_path / name
                if _is_image_name(name) or _is_extensionless_dicom(candidate):
                    yield candidate
            dirs[:] = [d for d in dirs if not _is_image_name(d) and not d.startswith(".")]


def format_records(records: list[dict], class_names, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        return _records_csv(records, class_names)
    return _recordstable(records, class_names)


def _write_heatmaps(path: Path, gray, attention: dict, heatmap_dir: str, used: set) -> list[str]:
    """DIR/<image stem>.<attention key>.png; same-named images in other folders get _2, _3."""
    stem, counter = path.stem, 1
    while stem in used:
        counter += 1
        stem = f"{path.stem}_{counter}"
    used.add(stem)
    written = []
    for key, values in attention.items():
        out = Path(heatmap_dir) / f"{stem}.{key}.png"
        heatmap.save_overlay(gray, values, out)
        written.append(str(out))
    return written


def _records_csv(records: list[dict], class_names) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    screen = _screened(records)
    writer.writerow(
        ["path", "status", "predicted_class", "probability"]
        + [f"p_{name}" for name in class_names]
        + ["ood_score", "latency_ms", "reason", "error"]
        + (list(SCREEN_FIELDS) if screen else [])
    )
    for record in records:
        probabilities = record.get("probabilities") or {}
        writer.writerow(
            [record["path"], record["status"], record.get("predicted_class", ""),
             record.get("probability", "")]
            + [probabilities.get(name, "") for name in class_names]
            + [record.get("ood_score", ""), record["latency_ms"], record.get("reason", ""),
               record.get("error", "")]
            + ([_blank_if_none(record.get(key)) for key in SCREEN_FIELDS] if screen else [])
        )
    return buffer.getvalue()


def _screened(records: list[dict]) -> bool:
    return any(record.get("screen") for record in records)


def _recordstable(records: list[dict], class_names) -> str:
    screen = _screened(records)
    header = (["path", "status", "class", "p"] + list(class_names)
              + ["ood", "ms"] + (["screen"] if screen else []) + ["reason / error"])
    rows = [header]
    for record in records:
        if record["status"] == STATUS_ERROR:
            blanks = ["-"] * (len(class_names) + 2)
            rows.append(
                [record["path"], "error", record["reason"]]
                + blanks
                + [f"{record['latency_ms']:.1f}"] + (["-"] if screen else [])
                + [record["error"][:80]]
            )
            continue
        probabilities = record["probabilities"]
        rows.append(
            [record["path"], record["status"], record["predicted_class"],
             f"{record['probability']:.3f}"]
            + [f"{probabilities[name]:.3f}" for name in class_names]
            + [f"{record['ood_score']:.2f}" if record["ood_score"] is not None else "-",
               f"{record['latency_ms']:.1f}"]
            + ([record.get("screen") or "-"] if screen else [])
            + [record["reason"] or ""]
        )
    return table(rows)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _is_extensionless_dicom(path: Path) -> bool:
    if path.suffix or not path.is_file():
        return False
    try:
        with open(path, "rb") as stream:
            return stream.read(132)[128:132] == b"DICM"
    except OSError:
        return False


class _Progress:
    """A one-line bar on stderr for long batches; silent when stderr is not a terminal."""

    def __init__(self, total: int, mode: str):
        tty = sys.stderr.isatty()
        self.enabled = mode == "always" or (mode == "auto" and tty and total >= PROGRESS_MIN_FILES)
        self.total, self.count, self.started = total, 0, time.perf_counter()

    def step(self, path: Path) -> None:
        self.count += 1
        if not self.enabled:
            return
        filled = int(30 * self.count / max(self.total, 1))
        rate = self.count / max(time.perf_counter() - self.started, 1e-9)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.count}/{self.total} "
            f"{rate:.1f} img/s {path.name[:30]:<30}"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _blank_if_none(value) -> str:
    return "" if value is None else str(value)
