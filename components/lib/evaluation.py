"""Evaluator configuration (TFMA 0.52) and its gate outcomes in plain words.

The Evaluator blesses a model only when every gate passes: top-1 macro F1 over all classes,
top-1 recall of the priority class (a missed COVID case costs more than a false alarm) and, once
a blessed model of the same kind exists, macro F1 at most `max_macro_f1_regression` below that
model's. All three are the arg-max numbers of `trainer.metrics` (see
components/lib/tfma_metrics.py). The expected calibration error of the top-1 confidence and its
reliability table are recorded beside them. `gate_outcomes` turns the Evaluator's output into
"metric = value vs threshold: pass/fail" lines for the CLI and the run report.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2
from tfx.dsl.io import fileio

from components.lib import tfma_metrics
from components.lib.code_fingerprint import module_fingerprint
from edge import spec
from trainer import constants, metrics

MACRO_F1_METRIC = "macro_f1"
PRIORITY_RECALL_METRIC = "priority_recall"


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Thresholds of the Evaluator gates. Defaults are the project's release bar."""

    min_macro_f1: float = constants.MIN_MACRO_F1
    min_priority_recall: float = constants.MIN_PRIORITY_RECALL
    # A candidate may score at most this much macro F1 below the last blessed model of its own
    # kind (0 = strictly no regression).
    max_macro_f1_regression: float = constants.MAX_MACRO_F1_REGRESSION
    class_names: tuple[str, ...] = spec.CLASS_NAMES
    priority_class: str = spec.PRIORITY_CLASS
    model_kind: str = ""  # names the baseline in messages ("last blessed attention model")
    calibration_bins: int = metrics.CALIBRATION_BINS

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

    @property
    def baseline_name(self) -> str:
        if self.model_kind:
            return f"last blessed {self.model_kind} model"
        return "last blessed model of the same kind"

    def regression_rule(self) -> str:
        """The no-regression rule in words, for messages and the report."""
        return f"macro F1 at most {self.max_macro_f1_regression:.4f} below the {self.baseline_name}"

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
    baseline_name: str = "last blessed model"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"description": self.describe()}

    def describe(self) -> str:
        value = "missing" if self.value is None else f"{self.value:.4f}"
        verdict = "pass" if self.passed else "FAIL"
        if self.baseline is not None:
            return (
                f"{self.gate}: {self.metric} = {value} vs {self.baseline:.4f} of the "
                f"{self.baseline_name} (at most {self.threshold:.4f} below it): {verdict}"
            )
        return f"{self.gate}: {self.metric} = {value} vs threshold {self.threshold:.4f}: {verdict}"


def build_eval_config(config: GateConfig = GateConfig()) -> config_pb2.EvalConfig:
    """The Evaluator's EvalConfig: top-1 gates plus diagnostics, overall and per true class.

    The gated numbers are `components.lib.tfma_metrics`' arg-max metrics, computed by
    `trainer.metrics` from TFMA's arg-max confusion matrix: the same macro F1 and recall the
    Trainer selects checkpoints on and the Quantizer gates variants on.
    """
    num_classes = len(config.class_names)
    no_regression = config_pb2.GenericChangeThreshold(
        direction=config_pb2.MetricDirection.HIGHER_IS_BETTER,
        absolute={"value": -config.max_macro_f1_regression - 1e-10},
    )
    diagnostics = config_pb2.MetricsSpec(
        metrics=[
            config_pb2.MetricConfig(class_name="ExampleCount"),
            config_pb2.MetricConfig(class_name="SparseCategoricalAccuracy"),
            config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
            _top_one(tfma_metrics.TOP1_CALIBRATION, name=tfma_metrics.ECE_METRIC,
                     bins=config.calibration_bins),
        ]
    )
    gates = config_pb2.MetricsSpec(
        metrics=[
            _top_one(
                tfma_metrics.TOP1_MACRO_F1,
                name=MACRO_F1_METRIC,
                num_classes=num_classes,
                # The metrics' code, so a changed metric misses the Evaluator's cache.
                code_fingerprint=module_fingerprint(tfma_metrics.MODULE),
                threshold=config_pb2.MetricThreshold(
                    value_threshold=config_pb2.GenericValueThreshold(
                        lower_bound={"value": config.min_macro_f1}),
                    change_threshold=no_regression,
                ),
            ),
            _top_one(
                tfma_metrics.TOP1_RECALL,
                name=PRIORITY_RECALL_METRIC,
                num_classes=num_classes,
                class_id=config.priority_class_id,
                threshold=config_pb2.MetricThreshold(
                    value_threshold=config_pb2.GenericValueThreshold(
                        lower_bound={"value": config.min_priority_recall}),
                ),
            ),
        ]
    )
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(
                signature_name=spec.EXAMPLES_SIGNATURE,
                label_key=spec.LABEL_KEY,
                prediction_key=spec.PROBABILITIES_KEY,
            )
        ],
        slicing_specs=[
            config_pb2.SlicingSpec(),
            config_pb2.SlicingSpec(feature_keys=[spec.LABEL_NAME_KEY]),
        ],
        metrics_specs=[diagnostics, gates],
    )


def _top_one(class_name: str, threshold=None, **arguments) -> config_pb2.MetricConfig:
    metric = config_pb2.MetricConfig(
        class_name=class_name,
        module=tfma_metrics.MODULE,
        config=json.dumps(arguments)[1:-1],  # TFMA wraps the config in braces itself
    )
    if threshold is not None:
        metric.per_slice_thresholds.append(_overall_only(threshold))
    return metric


def _overall_only(threshold: config_pb2.MetricThreshold) -> config_pb2.PerSliceMetricThreshold:
    # Gates judge the whole test split; per-class slices are diagnostics (their F1 for the other
    # classes is NaN by construction and would fail any threshold).
    return config_pb2.PerSliceMetricThreshold(
        slicing_specs=[config_pb2.SlicingSpec()], threshold=threshold
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
        ),
    ]
    diff = values.get((MACRO_F1_METRIC, candidate, True))
    baseline = _first_other_model_value(values, MACRO_F1_METRIC, candidate)
    if diff is not None and baseline is not None:
        outcomes.append(
            GateOutcome(
                gate=f"no regression vs {config.baseline_name}",
                metric=MACRO_F1_METRIC,
                value=values.get((MACRO_F1_METRIC, candidate, False)),
                threshold=config.max_macro_f1_regression,
                comparison="drop <=",
                passed=(MACRO_F1_METRIC, True) not in failed,
                baseline=baseline,
                baseline_name=config.baseline_name,
            )
        )
    return outcomes


def evaluation_summary(evaluation_uri: str, config: GateConfig = GateConfig()) -> dict:
    """Overall metrics of the candidate model as plain numbers (JSON-ready).

    Per-class precision, recall and F1 come from the arg-max confusion matrix through
    `trainer.metrics`, like the gated macro F1; `calibration` holds the expected calibration
    error and the reliability table ([confidence bin] → examples, mean confidence, accuracy).
    """
    class_names = config.class_names
    values = _overall_values(evaluation_uri)
    candidate = _candidate_model_name(values)
    matrix = _confusion_matrix(evaluation_uri, candidate, len(class_names))
    per_class = {name: {"precision": None, "recall": None, "f1_score": None}
                 for name in class_names}
    if matrix is not None:
        scores = {
            "precision": metrics.per_class_precision_from_confusion(matrix),
            "recall": metrics.per_class_recall_from_confusion(matrix),
            "f1_score": metrics.per_class_f1_from_confusion(matrix),
        }
        per_class = {name: {metric: float(scores[metric][i]) for metric in scores}
                     for i, name in enumerate(class_names)}
    return {
        "example_count": _json_number(values.get(("example_count", candidate, False))),
        "accuracy": _json_number(values.get(("sparse_categorical_accuracy", candidate, False))),
        "macro_f1": _json_number(values.get((MACRO_F1_METRIC, candidate, False))),
        "priority_recall": _json_number(
            values.get((PRIORITY_RECALL_METRIC, candidate, False))
        ),
        "priority_class": config.priority_class,
        "metric_definition": "top-1 (arg-max) predictions, trainer.metrics",
        "per_class": per_class,
        "confusion_matrix": matrix,
        "calibration": _calibration(values, candidate),
        "class_names": list(class_names),
    }


def _calibration(values: dict, candidate: str) -> dict | None:
    table = values.get((tfma_metrics.RELIABILITY_METRIC, candidate, False))
    if table is None:
        return None
    table = table.reshape(-1, 3)
    count = table[:, 0]
    safe = count.clip(min=1e-12)
    bins = len(table)
    return {
        "expected_calibration_error": _json_number(
            values.get((tfma_metrics.ECE_METRIC, candidate, False))),
        "bins": [
            {"low": i / bins, "high": (i + 1) / bins, "examples": float(count[i]),
             "mean_confidence": float(table[i, 1] / safe[i]) if count[i] else None,
             "accuracy": float(table[i, 2] / safe[i]) if count[i] else None}
            for i in range(bins)
        ],
    }


def _lower_bound_outcome(gate, metric, threshold, values, candidate, failed) -> GateOutcome:
    value = _json_number(values.get((metric, candidate, False)))
    passed = value is not None and (metric, False) not in failed
    return GateOutcome(gate, metric, value, threshold, ">=", passed)


def _overall_values(evaluation_uri: str) -> dict:
    """{(name, model, is_diff[, class_id]): value} for the overall slice (arrays as numpy)."""
    values = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for entry in per_slice.metric_keys_and_values:
            key = entry.key
            if entry.value.HasField("double_value"):
                value = entry.value.double_value.value
            elif entry.value.HasField("array_value"):
                array = entry.value.array_value
                value = np.asarray(array.float64_values or array.float32_values, np.float64)
                value = value.reshape(tuple(array.shape) or (-1,))
            else:
                continue
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
            return _json_number(value)
    return None


def _confusion_matrix(evaluation_uri: str, candidate: str, num_classes: int) -> list | None:
    """Rows = true class, columns = predicted class, from MultiClassConfusionMatrixPlot."""
    if not any(name.startswith("plots") for name in fileio.listdir(evaluation_uri)):
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
