"""TFMA metrics that gate on the same top-1 numbers the Trainer and the Quantizer compute.

TFMA's own `F1Score`/`Recall` binarize each class one-vs-rest at a probability threshold (0.5 by
default): a model whose top probability is often under 0.5 scores far lower there than its
arg-max macro F1 (docs/decisions/top1-gate-metrics.md), and `top_k` binarization with macro
aggregation fails in TFMA 0.52 (KeyError on the per-class keys). These metrics build TFMA's
arg-max multi-class confusion matrix in Beam and hand it to `trainer.metrics`, the project's one
definition, so gate, report, Trainer and Quantizer agree.

`TopOneCalibration` accumulates the reliability table of the top-1 confidence and reports the
expected calibration error next to it (an [bins, 3] array: examples, summed confidence, correct).

Referenced from an EvalConfig by class name and `module="components.lib.tfma_metrics"`; Beam workers
import this module, so the package must be installed where they run (it is: `.[pipeline]`).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import (
    metric_types,
    metric_util,
)
from tensorflow_model_analysis.metrics import (
    multi_class_confusion_matrix_metrics as mccm,
)

from trainer import metrics

MODULE = __name__
TOP1_MACRO_F1 = "TopOneMacroF1"
TOP1_RECALL = "TopOneRecall"
TOP1_CALIBRATION = "TopOneCalibration"
ECE_METRIC = "expected_calibration_error"
RELIABILITY_METRIC = "reliability_table"
# Arg-max matrix: a softmax's top probability is > 0, so threshold 0 keeps every prediction.
_ARGMAX_THRESHOLD = 0.0
_MATRICES_NAME = "_top1_confusion_matrices"


class TopOneMacroF1(metric_types.Metric):
    """Unweighted mean over `num_classes` of the per-class F1 of arg-max predictions."""

    def __init__(self, num_classes: int, name: str = "macro_f1", code_fingerprint: str = ""):
        # code_fingerprint: unused; in the EvalConfig so that changed metric code misses TFX's
        # cache (components/lib/code_fingerprint.py).
        del code_fingerprint
        super().__init__(
            metric_util.merge_per_key_computations(_macro_f1), num_classes=num_classes, name=name
        )


class TopOneRecall(metric_types.Metric):
    """Recall of one class under arg-max predictions (e.g. COVID recall)."""

    def __init__(self, num_classes: int, class_id: int, name: str = "priority_recall"):
        super().__init__(
            metric_util.merge_per_key_computations(_recall),
            num_classes=num_classes,
            class_id=class_id,
            name=name,
        )


class TopOneCalibration(metric_types.Metric):
    """Expected calibration error of the top-1 confidence, and its reliability table."""

    def __init__(self, bins: int = metrics.CALIBRATION_BINS, name: str = ECE_METRIC):
        super().__init__(
            metric_util.merge_per_key_computations(_calibration), bins=bins, name=name
        )


for _metric in (TopOneMacroF1, TopOneRecall, TopOneCalibration):
    metric_types.register_metric(_metric)


def confusion_from_matrices(matrices, num_classes: int) -> np.ndarray:
    """Dense [true, predicted] matrix from TFMA's `Matrices` at the arg-max threshold."""
    confusion = np.zeros((num_classes, num_classes))
    for entry, weight in matrices.get(_ARGMAX_THRESHOLD, {}).items():
        if 0 <= entry.actual_class_id < num_classes and 0 <= entry.predicted_class_id < num_classes:
            confusion[entry.actual_class_id, entry.predicted_class_id] += weight
    return confusion


def _from_confusion(score, name, num_classes, eval_config, model_name, output_name,
                    example_weighted):
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name,
        example_weighted=example_weighted,
    )
    computations = mccm.multi_class_confusion_matrices(
        thresholds=[_ARGMAX_THRESHOLD],
        name=_MATRICES_NAME,
        eval_config=eval_config,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
    )
    matrices_key = computations[-1].keys[-1]

    def result(values):
        return {key: score(confusion_from_matrices(values[matrices_key], num_classes))}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


def _macro_f1(num_classes, name="macro_f1", eval_config=None, model_name="", output_name="",
              example_weighted=False):
    return _from_confusion(metrics.macro_f1_from_confusion, name, num_classes, eval_config,
                           model_name, output_name, example_weighted)


def _recall(num_classes, class_id, name="priority_recall", eval_config=None, model_name="",
            output_name="", example_weighted=False):
    def recall(confusion):
        return float(metrics.per_class_recall_from_confusion(confusion)[class_id])

    return _from_confusion(recall, name, num_classes, eval_config, model_name, output_name,
                           example_weighted)


def _calibration(bins=metrics.CALIBRATION_BINS, name=ECE_METRIC, eval_config=None,
                 model_name="", output_name="", example_weighted=False):
    def key(metric_name):
        return metric_types.MetricKey(
            name=metric_name, model_name=model_name, output_name=output_name,
            example_weighted=example_weighted,
        )

    ece_key, table_key = key(name), key(RELIABILITY_METRIC)
    return [
        metric_types.MetricComputation(
            keys=[ece_key, table_key],
            preprocessors=None,
            combiner=_ReliabilityCombiner(
                ece_key, table_key, bins, eval_config, model_name, output_name,
                example_weighted,
            ),
        )
    ]


class _ReliabilityCombiner(beam.CombineFn):
    """Sums `trainer.metrics.reliability_table` rows over examples (weighted)."""

    def __init__(self, ece_key, table_key, bins, eval_config, model_name, output_name,
                 example_weighted):
        self._ece_key, self._table_key, self._bins = ece_key, table_key, bins
        self._eval_config = eval_config
        self._model_name, self._output_name = model_name, output_name
        self._example_weighted = example_weighted

    def create_accumulator(self):
        return np.zeros((self._bins, 3))

    def add_input(self, accumulator, element):
        label, prediction, weight = next(
            metric_util.to_label_prediction_example_weight(
                element,
                eval_config=self._eval_config,
                model_name=self._model_name,
                output_name=self._output_name,
                example_weighted=self._example_weighted,
                flatten=False,
                require_single_example_weight=True,
            )
        )
        label = np.asarray(label).reshape(-1)
        true_class = int(label.argmax()) if label.size > 1 else int(label.item())
        row = metrics.reliability_table(
            np.asarray(prediction, np.float64).reshape(1, -1), [true_class], self._bins
        )
        return accumulator + row * float(np.asarray(weight).item())

    def merge_accumulators(self, accumulators):
        return sum(accumulators, self.create_accumulator())

    def extract_output(self, accumulator):
        return {
            self._ece_key: metrics.expected_calibration_error_from_table(accumulator),
            self._table_key: accumulator,
        }
