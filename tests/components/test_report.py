"""Run report: tolerates missing artifacts, says when data are synthetic, renders in Chromium."""

import json
import os

import numpy as np
import pytest

from components.quantizer import QuantizerConfig, quantize_and_select
from components.report import REPORT_FILENAME, ReportInputs, write_report
from tests.components import evalkit


def test_report_with_no_artifacts_says_what_is_missing(tmp_path):
    path = write_report(ReportInputs(), str(tmp_path))
    page = open(path, encoding="utf-8").read()
    assert "no gate results in this run" in page
    assert "no data summary in this run" in page
    assert "no training_summary.json" in page
    assert "SYNTHETIC DATA" not in page


@pytest.mark.slow
def test_full_report_renders_in_headless_chromium(tmp_path):
    examples = evalkit.write_examples(
        str(tmp_path / "examples"), {"train": 12, "eval": 2, "test": 4}
    )
    model_dir = evalkit.train_tiny_model(examples, str(tmp_path / "model"), epochs=3)
    _add_trainer_style_history(model_dir)
    quantized = str(tmp_path / "quantized")
    quantize_and_select(
        model_dir, examples, quantized, QuantizerConfig(variants=("float32",), latency_runs=1,
                                                        fail_if_none_pass=False)
    )
    ingest, quarantine, model_run = (str(tmp_path / name) for name in
                                     ("ingest", "quarantine", "model_run"))
    _write_ingest_artifacts(ingest, quarantine)
    _write_embedding_plots(model_run)
    out = str(tmp_path / "report")
    path = write_report(
        ReportInputs(examples_uri=examples, ingest_summary_uri=ingest, quarantine_uri=quarantine,
                     serving_model_dir=model_dir, model_run_uri=model_run,
                     quantized_model_uri=quantized, synthetic_data=True, pipeline_run_id="run-7"),
        out,
    )
    assert path == os.path.join(out, REPORT_FILENAME)
    page = open(path, encoding="utf-8").read()
    assert "SYNTHETIC DATA" in page and "run-7" in page
    assert "empty_file" in page and "2 duplicate groups" in page
    for png in ("training_curves.png", "attention_overlays.png"):
        assert os.path.getsize(os.path.join(out, png)) > 1000
    if evalkit.chromium_binary() is None:
        pytest.skip("chromium is not on PATH (Debian package: chromium)")
    evalkit.assert_renders_cleanly(
        path, str(tmp_path),
        ("SYNTHETIC DATA", "Quarantined files", "Siamese embeddings", "Embeddings before training",
         "Attention overlays", "TFLite variants", "eval_macro_f1"),
    )


def _add_trainer_style_history(model_dir: str) -> None:
    # The trainer writes history as a list of per-epoch dicts; the report must read that form.
    path = os.path.join(model_dir, "training_summary.json")
    with open(path) as handle:
        summary = json.load(handle)
    summary["history"] = [
        {"epoch": i + 1, "seconds": 1.0 * i, "loss": loss, "eval_macro_f1": 0.3 + 0.1 * i}
        for i, loss in enumerate(summary["history"]["loss"])
    ]
    summary["best_eval_macro_f1"] = summary["history"][-1]["eval_macro_f1"]
    with open(path, "w") as handle:
        json.dump(summary, handle)


def _write_ingest_artifacts(ingest: str, quarantine: str) -> None:
    os.makedirs(ingest)
    os.makedirs(quarantine)
    counts = {split: dict.fromkeys(evalkit.CLASS_NAMES, n)
              for split, n in (("train", 12), ("eval", 2), ("test", 4))}
    summary = {"class_names": list(evalkit.CLASS_NAMES), "files": 73, "examples": 72,
               "counts": counts, "quarantined": 1, "quarantined_by_reason": {"empty_file": 1},
               "duplicates": {"groups": 2, "extra_copies": 3, "members": []}}
    with open(os.path.join(ingest, "summary.json"), "w") as handle:
        json.dump(summary, handle)
    entry = {"path": "COVID/broken.png", "reason": "empty_file", "message": "0 bytes"}
    with open(os.path.join(quarantine, "quarantine.json"), "w") as handle:
        json.dump({"count": 1, "by_reason": {"empty_file": 1}, "files": [entry]}, handle)


def _write_embedding_plots(model_run: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(model_run)
    rng = np.random.default_rng(0)
    for stage in ("before", "after"):
        figure, axis = plt.subplots(figsize=(3, 3))
        axis.scatter(*rng.normal(size=(2, 40)))
        figure.savefig(os.path.join(model_run, f"embeddings_{stage}.png"))
        plt.close(figure)
