"""The report's sections that read recorded numbers: gates, models side by side, data,
training, evaluation, calibration, referral, Siamese embeddings and the TFLite variants."""

import html
import os

import numpy as np
from tfx.dsl.io import fileio

from components.edge_pusher import read_push_record
from components.image_example_gen.executor import (
    SUMMARY_FILE,
    read_ingest_summary,
    read_quarantine_report,
)
from components.image_validator import read_findings
from components.lib import storage
from components.lib.evaluation import evaluation_summary, gate_outcomes
from components.lib.model_summary import read_model_summary
from components.quantizer import VARIANTS_FILENAME, read_variants_table
from components.report.inputs import ReportInputs
from components.report.page import fmt, verdict
from edge import spec
from trainer import split_reader
from trainer.summary_file import SUMMARY_FILENAME


def gates_section(page, inputs: ReportInputs) -> None:
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
            rows.append(["Evaluator", outcome.gate, value, threshold, verdict(outcome.passed)])
    if inputs.blessed is not None:
        rows.append(["Evaluator", "blessing", "blessed" if inputs.blessed else "not blessed",
                     "all gates", verdict(inputs.blessed)])
    table = read_variants_table(inputs.quantized_model_uri)
    if table:
        for row in table.get("variants", []):
            rows.append(["Quantizer", row["variant"], html.escape(row["message"]),
                         f"drop ≤ {table['max_f1_drop']:.4f}", verdict(row["passed"])])
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


def models_section(page, inputs: ReportInputs, class_names) -> None:
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
             "; ".join(f"{g['gate']}: {fmt(g['value'])} {'pass' if g['passed'] else 'FAIL'}"
                       for g in summary.gates) or "n/a",
             fmt(evaluation.get("macro_f1")), fmt(evaluation.get("priority_recall")),
             ", ".join(f"{name} {fmt((per_class.get(name) or {}).get('f1_score'))}"
                       for name in class_names),
             fmt(calibration.get("expected_calibration_error")),
             summary.selected_variant or summary.note or "none",
             "n/a" if size is None else f"{size / 1e6:.2f} MB",
             "n/a" if latency is None else f"{latency:.2f} ms"])
    page.table(["model", "blessing", "gates", "macro F1", "priority recall", "per-class F1",
                "ECE", "variant", "size", "latency"], rows)


def calibration_section(page, inputs: ReportInputs) -> None:
    if not inputs.evaluation_uri:
        return
    calibration = evaluation_summary(inputs.evaluation_uri, inputs.gate_config).get("calibration")
    page.heading("Calibration (test split, top-1 confidence)")
    if not calibration:
        page.missing("the Evaluator recorded no reliability table")
        return
    bins = [b for b in calibration["bins"] if b["examples"]]
    page.paragraph(
        f"Expected calibration error {fmt(calibration['expected_calibration_error'])} over "
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
                 fmt(b["mean_confidence"]), fmt(b["accuracy"])] for b in bins])


def referral_section(page, inputs: ReportInputs) -> None:
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
        f"{fmt(record.get('ood_threshold'))} (accepts {fmt(record.get('eval_acceptance'))} of "
        f"eval, target {fmt(record.get('acceptance_target'))}); top-1 probability under "
        f"{fmt(record.get('refer_below'))} (eval accuracy "
        f"{fmt(record.get('eval_accuracy_at_refer_below'))} at coverage "
        f"{fmt(record.get('eval_coverage_at_refer_below'))}, target "
        f"{fmt(record.get('target_accuracy'))}); temperature "
        f"{fmt(record.get('temperature'))} (eval ECE {fmt(record.get('ece_eval_before'))} → "
        f"{fmt(record.get('ece_eval_after'))}).")
    if "unstable_below" in record:
        page.paragraph(
            f"Consistency check: {record.get('consistency_method', 'n/a')}; a stability under "
            f"{fmt(record.get('unstable_below'))} is referred as unstable (eval: "
            f"{fmt(record.get('eval_unstable'))} unstable, accuracy "
            f"{fmt(record.get('eval_accuracy_stable'))} of the others, "
            f"{fmt(record.get('eval_accuracy_unstable'))} of the unstable; test: "
            f"{fmt(measured.get('test_unstable'))} unstable).")
    rows = [["float SavedModel", fmt(measured.get("test_acceptance")),
             fmt(measured.get("test_ok")), fmt(measured.get("ood_referred")), "reference"]]
    for row in table.get("variants", []):
        numbers = row.get("referral") or {}
        if numbers:
            rows.append([row["variant"], fmt(numbers.get("test_acceptance")),
                         fmt(numbers.get("test_ok")), fmt(numbers.get("ood_referred")),
                         fmt(numbers.get("agreement"))])
    page.table(["model", f"test accepted (min {fmt(gate.get('min_test_acceptance'))})",
                "test ok (not referred)",
                f"OOD referred (min {fmt(gate.get('min_ood_referred'))})",
                f"ok/refer agreement (min {fmt(gate.get('min_decision_agreement'))})"], rows)
    by_family = measured.get("ood_referred_by_family") or {}
    if by_family:
        page.table(["OOD family", "referred"], [[f, fmt(v)] for f, v in by_family.items()])
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


def data_section(page, inputs: ReportInputs, class_names) -> None:
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
                   [[c["name"], verdict(c["passed"]), html.escape(c["message"])]
                    for c in findings.get("checks", [])], escape=False)


def training_section(page, training: dict | None) -> None:
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
    page.table(["fact", "value"], [[k, fmt(v)] for k, v in facts.items()])


def evaluation_section(page, inputs: ReportInputs) -> None:
    page.heading("Evaluation (test split, Evaluator)")
    if not inputs.evaluation_uri:
        page.missing("no Evaluator output in this run")
        return
    summary = evaluation_summary(inputs.evaluation_uri, inputs.gate_config)
    names = summary["class_names"]
    count = summary["example_count"]
    page.paragraph(f"{'n/a' if count is None else int(count)} test examples; accuracy "
                   f"{fmt(summary['accuracy'])}; macro F1 {fmt(summary['macro_f1'])}.")
    page.table(["class", "precision", "recall", "F1"],
               [[name] + [fmt(summary["per_class"][name][m])
                          for m in ("precision", "recall", "f1_score")] for name in names])
    matrix = summary["confusion_matrix"]
    if matrix:
        page.figure(_confusion_figure(np.asarray(matrix), names), "confusion_matrix.png",
                    "Confusion matrix (rows: true class, columns: predicted)")


def embedding_section(page, inputs: ReportInputs, training: dict | None) -> None:
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




def variants_section(page, inputs: ReportInputs) -> None:
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
                     shipped, per_class, verdict(row["passed"])])
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

