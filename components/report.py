"""Run report: one self-contained HTML page per pipeline run (PNG charts embedded).

Sections: data summary (counts per split and class, quarantined files, duplicates, image
validation), training curves, confusion matrix and per-class table, Siamese embedding plots,
attention (pointing game on the phantoms' finding masks, heat-map overlays), the TFLite
variants table, the acquisition-shift battery (components/report_shift.py), and every gate
with its threshold. Every input is optional: a missing artifact becomes a line saying so, not
an error. The page says plainly, at the top, when the data are
synthetic. Reads and writes go through tfx.dsl.io.fileio (components/storage.py), so the
artifacts may live on gs:// or s3://.
"""

import base64
import dataclasses
import datetime
import html
import io
import os

import numpy as np
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact, standard_artifacts

from components import artifact_types, storage
from components.edge_pusher import read_push_record
from components.evaluation import GateConfig, evaluation_summary, gate_outcomes
from components.image_example_gen.executor import (
    SUMMARY_FILE,
    read_ingest_summary,
    read_quarantine_report,
)
from components.image_validator import read_findings
from components.model_summary import read_model_summary
from components.quantizer import VARIANTS_FILENAME, QuantizedModel, read_variants_table
from components.report_shift import shift_section
from edge import spec
from trainer import split_reader
from trainer.summary_file import SUMMARY_FILENAME, read_training_summary

REPORT_FILENAME = "report.html"
OVERLAY_IMAGES = 4


class RunReport(artifact.Artifact):
    """report.html (self-contained) and the PNG charts it embeds."""

    TYPE_NAME = "cxredge.RunReport"


@dataclasses.dataclass
class ReportInputs:
    """Directories of the run's artifacts; any may be None."""

    examples_uri: str | None = None
    ingest_summary_uri: str | None = None
    quarantine_uri: str | None = None
    validation_uri: str | None = None
    serving_model_dir: str | None = None
    model_run_uri: str | None = None
    evaluation_uri: str | None = None
    blessed: bool | None = None
    quantized_model_uri: str | None = None
    pushed_model_uri: str | None = None
    # Every model kind's Quantizer output (model_summary.json), for the side-by-side table.
    model_summary_uris: list[str] = dataclasses.field(default_factory=list)
    synthetic_data: bool = False
    pipeline_run_id: str | None = None
    title: str = "cxr-edge run report"
    gate_config: GateConfig = dataclasses.field(default_factory=GateConfig)


def write_report(inputs: ReportInputs, out_dir: str) -> str:
    """Writes report.html (and its PNGs) into out_dir; returns the HTML path."""
    fileio.makedirs(out_dir)
    page = _Page(inputs.title, out_dir)
    if inputs.synthetic_data:
        page.banner(
            "SYNTHETIC DATA. This run used generated phantom images, not patient X-rays. "
            "Its metrics say the pipeline works; they say nothing about clinical accuracy."
        )
    page.paragraph(
        f"Pipeline run: {inputs.pipeline_run_id or 'unknown'} · written "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
    )
    class_names = inputs.gate_config.class_names
    _gates_section(page, inputs)
    _models_section(page, inputs, class_names)
    _data_section(page, inputs, class_names)
    training = read_training_summary(inputs.serving_model_dir)
    _training_section(page, training)
    _evaluation_section(page, inputs)
    _calibration_section(page, inputs)
    _referral_section(page, inputs)
    _embedding_section(page, inputs, training)
    _attention_section(page, inputs, class_names)
    _variants_section(page, inputs)
    shift_section(page, read_variants_table(inputs.quantized_model_uri) or {})
    return storage.write_text(os.path.join(out_dir, REPORT_FILENAME), page.render())


@tfx.dsl.components.component
def RunReportGen(  # noqa: N802 (TFX component names are classes)
    report: tfx.dsl.components.OutputArtifact[RunReport],
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples] = None,
    ingest_summary: tfx.dsl.components.InputArtifact[artifact_types.IngestSummary] = None,
    quarantine: tfx.dsl.components.InputArtifact[artifact_types.QuarantineReport] = None,
    validation: tfx.dsl.components.InputArtifact[artifact_types.ImageValidationFindings] = None,
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model] = None,
    model_run: tfx.dsl.components.InputArtifact[standard_artifacts.ModelRun] = None,
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation] = None,
    blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing] = None,
    quantized_model: tfx.dsl.components.InputArtifact[QuantizedModel] = None,
    pushed_model: tfx.dsl.components.InputArtifact[standard_artifacts.PushedModel] = None,
    # The other model kinds' Quantizer outputs (model_summary.json), compared side by side.
    compared_quantized_model_1: tfx.dsl.components.InputArtifact[QuantizedModel] = None,
    compared_quantized_model_2: tfx.dsl.components.InputArtifact[QuantizedModel] = None,
    synthetic_data: tfx.dsl.components.Parameter[int] = 0,
    gate_config_json: tfx.dsl.components.Parameter[str] = "{}",
    title: tfx.dsl.components.Parameter[str] = "cxr-edge run report",
    code_fingerprint: tfx.dsl.components.Parameter[str] = "",
):
    """TFX component around `write_report` (code_fingerprint: unused, there so changed code
    misses TFX's cache; `code_fingerprint.module_fingerprint` of this module)."""
    del code_fingerprint
    from tfx.utils import path_utils

    def uri(item):
        return item.uri if item is not None else None

    inputs = ReportInputs(
        examples_uri=uri(examples),
        ingest_summary_uri=uri(ingest_summary),
        quarantine_uri=uri(quarantine),
        validation_uri=uri(validation),
        serving_model_dir=path_utils.serving_model_path(model.uri) if model else None,
        model_run_uri=uri(model_run),
        evaluation_uri=uri(evaluation),
        blessed=bool(blessing.get_int_custom_property("blessed")) if blessing else None,
        quantized_model_uri=uri(quantized_model),
        pushed_model_uri=uri(pushed_model),
        model_summary_uris=[item.uri for item in (quantized_model, compared_quantized_model_1,
                                                  compared_quantized_model_2) if item],
        synthetic_data=bool(synthetic_data),
        pipeline_run_id=_run_id(pushed_model, model or examples),
        title=title,
        gate_config=GateConfig.from_json(gate_config_json),
    )
    write_report(inputs, report.uri)


# ---- sections ---------------------------------------------------------------------------


def _gates_section(page, inputs: ReportInputs) -> None:
    page.heading("Gates")
    rows = []
    if inputs.evaluation_uri:
        for outcome in gate_outcomes(inputs.evaluation_uri, inputs.gate_config):
            value = "missing" if outcome.value is None else f"{outcome.value:.4f}"
            threshold = (
                f"≥ {outcome.threshold:.4f}"
                if outcome.baseline is None
                else f"at most {outcome.threshold:.4f} below the {outcome.baseline_name} "
                     f"({outcome.baseline:.4f})"
            )
            rows.append(["Evaluator", outcome.gate, value, threshold, _verdict(outcome.passed)])
    if inputs.blessed is not None:
        rows.append(["Evaluator", "blessing", "blessed" if inputs.blessed else "not blessed",
                     "all gates", _verdict(inputs.blessed)])
    table = read_variants_table(inputs.quantized_model_uri)
    if table:
        for row in table.get("variants", []):
            rows.append(["Quantizer", row["variant"], html.escape(row["message"]),
                         f"drop ≤ {table['max_f1_drop']:.4f}", _verdict(row["passed"])])
        if table.get("skipped"):
            rows.append(["Quantizer", "conversion", html.escape(table["skipped"]), "", "skipped"])
    push = read_push_record(inputs.pushed_model_uri)
    if push:
        rows.append(["Pusher", "push", html.escape(push["reason"]), "blessed and a variant",
                     "pushed" if push["pushed"] else "not pushed"])
    if rows:
        page.table(["stage", "gate", "value", "threshold", "outcome"], rows, escape=False)
    else:
        page.missing("no gate results in this run")


def _models_section(page, inputs: ReportInputs, class_names) -> None:
    """Every model kind of the run side by side: gates, per-class F1, calibration, shipped file."""
    summaries = [read_model_summary(uri) for uri in inputs.model_summary_uris]
    summaries = sorted((s for s in summaries if s is not None), key=lambda s: s.model_kind)
    if len(summaries) < 2:
        return  # one kind: the sections below say it all
    page.heading("Models side by side (test split)")
    primary = inputs.gate_config.model_kind
    page.paragraph(f"The primary kind ({primary or 'the first listed'}) is the one pushed; the "
                   "others are trained, gated and converted for comparison.")
    rows = []
    for summary in summaries:
        evaluation = summary.evaluation or {}
        per_class = (evaluation.get("per_class") or {})
        calibration = evaluation.get("calibration") or {}
        size = summary.selected_size_bytes
        latency = summary.selected_latency_ms
        rows.append(
            [summary.model_kind + (" (pushed kind)" if summary.model_kind == primary else ""),
             "blessed" if summary.blessed else "not blessed",
             "; ".join(f"{g['gate']}: {_fmt(g['value'])} {'pass' if g['passed'] else 'FAIL'}"
                       for g in summary.gates) or "n/a",
             _fmt(evaluation.get("macro_f1")), _fmt(evaluation.get("priority_recall")),
             ", ".join(f"{name} {_fmt((per_class.get(name) or {}).get('f1_score'))}"
                       for name in class_names),
             _fmt(calibration.get("expected_calibration_error")),
             summary.selected_variant or summary.note or "none",
             "n/a" if size is None else f"{size / 1e6:.2f} MB",
             "n/a" if latency is None else f"{latency:.2f} ms"])
    page.table(["model", "blessing", "gates", "macro F1", "priority recall", "per-class F1",
                "ECE", "variant", "size", "latency"], rows)


def _calibration_section(page, inputs: ReportInputs) -> None:
    if not inputs.evaluation_uri:
        return
    calibration = evaluation_summary(inputs.evaluation_uri, inputs.gate_config).get("calibration")
    page.heading("Calibration (test split, top-1 confidence)")
    if not calibration:
        page.missing("the Evaluator recorded no reliability table")
        return
    bins = [b for b in calibration["bins"] if b["examples"]]
    page.paragraph(
        f"Expected calibration error {_fmt(calibration['expected_calibration_error'])} over "
        f"{len(calibration['bins'])} equal-width confidence bins (0 = confidence matches "
        "accuracy). Bars above the diagonal: the model is under-confident there; below: over-"
        "confident.")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.2, 4))
    width = 1.0 / len(calibration["bins"])
    axis.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=width,
             align="edge", edgecolor="black", color="#4c72b0", label="accuracy")
    axis.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    axis.set_xlabel("top-1 confidence")
    axis.set_ylabel("accuracy")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8, loc="upper left")
    page.figure(figure, "reliability_diagram.png", "Reliability diagram")
    page.table(["confidence", "examples", "mean confidence", "accuracy"],
               [[f"{b['low']:.2f}–{b['high']:.2f}", int(b["examples"]),
                 _fmt(b["mean_confidence"]), _fmt(b["accuracy"])] for b in bins])


def _referral_section(page, inputs: ReportInputs) -> None:
    """Knowing when not to answer: OOD rate on the built-in set, acceptance, risk–coverage."""
    table = read_variants_table(inputs.quantized_model_uri) or {}
    record = table.get("referral")
    if not record:
        return
    page.heading("Referral: out-of-distribution and low-confidence (test split, OOD set)")
    measured = (table.get("reference") or {}).get("referral") or {}
    gate = record.get("gate") or {}
    page.paragraph(
        f"Method: {record.get('method', 'n/a')}. Thresholds chosen on eval: OOD score above "
        f"{_fmt(record.get('ood_threshold'))} (accepts {_fmt(record.get('eval_acceptance'))} of "
        f"eval, target {_fmt(record.get('acceptance_target'))}); top-1 probability under "
        f"{_fmt(record.get('refer_below'))} (eval accuracy "
        f"{_fmt(record.get('eval_accuracy_at_refer_below'))} at coverage "
        f"{_fmt(record.get('eval_coverage_at_refer_below'))}, target "
        f"{_fmt(record.get('target_accuracy'))}); temperature "
        f"{_fmt(record.get('temperature'))} (eval ECE {_fmt(record.get('ece_eval_before'))} → "
        f"{_fmt(record.get('ece_eval_after'))}).")
    if "unstable_below" in record:
        page.paragraph(
            f"Consistency check: {record.get('consistency_method', 'n/a')}; a stability under "
            f"{_fmt(record.get('unstable_below'))} is referred as unstable (eval: "
            f"{_fmt(record.get('eval_unstable'))} unstable, accuracy "
            f"{_fmt(record.get('eval_accuracy_stable'))} of the others, "
            f"{_fmt(record.get('eval_accuracy_unstable'))} of the unstable; test: "
            f"{_fmt(measured.get('test_unstable'))} unstable).")
    rows = [["float SavedModel", _fmt(measured.get("test_acceptance")),
             _fmt(measured.get("test_ok")), _fmt(measured.get("ood_referred")), "reference"]]
    for row in table.get("variants", []):
        numbers = row.get("referral") or {}
        if numbers:
            rows.append([row["variant"], _fmt(numbers.get("test_acceptance")),
                         _fmt(numbers.get("test_ok")), _fmt(numbers.get("ood_referred")),
                         _fmt(numbers.get("agreement"))])
    page.table(["model", f"test accepted (min {_fmt(gate.get('min_test_acceptance'))})",
                "test ok (not referred)",
                f"OOD referred (min {_fmt(gate.get('min_ood_referred'))})",
                f"ok/refer agreement (min {_fmt(gate.get('min_decision_agreement'))})"], rows)
    by_family = measured.get("ood_referred_by_family") or {}
    if by_family:
        page.table(["OOD family", "referred"], [[f, _fmt(v)] for f, v in by_family.items()])
    curve = record.get("risk_coverage_test") or []
    if curve:
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(4.6, 3.4))
        axis.plot([p["coverage"] for p in curve], [p["risk"] for p in curve], marker=".")
        axis.set_xlabel("coverage (share of accepted test images answered)")
        axis.set_ylabel("risk (error rate among answered)")
        axis.set_xlim(0, 1)
        axis.set_ylim(bottom=0)
        page.figure(figure, "risk_coverage.png",
                    "Risk–coverage: answering only the most confident images lowers the error")


def _data_section(page, inputs: ReportInputs, class_names) -> None:
    page.heading("Data")
    summary = read_ingest_summary(inputs.ingest_summary_uri)
    if summary:
        counts = summary["counts"]
        names = summary.get("class_names", class_names)
        rows = [[split] + [counts[split].get(n, 0) for n in names]
                + [sum(counts[split].values())] for split in counts]
        page.table(["split"] + list(names) + ["total"], rows)
        dup = summary.get("duplicates", {})
        page.paragraph(
            f"{summary.get('examples', '?')} examples from {summary.get('files', '?')} files; "
            f"{summary.get('quarantined', 0)} quarantined{_by_reason(summary)}; "
            f"{dup.get('groups', 0)} duplicate groups ({dup.get('extra_copies', 0)} extra copies)."
        )
    elif inputs.examples_uri:
        absent = storage.missing_reason(inputs.ingest_summary_uri, SUMMARY_FILE,
                                        "ImageExampleGen")
        counts = _count_examples(inputs.examples_uri, class_names)
        rows = [[split] + row + [sum(row)] for split, row in counts.items()]
        page.table(["split"] + list(class_names) + ["total"], rows)
        page.missing(f"{absent}: counts read from the Examples; duplicates unknown")
    else:
        page.missing("no data summary in this run: " + storage.missing_reason(
            inputs.ingest_summary_uri, SUMMARY_FILE, "ImageExampleGen"))
    quarantine = read_quarantine_report(inputs.quarantine_uri)
    if quarantine and quarantine.get("files"):
        page.subheading(f"Quarantined files ({quarantine['count']})")
        files = quarantine["files"][:25]
        page.table(["path", "reason", "message"],
                   [[f.get("path"), f.get("reason"), f.get("message")] for f in files])
    findings = read_findings(inputs.validation_uri)
    if findings:
        page.subheading("Image validation")
        page.table(["check", "outcome", "message"],
                   [[c["name"], _verdict(c["passed"]), html.escape(c["message"])]
                    for c in findings.get("checks", [])], escape=False)


def _training_section(page, training: dict | None) -> None:
    page.heading("Training")
    if not training:
        page.missing(f"no {SUMMARY_FILENAME} next to the SavedModel (the Trainer writes it)")
        return
    history = training.get("history") or []
    if isinstance(history, dict):  # {"loss": [...], ...}
        length = max((len(v) for v in history.values()), default=0)
        history = [{k: v[i] for k, v in history.items() if i < len(v)} for i in range(length)]
    series = sorted({k for entry in history for k, v in entry.items()
                     if isinstance(v, (int, float)) and k not in ("epoch", "seconds")})
    if history and series:
        import matplotlib.pyplot as plt

        groups = {"loss": [k for k in series if "loss" in k],
                  "scores": [k for k in series if "loss" not in k]}
        groups = {title: keys for title, keys in groups.items() if keys}
        figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.5), squeeze=False)
        epochs = [entry.get("epoch", i + 1) for i, entry in enumerate(history)]
        for axis, (title, keys) in zip(axes[0], groups.items(), strict=True):
            for key in keys:
                values = [entry.get(key, np.nan) for entry in history]
                axis.plot(epochs, values, marker=".", label=key)
            axis.set_xlabel("epoch")
            axis.set_title(title)
            axis.legend(fontsize=8)
        page.figure(figure, "training_curves.png", "Training curves")
    facts = {k: training[k] for k in ("model", "epochs", "best_epoch", "best_eval_macro_f1",
                                      "train_seconds", "train_examples", "eval_examples")
             if k in training}
    page.table(["fact", "value"], [[k, _fmt(v)] for k, v in facts.items()])


def _evaluation_section(page, inputs: ReportInputs) -> None:
    page.heading("Evaluation (test split, Evaluator)")
    if not inputs.evaluation_uri:
        page.missing("no Evaluator output in this run")
        return
    summary = evaluation_summary(inputs.evaluation_uri, inputs.gate_config)
    names = summary["class_names"]
    count = summary["example_count"]
    page.paragraph(f"{'n/a' if count is None else int(count)} test examples; accuracy "
                   f"{_fmt(summary['accuracy'])}; macro F1 {_fmt(summary['macro_f1'])}.")
    page.table(["class", "precision", "recall", "F1"],
               [[name] + [_fmt(summary["per_class"][name][m])
                          for m in ("precision", "recall", "f1_score")] for name in names])
    matrix = summary["confusion_matrix"]
    if matrix:
        page.figure(_confusion_figure(np.asarray(matrix), names), "confusion_matrix.png",
                    "Confusion matrix (rows: true class, columns: predicted)")


def _embedding_section(page, inputs: ReportInputs, training: dict | None) -> None:
    plots = dict((training or {}).get("embedding_plots") or {})
    if inputs.model_run_uri:
        for path in sorted(fileio.glob(os.path.join(inputs.model_run_uri, "embeddings_*.png"))):
            stage = os.path.basename(path)[len("embeddings_"):-len(".png")]
            plots.setdefault(stage, path)
    plots = {stage: path for stage, path in plots.items() if path and fileio.exists(path)}
    if not plots:
        return  # not a Siamese run
    page.heading("Siamese embeddings")
    for stage in sorted(plots, key=lambda s: (s != "before", s)):
        page.image(storage.read_bytes(plots[stage]), f"Embeddings {stage} training")


def _attention_section(page, inputs: ReportInputs, class_names) -> None:
    if not inputs.serving_model_dir or not inputs.examples_uri:
        return
    from components import attention_score

    signature = attention_score.load_signature(inputs.serving_model_dir)
    keys = attention_score.attention_keys(signature)
    if not keys:
        return
    size = attention_score.signature_input_size(signature)
    # Finding masks exist only for the phantoms (a real database's masks/ outline the lungs).
    data_root = (read_ingest_summary(inputs.ingest_summary_uri) or {}).get("input_base")
    scored = bool(inputs.synthetic_data and data_root)
    cases = attention_score.read_test_cases(inputs.examples_uri, "test", size, data_root or "",
                                            limit=None if scored else OVERLAY_IMAGES)
    if not len(cases.labels):
        return
    outputs = attention_score.signature_outputs(signature, cases.images)
    page.heading("Attention overlays (test images)")
    if scored:
        shipped = _shipped_attention(page, inputs, keys, cases, attention_score)
        _pointing_game_table(page, keys, outputs, cases, attention_score, shipped)
    else:
        page.paragraph("Pointing game not scored: finding masks exist only for the synthetic "
                       "phantoms (a real database's masks/ folders outline the lungs), found "
                       "under the data root the ingestion summary names.")
    _attention_overlays(page, keys, outputs, cases, class_names, size)


def _shipped_attention(page, inputs: ReportInputs, keys, cases, attention_score):
    """(variant name, its maps on the test cases) for the variant the Quantizer selected, or
    None: the device draws (and the pushed model is judged by) that file's maps."""
    if not inputs.quantized_model_uri:
        return None
    from components.quantizer import selected_variant

    row = selected_variant(inputs.quantized_model_uri)
    if row is None:
        return None
    try:
        maps = attention_score.runner_attention_maps(row["file"], cases.images, keys)
    except ValueError as err:  # a file without the maps: the report still renders, says so
        page.paragraph(f"The shipped {row['variant']} file's maps are not scored: {err}")
        return None
    return row["variant"], maps


def _pointing_game_table(page, keys, outputs, cases, attention_score, shipped=None) -> None:
    rows = []
    for key in keys:
        score = attention_score.pointing_game(outputs[key], cases.masks)
        row = [key, f"{score.grid[0]}×{score.grid[1]}", f"{score.score:.3f}",
               f"{score.hits}/{score.scored}"]
        if shipped:
            on_device = attention_score.pointing_game(shipped[1][key], cases.masks)
            row.append(f"{on_device.score:.3f} ({on_device.hits}/{on_device.scored})")
        rows.append(row + [f"{score.chance:.3f}", f"{score.finding_area:.3f}",
                           score.without_finding])
    shipped_column = [f"pointing game, shipped {shipped[0]} TFLite"] if shipped else []
    page.table(["map", "cells", "pointing game (SavedModel)", "hits", *shipped_column,
                "chance (random cell)", "finding area", "not scored (no finding)"], rows)
    page.paragraph(
        "Pointing game: the share of test images with a finding whose attention peak (the "
        "map's arg-max cell) holds a pixel of the phantom's ground-truth finding mask. Chance "
        "is the score of a cell picked at random (the share of cells holding a finding pixel); "
        "the finding area is the share of the image it covers. Images without a finding — the "
        "Normal phantoms, whose dense ribs are anatomy — cannot be scored.")


def _attention_overlays(page, keys, outputs, cases, class_names, size) -> None:
    import matplotlib.pyplot as plt

    with_finding = [i for i, mask in enumerate(cases.masks) if mask is not None and mask.any()]
    without = [i for i in range(len(cases.labels)) if i not in set(with_finding)]
    # Images with a finding first, from different classes where possible, then one without.
    chosen, seen = [], set()
    for index in with_finding:
        if int(cases.labels[index]) not in seen and len(chosen) < OVERLAY_IMAGES - 1:
            chosen.append(index)
            seen.add(int(cases.labels[index]))
    chosen += [i for i in with_finding if i not in chosen][: OVERLAY_IMAGES - 1 - len(chosen)]
    chosen += without[: OVERLAY_IMAGES - len(chosen)]
    figure, axes = plt.subplots(len(keys), len(chosen), squeeze=False,
                                figsize=(2.6 * len(chosen), 3.2 * len(keys)))
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)
    for row, key in enumerate(keys):
        for col, index in enumerate(chosen):
            axis = axes[row][col]
            attention = outputs[key][index, ..., 0]
            axis.imshow(cases.images[index, ..., 0], cmap="gray", vmin=0, vmax=255,
                        extent=extent)
            # Each map spans its own range: a sigmoid gate near 1 everywhere still shows where
            # it is highest (the title gives the range, so a flat map reads as flat).
            low, high = float(attention.min()), float(attention.max())
            axis.imshow(attention, cmap="jet", alpha=0.5, vmin=low, vmax=max(high, low + 1e-6),
                        interpolation="bilinear", extent=extent)
            mask = cases.masks[index]
            if mask is not None and mask.any():
                axis.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=1.2)
            peak_row, peak_col = np.unravel_index(int(attention.argmax()), attention.shape)
            cell = size / attention.shape[0], size / attention.shape[1]
            axis.add_patch(plt.Rectangle((peak_col * cell[1] - 0.5, peak_row * cell[0] - 0.5),
                                         cell[1], cell[0], fill=False, edgecolor="magenta",
                                         linewidth=1.5))
            predicted = class_names[int(outputs[spec.PROBABILITIES_KEY][index].argmax())]
            axis.set_title(f"{key} ({attention.shape[0]}×{attention.shape[1]}, "
                           f"{low:.2f}–{high:.2f})\n"
                           f"true {class_names[cases.labels[index]]}\npred {predicted}",
                           fontsize=7)
            axis.axis("off")
    page.figure(figure, "attention_overlays.png",
                "Attention as a colour heat map (blue: the map's lowest value, red: its "
                "highest; the range is in each title) over the model input; white outline: the "
                "ground-truth finding; magenta box: the map's peak cell")


def _variants_section(page, inputs: ReportInputs) -> None:
    page.heading("TFLite variants (edge interpreter, test split)")
    table = read_variants_table(inputs.quantized_model_uri)
    if not table or not table.get("variants"):
        reason = (table or {}).get("skipped") or storage.missing_reason(
            inputs.quantized_model_uri, VARIANTS_FILENAME, "the Quantizer")
        page.missing(reason)
        return
    reference = table["reference"]
    selection = table.get("selection", {})
    page.paragraph(f"Float SavedModel ({reference['runtime']}): macro F1 "
                   f"{reference['macro_f1']:.4f} on {table['test_examples']} test images; "
                   f"selected: <b>{html.escape(str(table['selected']))}</b>.", escape=False)
    if selection.get("reason"):  # why this variant shipped, and how latency was measured
        budget = selection.get("max_size_mb")
        page.paragraph(
            f"<b>Why:</b> {html.escape(selection['reason'])}. Objective "
            f"'{html.escape(str(selection['objective']))}', noise margin "
            f"{selection['latency_margin']:.0%}, size budget "
            f"{f'{budget} MB' if budget else 'none'}; latency: "
            f"{html.escape(selection.get('latency_measured', ''))}, 1-minute load average "
            f"{selection.get('load_average_1min')}.", escape=False)
    threads = selection.get("latency_threads", 1)
    names = table["class_names"]
    rows = []
    for row in table["variants"]:
        if "error" in row:
            rows.append([html.escape(row["variant"]), "", "", "", "", "", "",
                         html.escape(row["error"]), "failed"])
            continue
        per_class = html.escape(", ".join(f"{n} {row['per_class_f1'][n]:.3f}" for n in names))
        latency = row.get("latency_ms")
        shipped = "<b>shipped</b>" if row["variant"] == table["selected"] else html.escape(
            selection.get("excluded", {}).get(row["variant"], ""))
        rows.append([html.escape(row["variant"]), html.escape(str(row.get("quantization", ""))),
                     f"{row['size_bytes'] / 1e6:.2f} MB", f"{row['macro_f1']:.4f}",
                     f"{row['f1_drop']:+.4f}",
                     "not measured" if latency is None else f"{latency:.2f} ms",
                     shipped, per_class, _verdict(row["passed"])])
    page.table(["variant", "quantization", "size", "macro F1", "drop vs float",
                f"median latency ({threads} thread{'s' * (threads != 1)})", "shipped",
                "per-class F1", "gate"], rows, escape=False)
    for row in table["variants"]:
        if row.get("calibration"):
            _calibration_paragraph(page, row["variant"], row["calibration"])


def _calibration_paragraph(page, variant: str, calibration: dict) -> None:
    """Which calibration sample the int8 variant kept, and each one's fidelity on eval."""
    def numbers(candidate):
        agreement = candidate.get("decision_agreement")
        return (f"seed {candidate['seed']}: answers {candidate['answer_agreement']:.3f} ("
                + (f"ok/refer {agreement:.3f}, " if agreement is not None else "")
                + f"top-1 {candidate['top1_agreement']:.3f}), L1 {candidate['mean_l1']:.3f}")

    page.paragraph(f"<b>{html.escape(variant)} calibration:</b> "
                   f"{html.escape(calibration['rule'])}; kept seed {calibration['chosen_seed']} "
                   f"({html.escape('; '.join(numbers(c) for c in calibration['candidates']))}).",
                   escape=False)


# ---- helpers ----------------------------------------------------------------------------


class _Page:
    """Accumulates HTML; figures become PNG files beside the page and data URIs inside it."""

    def __init__(self, title: str, out_dir: str):
        import matplotlib

        matplotlib.use("Agg")
        self.title = title
        self.out_dir = out_dir
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def banner(self, text: str) -> None:
        self.parts.append(f'<p class="synthetic">{html.escape(text)}</p>')

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def subheading(self, text: str) -> None:
        self.parts.append(f"<h3>{html.escape(text)}</h3>")

    def paragraph(self, text: str, escape: bool = True) -> None:
        self.parts.append(f"<p>{html.escape(text) if escape else text}</p>")

    def missing(self, text: str) -> None:
        self.parts.append(f'<p class="missing">{html.escape(text)}</p>')

    def table(self, header, rows, escape: bool = True) -> None:
        def cell(value):
            return html.escape(str(value)) if escape else str(value)

        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                       for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, figure, filename: str, caption: str) -> None:
        import matplotlib.pyplot as plt

        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        plt.close(figure)
        storage.write_bytes(os.path.join(self.out_dir, filename), buffer.getvalue())
        self.image(buffer.getvalue(), caption)

    def image(self, png: bytes, caption: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def render(self) -> str:
        return _TEMPLATE.format(title=html.escape(self.title), body="\n".join(self.parts))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }}
.synthetic {{ background: #fff3cd; border: 2px solid #d39e00; padding: 0.8em; font-weight: bold; }}
.missing {{ color: #777; font-style: italic; }}
.pass {{ color: #176e2d; font-weight: bold; }} .fail {{ color: #b00020; font-weight: bold; }}
img {{ max-width: 100%; }} figure {{ margin: 0.5em 0; }}
</style></head>
<body>
{body}
</body></html>
"""


def _confusion_figure(matrix: np.ndarray, names):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4.2))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        axis.text(col, row, str(value), ha="center", va="center",
                  color="white" if value > threshold else "black")
    return figure


def _count_examples(examples_uri: str, class_names) -> dict:
    counts = {}
    for split in split_reader.split_names(examples_uri):
        row = [0] * len(class_names)
        for features in split_reader.records(examples_uri, split):
            label = split_reader.first_value(features, spec.LABEL_KEY, -1)
            if 0 <= label < len(row):
                row[label] += 1
        counts[split] = row
    return counts


def _by_reason(summary: dict) -> str:
    reasons = summary.get("quarantined_by_reason") or {}
    return f" ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))})" if reasons else ""


def _verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _run_id(pushed_model, other) -> str | None:
    # Function components are not told the run id: the Pusher (a class component) records it;
    # without a Pusher, the execution id in an input artifact's URI is the next best thing.
    push = read_push_record(pushed_model.uri if pushed_model else None) or {}
    if push.get("pipeline_run_id"):
        return push["pipeline_run_id"]
    return f"execution {os.path.basename(other.uri.rstrip('/'))}" if other else None
