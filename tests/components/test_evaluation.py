"""The Evaluator's EvalConfig: which metrics are gated, where, and with which thresholds."""

import pytest
import tensorflow_model_analysis as tfma

from components.evaluation import (
    MACRO_F1_METRIC,
    PRIORITY_RECALL_METRIC,
    GateConfig,
    GateOutcome,
    build_eval_config,
)
from edge import spec


def _gated(eval_config):
    return {
        metric.config.split('"')[3]: (spec_, metric)
        for spec_ in eval_config.metrics_specs
        for metric in spec_.metrics
        if metric.per_slice_thresholds
    }


def test_model_spec_follows_the_trainer_contract():
    (model_spec,) = build_eval_config().model_specs
    assert model_spec.signature_name == spec.EXAMPLES_SIGNATURE
    assert model_spec.label_key == spec.LABEL_KEY
    assert model_spec.prediction_key == spec.PROBABILITIES_KEY


def test_macro_f1_gate_averages_every_class_with_a_lower_bound_and_no_regression():
    config = GateConfig(min_macro_f1=0.93, max_macro_f1_regression=0.02)
    metrics_spec, metric = _gated(build_eval_config(config))[MACRO_F1_METRIC]
    assert metric.class_name == "F1Score"
    assert metrics_spec.aggregate.macro_average
    assert dict(metrics_spec.aggregate.class_weights) == {i: 1.0 for i in range(4)}
    # Without `binarize` the per-class keys do not inherit the gate's threshold.
    assert not metrics_spec.HasField("binarize")
    (per_slice,) = metric.per_slice_thresholds
    assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()]  # overall slice only
    assert per_slice.threshold.value_threshold.lower_bound.value == pytest.approx(0.93)
    change = per_slice.threshold.change_threshold
    assert change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert change.absolute.value == pytest.approx(-0.02)


def test_priority_recall_gate_binarizes_the_priority_class_only():
    config = GateConfig(min_priority_recall=0.95, priority_class="Normal")
    metrics_spec, metric = _gated(build_eval_config(config))[PRIORITY_RECALL_METRIC]
    assert metric.class_name == "Recall"
    assert list(metrics_spec.binarize.class_ids.values) == [spec.CLASS_NAMES.index("Normal")]
    (per_slice,) = metric.per_slice_thresholds
    assert per_slice.threshold.value_threshold.lower_bound.value == pytest.approx(0.95)


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
    assert {"MultiClassConfusionMatrixPlot", "Precision", "Recall", "F1Score"} <= names


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
    change = GateOutcome("no regression", MACRO_F1_METRIC, 0.95, 0.0, "drop <=", True, 0.94)
    assert "vs baseline 0.9400" in change.describe() and change.describe().endswith("pass")
