"""Edge latency, model size and macro-F1 loss per TFLite variant, against the SavedModel.

Every variant of every model is timed by `latency_worker.py` through the edge runner (LiteRT)
in the edge interpreter, the SavedModel by the same worker under TensorFlow, each in a fresh
process, at 1, 2 and 4 threads, on the same preprocessed test images. Macro F1 of each runtime is
computed on the same images; the loss is the SavedModel's macro F1 minus the variant's,
in points (×100).
"""

import os

import numpy as np

from benchmarks.common import BENCH_DIR, mb, pipeline_python, run_json, summarize_ms, tree_bytes
from trainer import metrics

INT8_RATIO_GOAL = 0.5  # int8 latency ≤ 0.5 × float32 (EfficientNet-Lite0: 0.54 on a Pixel 4)
INT8_ATTENTION_SIZE_GOAL_MB = 5.5
F1_LOSS_GOAL_POINTS = 0.5
WORKER = str(BENCH_DIR / "latency_worker.py")


def measure(bench_models, images: dict, edge_python: str, threads=(1, 2, 4), passes: int = 1,
            warmup: int = 5, rounds: int = 5) -> dict:
    """rounds: every model is timed once per round, the rounds interleaved; a row keeps its
    fastest round's timing (load on this shared machine only adds time: in one run a single
    process timed float16 25% slower than float32, their compute being the same)."""
    labels = np.load(images["labels"])
    first = next(iter(bench_models.models.values()))
    num_classes = len(first.training_summary["config"]["class_names"])
    jobs = []  # (kind, variant, threads, python, backend, path, size_bytes)
    for thread_count in threads:
        for kind, model in bench_models.models.items():
            for variant in ("float32", "float16", "dynamic", "int8"):
                path = model.tflite(variant)
                if path and os.path.isfile(path):
                    jobs.append((kind, variant, thread_count, edge_python, "tflite", path,
                                 os.path.getsize(path)))
        for kind, model in bench_models.models.items():
            jobs.append((kind, "savedmodel", thread_count, pipeline_python(), "savedmodel",
                         model.saved_model_dir, tree_bytes(model.saved_model_dir)))
    timed: dict[tuple, list[dict]] = {}
    for round_index in range(rounds):
        print(f"bench: demo-size latency, round {round_index + 1}/{rounds}, {len(jobs)} "
              "model × thread runs", flush=True)
        for kind, variant, thread_count, python, backend, path, size_bytes in jobs:
            # One fresh process per model, as on a device: no thread pools or caches shared with
            # models timed before it (docs/decisions/latency-rounds.md).
            result = _worker(python, backend, thread_count, images, [path], passes, warmup)
            row = _row(kind, variant, thread_count, result["runtime"], result["results"][0],
                       labels, num_classes, size_bytes)
            timed.setdefault((kind, variant, thread_count), []).append(row)
    rows = []
    for measured in timed.values():
        best = min(measured, key=lambda row: row["median_ms"])
        rows.append(best | {"round_medians_ms": [row["median_ms"] for row in measured]})
    _add_comparisons(rows)
    return {
        "selection_check": _selection_check(bench_models, rows),
        "images": int(len(labels)),
        "passes": passes,
        "rounds": rounds,
        "warmup": warmup,
        "rows": rows,
        "int8_vs_float32": _int8_ratios(rows),
        "sizes": _sizes(bench_models),
        "goals": {"int8_over_float32_latency_max": INT8_RATIO_GOAL,
                  "int8_attention_size_max_mb": INT8_ATTENTION_SIZE_GOAL_MB,
                  "macro_f1_loss_max_points": F1_LOSS_GOAL_POINTS},
    }


def _worker(python, backend, threads, images, models, passes, warmup) -> dict:
    command = [python, WORKER, "--backend", backend, "--threads", str(threads),
               "--images", images["images"], "--passes", str(passes), "--warmup", str(warmup)]
    for model in models:
        command += ["--model", model]
    return run_json(command)


def _row(kind, variant, threads, runtime, result, labels, num_classes, size_bytes) -> dict:
    predictions = np.asarray(result["predictions"])
    return {
        "model": kind,
        "variant": variant,
        "threads": threads,
        "runtime": runtime,
        **summarize_ms(result["latencies_ms"]),
        "load_and_first_ms": result["load_and_first_ms"],
        "macro_f1": round(metrics.macro_f1(labels, predictions, num_classes), 4),
        "size_bytes": size_bytes,
        "size_mb": mb(size_bytes),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _add_comparisons(rows) -> None:
    """Each row's latency and macro F1 against the SavedModel (same model, same threads)."""
    saved = {(r["model"], r["threads"]): r for r in rows if r["variant"] == "savedmodel"}
    for row in rows:
        reference = saved.get((row["model"], row["threads"]))
        if reference is None:
            continue
        row["latency_vs_savedmodel"] = round(row["median_ms"] / reference["median_ms"], 3)
        loss = round(100 * (reference["macro_f1"] - row["macro_f1"]), 2)
        row["macro_f1_loss_points"] = loss
        if row["variant"] != "savedmodel":
            row["f1_goal_met"] = loss <= F1_LOSS_GOAL_POINTS


def _int8_ratios(rows) -> list[dict]:
    by_key = {(r["model"], r["variant"], r["threads"]): r for r in rows}
    ratios = []
    for (kind, variant, threads), row in sorted(by_key.items()):
        if variant != "int8" or (kind, "float32", threads) not in by_key:
            continue
        float32 = by_key[(kind, "float32", threads)]
        ratio = round(row["median_ms"] / float32["median_ms"], 3)
        ratio_p90 = round(row["p90_ms"] / float32["p90_ms"], 3)
        ratios.append({"model": kind, "threads": threads, "int8_median_ms": row["median_ms"],
                       "float32_median_ms": float32["median_ms"], "ratio_median": ratio,
                       "ratio_p90": ratio_p90, "goal_met": ratio <= INT8_RATIO_GOAL})
    return ratios


def _selection_check(bench_models, rows) -> list[dict]:
    """Did the Quantizer ship the fastest passing variant? Judged on this benchmark's own
    timing (all test images, fresh process) at the Quantizer's thread count, with its margin."""
    checks = []
    for kind, model in bench_models.models.items():
        table = model.variants
        selection = table.get("selection") or {}
        threads = selection.get("latency_threads", 1)
        margin = selection.get("latency_margin", 0.0)
        passed = {row["variant"] for row in table.get("variants", []) if row.get("passed")}
        timed = {r["variant"]: r["median_ms"] for r in rows
                 if r["model"] == kind and r["threads"] == threads and r["variant"] in passed}
        selected = table.get("selected")
        if not timed or selected not in timed:
            checks.append({"model": kind, "selected": selected, "goal_met": None,
                           "note": "no selected variant timed at the Quantizer's thread count"})
            continue
        fastest = min(timed, key=timed.get)
        checks.append({
            "model": kind, "selected": selected, "objective": selection.get("objective"),
            "threads": threads, "margin": margin, "fastest_passing": fastest,
            "selected_ms": timed[selected], "fastest_ms": timed[fastest],
            "quantizer_latencies_ms": {row["variant"]: row.get("latency_ms")
                                       for row in table.get("variants", [])},
            "reason": selection.get("reason"),
            "goal_met": timed[selected] <= timed[fastest] * (1 + margin) + 1e-9,
        })
    return checks


def _sizes(bench_models) -> list[dict]:
    """Per variant: file size, and the Quantizer's own gate numbers (its full test split)."""
    sizes = []
    for kind, model in bench_models.models.items():
        reference = model.variants.get("reference", {})
        for row in model.variants.get("variants", []):
            path = model.tflite(row["variant"])
            if not path or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            entry = {"model": kind, "variant": row["variant"], "size_bytes": size,
                     "size_mb": mb(size), "source": model.variants_source,
                     "quantizer_macro_f1": row.get("macro_f1"),
                     "quantizer_reference_macro_f1": reference.get("macro_f1"),
                     "quantizer_f1_drop_points": None if row.get("f1_drop") is None
                     else round(100 * row["f1_drop"], 2),
                     "quantizer_test_examples": model.variants.get("test_examples"),
                     "selected": model.variants.get("selected") == row["variant"]}
            if kind == "attention" and row["variant"] == "int8":
                entry["goal_met"] = entry["size_mb"] <= INT8_ATTENTION_SIZE_GOAL_MB
            sizes.append(entry)
        saved = tree_bytes(model.saved_model_dir)
        sizes.append({"model": kind, "variant": "savedmodel", "size_bytes": saved,
                      "size_mb": mb(saved), "source": "Trainer SavedModel directory"})
    return sizes
