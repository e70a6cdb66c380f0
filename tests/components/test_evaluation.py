"""The Evaluator's EvalConfig: which metrics are gated, where, and with which thresholds."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from components.lib import tfma_metrics
from components.lib.code_fingerprint import module_fingerprint
from components.lib.evaluation import (
    MACRO_F1_METRIC,
    PRIORITY_RECALL_METRIC,
    GateConfig,
    GateOutcome,
    build_eval_config,
    evaluation_summary,
    gate_outcomes,
)
from edge import spec
from trainer import metrics


def _gated(eval_config):
    return {
        json.loads("{" + metric.config + "}")["name"]: (spec_, metric)
        for spec_ in eval_config.metrics_specs
        for metric in spec_.metrics
        if metric.per_slice_thresholds
    }


def test_model_spec_follows_the_trainer_contract():
    (model_spec,) = build_eval_config().model_specs
    assert model_spec.signature_name == spec.EXAMPLES_SIGNATURE
    assert model_spec.label_key == spec.LABEL_KEY
    assert model_spec.prediction_key == spec.PROBABILITIES_KEY


def test_macro_f1_gate_is_the_top_one_metric_with_a_lower_bound_and_a_regression_limit():
    config = GateConfig(min_macro_f1=0.93, max_macro_f1_regression=0.02)
    metrics_spec, metric = _gated(build_eval_config(config))[MACRO_F1_METRIC]
    assert (metric.class_name, metric.module) == (tfma_metrics.TOP1_MACRO_F1, tfma_metrics.MODULE)
    assert json.loads("{" + metric.config + "}") == {
        "name": MACRO_F1_METRIC, "num_classes": 4,
        "code_fingerprint": module_fingerprint(tfma_metrics.MODULE)}  # for TFX's cache key
    # No binarization: one-vs-rest at a threshold is exactly what the gate must not measure.
    assert not metrics_spec.HasField("binarize") and not metrics_spec.HasField("aggregate")
    (per_slice,) = metric.per_slice_thresholds
    assert list(per_slice.slicing_specs) == [config_pb2.SlicingSpec()]  # overall slice only
    assert per_slice.threshold.value_threshold.lower_bound.value == pytest.approx(0.93)
    change = per_slice.threshold.change_threshold
    assert change.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER
    assert change.absolute.value == pytest.approx(-0.02)


def test_priority_recall_gate_is_the_top_one_recall_of_the_priority_class():
    config = GateConfig(min_priority_recall=0.95, priority_class="Normal")
    _spec, metric = _gated(build_eval_config(config))[PRIORITY_RECALL_METRIC]
    assert metric.class_name == tfma_metrics.TOP1_RECALL
    arguments = json.loads("{" + metric.config + "}")
    assert arguments["class_id"] == spec.CLASS_NAMES.index("Normal")
    (per_slice,) = metric.per_slice_thresholds
    assert per_slice.threshold.value_threshold.lower_bound.value == pytest.approx(0.95)


def test_evaluator_metrics_equal_trainer_metrics_where_one_vs_rest_disagrees(tmp_path):
    """The gate's macro F1 and COVID recall are arg-max numbers, even when no top probability
    reaches 0.5 (where one-vs-rest@0.5 would score almost nothing)."""
    labels, probabilities = _flat_predictions(n=240, seed=3)
    assert (probabilities.max(axis=1) < 0.5).all()
    predicted = probabilities.argmax(axis=1)
    expected_f1 = metrics.macro_f1(labels, predicted, 4)
    expected_recall = metrics.per_class_recall(labels, predicted, 4)[0]
    assert 0.4 < expected_f1 < 0.95  # informative, and far from one-vs-rest@0.5 (≈ 0)

    config = GateConfig(min_macro_f1=0.3, min_priority_recall=0.3)
    out = _analyze(labels, probabilities, config, tmp_path)
    summary = evaluation_summary(out, config)
    assert summary["macro_f1"] == pytest.approx(expected_f1, abs=1e-6)
    assert summary["priority_recall"] == pytest.approx(expected_recall, abs=1e-6)
    confusion = np.asarray(summary["confusion_matrix"])
    np.testing.assert_array_equal(confusion, metrics.confusion_matrix(labels, predicted, 4))
    assert metrics.macro_f1_from_confusion(confusion) == pytest.approx(summary["macro_f1"])
    for i, name in enumerate(spec.CLASS_NAMES):
        assert summary["per_class"][name]["f1_score"] == pytest.approx(
            metrics.per_class_f1(labels, predicted, 4)[i])
    outcomes = {o.metric: o for o in gate_outcomes(out, config)}
    assert outcomes[MACRO_F1_METRIC].value == pytest.approx(expected_f1, abs=1e-6)
    assert outcomes[MACRO_F1_METRIC].passed and outcomes[PRIORITY_RECALL_METRIC].passed

    failing = GateConfig(min_macro_f1=expected_f1 + 0.01)
    out = _analyze(labels, probabilities, failing, tmp_path / "failing")
    outcome = {o.metric: o for o in gate_outcomes(out, failing)}[MACRO_F1_METRIC]
    assert not outcome.passed
    assert f"{expected_f1:.4f} vs threshold {expected_f1 + 0.01:.4f}: FAIL" in outcome.describe()


def test_evaluator_records_expected_calibration_error_and_its_reliability_table(tmp_path):
    labels, probabilities = _flat_predictions(n=240, seed=5)
    out = _analyze(labels, probabilities, GateConfig(), tmp_path)
    calibration = evaluation_summary(out)["calibration"]
    assert calibration["expected_calibration_error"] == pytest.approx(
        metrics.expected_calibration_error(probabilities, labels), abs=1e-6)
    table = metrics.reliability_table(probabilities, labels)
    assert [b["examples"] for b in calibration["bins"]] == pytest.approx(table[:, 0].tolist())
    # Under-confident predictions: accuracy above confidence in the occupied bins.
    occupied = [b for b in calibration["bins"] if b["examples"]]
    assert all(b["accuracy"] > b["mean_confidence"] for b in occupied if b["examples"] > 20)


def _flat_predictions(n: int, seed: int):
    """Softmax outputs with the true class usually on top but never above 0.5."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), labels] += 1.2
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # Mixed with the uniform distribution: same arg-max, top probability ≤ 0.175 + 0.3 < 0.5.
    return labels, (0.7 * 0.25 + 0.3 * softmax).astype(np.float32)


def _analyze(labels, probabilities, config, out_dir) -> str:
    """Runs the Evaluator's own EvalConfig through TFMA on raw predictions; returns its output."""
    eval_config = build_eval_config(config)
    eval_config.model_specs[0].ClearField("signature_name")  # no model: predictions are given
    for metrics_spec in eval_config.metrics_specs:  # no baseline model: a first run
        for metric in metrics_spec.metrics:
            for per_slice in metric.per_slice_thresholds:
                per_slice.threshold.ClearField("change_threshold")
    frame = pd.DataFrame({
        spec.LABEL_KEY: labels.astype(np.int64),
        spec.LABEL_NAME_KEY: [spec.CLASS_NAMES[i] for i in labels],
        spec.PROBABILITIES_KEY: list(probabilities),
    })
    tfma.analyze_raw_data(frame, eval_config, output_path=str(out_dir))
    return str(out_dir)


def test_defaults_are_the_release_bar_and_the_config_is_valid_for_tfma():
    config = GateConfig()
    assert (config.min_macro_f1, config.min_priority_recall) == (0.90, 0.90)
    assert config.priority_class == spec.PRIORITY_CLASS
    eval_config = tfma.utils.update_eval_config_with_defaults(
        build_eval_config(config), has_baseline=True, rubber_stamp=True
    )
    tfma.utils.verify_eval_config(eval_config)
    assert len(eval_config.model_specs) == 2  # candidate + baseline for the change threshold
    names = {m.class_name for s in eval_config.metrics_specs for m in s.metrics}
    assert {"MultiClassConfusionMatrixPlot", tfma_metrics.TOP1_MACRO_F1,
            tfma_metrics.TOP1_RECALL, tfma_metrics.TOP1_CALIBRATION} <= names


def test_gate_config_validates_and_round_trips_json():
    with pytest.raises(ValueError, match="priority class"):
        GateConfig(priority_class="Pneumothorax")
    with pytest.raises(ValueError, match="min_macro_f1"):
        GateConfig(min_macro_f1=1.5)
    config = GateConfig(min_macro_f1=0.8, class_names=("a", "b"), priority_class="b")
    assert GateConfig.from_json(config.to_json()) == config


def test_gate_outcome_describes_value_threshold_and_verdict():
    outcome = GateOutcome("macro F1", MACRO_F1_METRIC, 0.8712, 0.9, ">=", False)
    assert outcome.describe() == "macro F1: macro_f1 = 0.8712 vs threshold 0.9000: FAIL"
    change = GateOutcome("no regression", MACRO_F1_METRIC, 0.95, 0.01, "drop <=", True, 0.94,
                         "last blessed attention model")
    assert change.describe() == (
        "no regression: macro_f1 = 0.9500 vs 0.9400 of the last blessed attention model "
        "(at most 0.0100 below it): pass")


def test_regression_rule_names_the_kind_and_the_allowed_drop():
    config = GateConfig(max_macro_f1_regression=0.02, model_kind="baseline")
    assert config.regression_rule() == (
        "macro F1 at most 0.0200 below the last blessed baseline model")
    assert GateConfig().regression_rule() == (
        "macro F1 at most 0.0100 below the last blessed model of the same kind")
