"""Training throughput: the TFX Trainer against a plain Keras `fit` of the same model and data.

The Trainer's side comes from what it recorded (`training_summary.json`: per-epoch cumulative
seconds, epochs, train examples) and from MLMD (the Trainer execution's wall time: wheel build,
decoding the splits, fit, per-epoch evaluation and BatchNorm recalibration, export). The plain
side is `train_worker.py` in a fresh process. Steady-state epochs (2 onwards) leave out graph
tracing on both sides. The goal compares the fit steps: a Trainer epoch's fit (recorded per
epoch as `fit_seconds`, before its BatchNorm recalibration and eval scoring, which the plain fit
does not do) images/s ≥ 0.9 × plain fit images/s; the whole Trainer epoch's ratio is reported
beside it.
"""

import os
import statistics

from benchmarks.common import BENCH_DIR, pipeline_python, run_json
from trainer.summary_file import SUMMARY_FILENAME

THROUGHPUT_GOAL = 0.9
WORKER = str(BENCH_DIR / "train_worker.py")
# The classifiers: the Siamese model trains on P×K triplet batches, which a plain `fit` of a
# probabilities head does not reproduce, so it has no plain-fit counterpart here.
KINDS = ("attention", "baseline")


def measure(bench_models, fit_epochs: int = 3) -> list[dict]:
    results = []
    for kind, model in bench_models.models.items():
        if kind not in KINDS:
            continue
        summary = model.training_summary
        trainer = _trainer_side(summary, model.trainer_wall_s)
        print(f"bench: plain Keras fit of {kind}, {fit_epochs} epochs", flush=True)
        plain = run_json([pipeline_python(), WORKER, "--examples", bench_models.examples_uri,
                          "--summary", os.path.join(model.saved_model_dir, SUMMARY_FILENAME),
                          "--epochs", str(fit_epochs)])
        images = plain["train_examples"]
        steady = plain["epoch_seconds"][1:] or plain["epoch_seconds"]
        plain_side = {
            "epochs": plain["epochs"],
            "first_epoch_s": plain["epoch_seconds"][0],
            "steady_epoch_s": round(statistics.median(steady), 2),
            "steady_images_per_s": round(images / statistics.median(steady), 1),
            "whole_fit_images_per_s": round(images * plain["epochs"] / plain["fit_seconds"], 1),
            "load_seconds": plain["load_seconds"],
        }
        row = {"model": kind, "train_examples": images, "batch_size": plain["batch_size"],
               "image_size": plain["image_size"], "trainer": trainer, "plain_fit": plain_side}
        if trainer.get("steady_images_per_s"):
            ratio = trainer["steady_images_per_s"] / plain_side["steady_images_per_s"]
            row["ratio_steady"] = round(ratio, 4)
        if trainer.get("steady_fit_images_per_s"):  # like with like: the goal's ratio
            ratio = trainer["steady_fit_images_per_s"] / plain_side["steady_images_per_s"]
            row["ratio_fit_steps"] = round(ratio, 4)
            row["goal_met"] = ratio >= THROUGHPUT_GOAL
        if trainer.get("end_to_end_images_per_s"):
            row["ratio_end_to_end_vs_plain_whole_fit"] = round(
                trainer["end_to_end_images_per_s"] / plain_side["whole_fit_images_per_s"], 3)
        results.append(row)
    return results


def _trainer_side(summary: dict, wall_s: float | None) -> dict:
    images = summary["train_examples"]
    epochs = summary["epochs"]
    cumulative = [entry["seconds"] for entry in summary.get("history", [])]
    deltas = [b - a for a, b in zip(cumulative, cumulative[1:], strict=False)]
    side = {
        "epochs": epochs,
        "train_seconds": summary["train_seconds"],
        "train_loop_images_per_s": round(images * epochs / summary["train_seconds"], 1),
        "first_epoch_s": cumulative[0] if cumulative else None,
        "execution_wall_s": wall_s,
        "recorded_in": "training_summary.json (history) and MLMD (execution times)",
    }
    if deltas:
        side["steady_epoch_s"] = round(statistics.median(deltas), 2)
        side["steady_images_per_s"] = round(images / statistics.median(deltas), 1)
    # The fit steps alone (epoch begin → epoch end, before the BatchNorm pass and eval
    # scoring): what the plain fit's epoch times measure.
    fit = [entry["fit_seconds"] for entry in summary.get("history", []) if "fit_seconds" in entry]
    if fit:
        steady_fit = statistics.median(fit[1:] or fit)
        side["steady_fit_s"] = round(steady_fit, 2)
        side["steady_fit_images_per_s"] = round(images / steady_fit, 1)
    if wall_s:
        side["end_to_end_images_per_s"] = round(images * epochs / wall_s, 1)
    return side


