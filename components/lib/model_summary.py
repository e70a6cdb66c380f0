"""One model kind's outcome in one run: gates, per-class F1, calibration, shipped variant.

Written by each kind's Quantizer (it sees the model, its blessing and, here, its evaluation) as
`model_summary.json` in its output, so the run report can put every kind side by side without
guessing which Evaluator output belongs to which model. `read_model_summary` is the reader.
"""

from __future__ import annotations

import dataclasses
import json
import os

from components.lib import storage
from components.lib.evaluation import GateConfig, evaluation_summary, gate_outcomes
from trainer.summary_file import read_training_summary

MODEL_SUMMARY_FILENAME = "model_summary.json"


@dataclasses.dataclass
class ModelSummary:
    model_kind: str
    blessed: bool | None
    gates: list[dict]  # GateOutcome.as_dict() of each Evaluator gate
    evaluation: dict | None  # evaluation_summary(): macro F1, recall, per class, calibration
    selected_variant: str | None = None
    selected_size_bytes: int | None = None
    selected_latency_ms: float | None = None
    note: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def model_kind(serving_model_dir: str) -> str:
    """The kind the Trainer built (training_summary.json's config), or "unknown"."""
    summary = read_training_summary(serving_model_dir) or {}
    return (summary.get("config") or {}).get("model", "unknown")


def summarize(kind: str, blessed: bool | None, evaluation_uri: str | None,
              gates: GateConfig, variants: dict | None, note: str = "") -> ModelSummary:
    summary = ModelSummary(
        model_kind=kind,
        blessed=blessed,
        gates=[o.as_dict() for o in gate_outcomes(evaluation_uri, gates)] if evaluation_uri
        else [],
        evaluation=evaluation_summary(evaluation_uri, gates) if evaluation_uri else None,
        note=note,
    )
    selected = (variants or {}).get("selected")
    for row in (variants or {}).get("variants", []):
        if row.get("variant") == selected:
            summary.selected_variant = selected
            summary.selected_size_bytes = row.get("size_bytes")
            summary.selected_latency_ms = row.get("latency_ms")
    return summary


def write_model_summary(out_dir: str, summary: ModelSummary) -> str:
    return storage.write_text(os.path.join(out_dir, MODEL_SUMMARY_FILENAME), summary.to_json())


def read_model_summary(directory: str) -> ModelSummary | None:
    """The summary in a Quantizer output directory, or None when it has none."""
    values = storage.read_json(os.path.join(directory, MODEL_SUMMARY_FILENAME))
    return None if values is None else ModelSummary(**values)
