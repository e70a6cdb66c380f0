"""Run report: tolerates missing artifacts, says when data are synthetic, renders in Chromium."""

import os

import numpy as np
import pytest

from components.image_example_gen import executor as example_gen_executor
from components.lib import storage
from components.quantizer import QuantizerConfig, quantize_and_select
from components.report import REPORT_FILENAME, ReportInputs, write_report
from tests.components import evalkit
from trainer.summary_file import read_training_summary, write_training_summary


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
    assert "Acquisition shift: what `ok` promises" in page and "source_resolution@4" in page
    for png in ("training_curves.png", "attention_overlays.png", "shift_battery.png"):
        assert os.path.getsize(os.path.join(out, png)) > 1000
    if evalkit.chromium_binary() is None:
        pytest.skip("chromium is not on PATH (Debian package: chromium)")
    evalkit.assert_renders_cleanly(
        path, str(tmp_path),
        ("SYNTHETIC DATA", "Quarantined files", "Siamese embeddings", "Embeddings before training",
         "Attention overlays", "TFLite variants", "eval_macro_f1", "Acquisition shift"),
    )


def _add_trainer_style_history(model_dir: str) -> None:
    # The trainer writes history as a list of per-epoch dicts; the report must read that form.
    summary = read_training_summary(model_dir)
    summary["history"] = [
        {"epoch": i + 1, "seconds": 1.0 * i, "loss": loss, "eval_macro_f1": 0.3 + 0.1 * i}
        for i, loss in enumerate(summary["history"]["loss"])
    ]
    summary["best_eval_macro_f1"] = summary["history"][-1]["eval_macro_f1"]
    write_training_summary(model_dir, summary)


def _write_ingest_artifacts(ingest: str, quarantine: str) -> None:
    """What the ExampleGen writes: its summary (the shape build_summary makes) and, through its
    own writer, the quarantine report."""
    counts = {split: dict.fromkeys(evalkit.CLASS_NAMES, n)
              for split, n in (("train", 12), ("eval", 2), ("test", 4))}
    summary = {"class_names": list(evalkit.CLASS_NAMES), "files": 73, "examples": 72,
               "counts": counts, "quarantined": 1, "quarantined_by_reason": {"empty_file": 1},
               "duplicates": {"groups": 2, "extra_copies": 3, "members": []}}
    storage.write_json(os.path.join(ingest, example_gen_executor.SUMMARY_FILE), summary)
    assert example_gen_executor.read_ingest_summary(ingest) == summary
    example_gen_executor.write_quarantine_report(
        quarantine, [{"path": "COVID/broken.png", "reason": "empty_file", "message": "0 bytes"}])


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
