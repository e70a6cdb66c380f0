"""Evaluator configuration (TFMA 0.52) and its gate outcomes in plain words.

The Evaluator blesses a model only when every gate passes: macro F1 over all classes, recall of
the priority class (a missed COVID case costs more than a false alarm) and, once a blessed model
exists, no regression of macro F1 against it. `gate_outcomes` turns the Evaluator's output into
"metric = value vs threshold: pass/fail" lines for the CLI and the run report.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from edge import spec

MACRO_F1_METRIC = "macro_f1"
PRIORITY_RECALL_METRIC = "priority_recall"


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Thresholds of the Evaluator gates. Defaults are the project's release bar."""

    min_macro_f1: float = 0.90
    min_priority_recall: float = 0.90
    # Largest allowed macro F1 drop against the latest blessed model (0 = no regression).
    max_macro_f1_regression: float = 0.0
    class_names: tuple[str, ...] = spec.CLASS_NAMES
    priority_class: str = spec.PRIORITY_CLASS

    def __post_init__(self):
        if self.priority_class not in self.class_names:
            raise ValueError(
                f"priority class {self.priority_class!r} is not one of {self.class_names}"
            )
        for name in ("min_macro_f1", "min_priority_recall"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.max_macro_f1_regression < 0:
            raise ValueError("max_macro_f1_regression must be >= 0")

    @property
    def priority_class_id(self) -> int:
        return self.class_names.index(self.priority_class)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> GateConfig:
        values = json.loads(text or "{}")
        if "class_names" in values:
            values["class_names"] = tuple(values["class_names"])
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class GateOutcome:
    """One gate: what was measured, against what, and whether it passed."""

    gate: str
    metric: str
    value: float | None
    threshold: float
    comparison: str  # ">=" for lower bounds, "drop <=" for the change threshold
    passed: bool
    baseline: float | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"description": self.describe()}

    def describe(self) -> str:
        value = "missing" if self.value is None else f"{self.value:.4f}"
        verdict = "pass" if self.passed else "FAIL"
        if self.baseline is not None:
            return (
                f"{self.gate}: {self.metric} = {value} vs baseline {self.baseline:.4f} "
                f"(allowed drop {self.threshold:.4f}): {verdict}"
            )
        return f"{self.gate}: {self.metric} = {value} vs threshold {self.threshold:.4f}: {verdict}"


def build_eval_config(config: GateConfig = GateConfig()) -> tfma.EvalConfig:
    """The Evaluator's EvalConfig: gates plus diagnostic metrics, overall and per true class."""
    class_ids = list(range(len(config.class_names)))
    lower_bound = tfma.GenericValueThreshold
    no_regression = tfma.GenericChangeThreshold(
        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
        absolute={"value": -config.max_macro_f1_regression - 1e-10},
    )
    diagnostics = tfma.MetricsSpec(
        metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="SparseCategoricalAccuracy"),
            tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
        ]
    )
    per_class = tfma.MetricsSpec(
        metrics=[
            tfma.MetricConfig(class_name="Precision"),
            tfma.MetricConfig(class_name="Recall"),
            tfma.MetricConfig(class_name="F1Score"),
        ],
        binarize=config_pb2.BinarizationOptions(class_ids={"values": class_ids}),
    )
    macro_f1 = tfma.MetricsSpec(
        metrics=[
            tfma.MetricConfig(
                class_name="F1Score",
                config=f'"name": "{MACRO_F1_METRIC}"',
                per_slice_thresholds=[
                    _overall_only(
                        tfma.MetricThreshold(
                            value_threshold=lower_bound(
                                lower_bound={"value": config.min_macro_f1}
                            ),
                            change_threshold=no_regression,
                        )
                    )
                ],
            )
        ],
        # Aggregating without `binarize`: class_weights names the classes, and no per-class
        # keys inherit the gate's threshold (per-class values come from `per_class`).
        aggregate=config_pb2.AggregationOptions(
            macro_average=True, class_weights={i: 1.0 for i in class_ids}
        ),
    )
    priority_recall = tfma.MetricsSpec(
        metrics=[
            tfma.MetricConfig(
                class_name="Recall",
                config=f'"name": "{PRIORITY_RECALL_METRIC}"',
                per_slice_thresholds=[
                    _overall_only(
                        tfma.MetricThreshold(
                            value_threshold=lower_bound(
                                lower_bound={"value": config.min_priority_recall}
                            )
                        )
                    )
                ],
            )
        ],
        binarize=config_pb2.BinarizationOptions(class_ids={"values": [config.priority_class_id]}),
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=spec.EXAMPLES_SIGNATURE,
                label_key=spec.LABEL_KEY,
                prediction_key=spec.PROBABILITIES_KEY,
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[spec.LABEL_NAME_KEY])],
        metrics_specs=[diagnostics, per_class, macro_f1, priority_recall],
    )


def _overall_only(threshold: tfma.MetricThreshold) -> config_pb2.PerSliceMetricThreshold:
    # Gates judge the whole test split; per-class slices are diagnostics (their F1 for the other
    # classes is NaN by construction and would fail any threshold).
    return config_pb2.PerSliceMetricThreshold(
        slicing_specs=[tfma.SlicingSpec()], threshold=threshold
    )


def gate_outcomes(evaluation_uri: str, config: GateConfig = GateConfig()) -> list[GateOutcome]:
    """Plain outcomes of the Evaluator's gates, read from its `evaluation` artifact directory."""
    validation = tfma.load_validation_result(evaluation_uri)
    failed = {
        (failure.metric_key.name, failure.metric_key.is_diff)
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    }
    values = _overall_values(evaluation_uri)
    candidate = _candidate_model_name(values)
    outcomes = [
        _lower_bound_outcome(
            "macro F1", MACRO_F1_METRIC, config.min_macro_f1, values, candidate, failed
        ),
        _lower_bound_outcome(
            f"{config.priority_class} recall",
            PRIORITY_RECALL_METRIC,
            config.min_priority_recall,
            values,
            candidate,
            failed,
            class_id=config.priority_class_id,
        ),
    ]
    diff = values.get((MACRO_F1_METRIC, candidate, True))
    baseline = _first_other_model_value(values, MACRO_F1_METRIC, candidate)
    if diff is not None and baseline is not None:
        outcomes.append(
            GateOutcome(
                gate="no regression vs latest blessed",
                metric=MACRO_F1_METRIC,
                value=values.get((MACRO_F1_METRIC, candidate, False)),
                threshold=config.max_macro_f1_regression,
                comparison="drop <=",
                passed=(MACRO_F1_METRIC, True) not in failed,
                baseline=baseline,
            )
        )
    return outcomes


def evaluation_summary(evaluation_uri: str, config: GateConfig = GateConfig()) -> dict:
    """Overall metrics of the candidate model as plain numbers (JSON-ready)."""
    class_names = config.class_names
    priority_class_id = config.priority_class_id
    values = _overall_values(evaluation_uri)
    candidate = _candidate_model_name(values)
    per_class = {}
    for class_id, name in enumerate(class_names):
        per_class[name] = {
            metric: _json_number(values.get((metric, candidate, False, class_id)))
            for metric in ("precision", "recall", "f1_score")
        }
    return {
        "example_count": _json_number(values.get(("example_count", candidate, False))),
        "accuracy": _json_number(values.get(("sparse_categorical_accuracy", candidate, False))),
        "macro_f1": _json_number(values.get((MACRO_F1_METRIC, candidate, False))),
        "priority_recall": _json_number(
            values.get((PRIORITY_RECALL_METRIC, candidate, False, priority_class_id))
        ),
        "per_class": per_class,
        "confusion_matrix": _confusion_matrix(evaluation_uri, candidate, len(class_names)),
        "class_names": list(class_names),
    }


def _lower_bound_outcome(
    gate, metric, threshold, values, candidate, failed, class_id=None
) -> GateOutcome:
    key = (metric, candidate, False) + (() if class_id is None else (class_id,))
    value = _json_number(values.get(key))
    passed = value is not None and (metric, False) not in failed
    return GateOutcome(gate, metric, value, threshold, ">=", passed)


def _overall_values(evaluation_uri: str) -> dict:
    """{(name, model, is_diff[, class_id]): value} for the overall slice."""
    values = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for entry in metrics.metric_keys_and_values:
            key = entry.key
            if not entry.value.HasField("double_value"):
                continue
            value = entry.value.double_value.value
            base = (key.name, key.model_name, key.is_diff)
            if key.HasField("sub_key") and key.sub_key.HasField("class_id"):
                values[base + (key.sub_key.class_id.value,)] = value
            else:
                values[base] = value
    return values


def _candidate_model_name(values: dict) -> str:
    # TFX names the models "candidate"/"baseline" when a baseline exists, "" otherwise.
    names = {key[1] for key in values}
    return "candidate" if "candidate" in names else ""


def _first_other_model_value(values: dict, metric: str, candidate: str) -> float | None:
    for key, value in values.items():
        if len(key) == 3 and key[0] == metric and key[1] != candidate and not key[2]:
            return value
    return None


def _confusion_matrix(evaluation_uri: str, candidate: str, num_classes: int) -> list | None:
    """Rows = true class, columns = predicted class, from MultiClassConfusionMatrixPlot."""
    if not any(name.startswith("plots") for name in os.listdir(evaluation_uri)):
        return None
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for entry in plots.plot_keys_and_values:
            if entry.key.model_name != candidate:
                continue
            matrices = entry.value.multi_class_confusion_matrix_at_thresholds.matrices
            if not matrices:
                continue
            matrix = [[0] * num_classes for _ in range(num_classes)]
            for cell in matrices[0].entries:
                if cell.actual_class_id < num_classes and cell.predicted_class_id < num_classes:
                    matrix[cell.actual_class_id][cell.predicted_class_id] = int(
                        round(cell.num_weighted_examples)
                    )
            return matrix
    return None


def _json_number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
