"""Attention vs baseline vs Siamese on the same demo data.

Each model kind the benchmark's pipeline trained is scored on the same test split (the one split
reader, edge decoder): macro F1 and COVID recall of its SavedModel, and — for models with
attention maps — the pointing game on the phantoms' finding masks, next to chance. The shipped
variant's size comes from its file; its latency from the latency topic (same images, same
interpreter), joined in the report.
"""

import os

import numpy as np

from benchmarks.common import mb
from components.lib import attention_score
from edge import spec
from trainer import metrics


def measure(bench_models) -> dict:
    rows = []
    data_root = bench_models.config.data_root
    for kind, model in bench_models.models.items():
        signature = attention_score.load_signature(model.saved_model_dir)
        size = attention_score.signature_input_size(signature)
        cases = attention_score.read_test_cases(bench_models.examples_uri, "test", size,
                                                data_root)
        outputs = attention_score.signature_outputs(signature, cases.images)
        predictions = outputs[spec.PROBABILITIES_KEY].argmax(axis=1)
        class_names = list(model.training_summary["config"]["class_names"])
        recall = metrics.per_class_recall(cases.labels, predictions, len(class_names))
        selected = model.variants.get("selected")
        shipped = model.tflite(selected) if selected else None
        rows.append({
            "model": kind,
            "test_images": int(len(cases.labels)),
            "macro_f1": round(metrics.macro_f1(cases.labels, predictions, len(class_names)), 4),
            "covid_recall": round(float(recall[class_names.index(spec.PRIORITY_CLASS)]), 4),
            "pointing_game": {key: _rounded(attention_score.pointing_game(outputs[key],
                                                                          cases.masks))
                              for key in attention_score.attention_keys(signature)},
            "selected_variant": selected,
            "selected_size_mb": mb(os.path.getsize(shipped))
            if shipped and os.path.isfile(shipped) else None,
        })
    return {"rows": rows, "data_root": data_root}


def _rounded(score) -> dict:
    values = score.as_dict()
    for key in ("score", "chance", "finding_area"):
        values[key] = None if np.isnan(values[key]) else round(float(values[key]), 3)
    values["grid"] = list(values["grid"])
    return values
