"""Edge latency at the deployment resolution (224 px): per variant and thread count, file size,
int8/float32 ratio, cold start, and what the Quantizer's selection rule would ship.

No trained 224 px model exists here (training EfficientNetB0 at 224 px on 2 CPU cores takes
hours), so the models are the real architectures built by `trainer.models.build_model` at
224 px with untrained weights, exported by `trainer.export` and converted by
`components.quantizer.convert` (int8 calibrated on demo phantoms rendered at 224 px). Latency and
file size do not depend on the weights' values; macro F1 does, so this topic has no F1 rows
(the demo-size topic, edge_latency.py, has them, on trained models).

Each (model, variant, thread count) is timed by `python -m edge.latency` — the same worker the
Quantizer's selection uses — in a fresh process of the edge interpreter: `warmup` untimed runs,
then the median of `runs`; `rounds` interleaved rounds (alternating order); the reported median
is the fastest round's (other load on the machine only adds time), with every round's median
kept beside it. Cold start = model load + first inference in that fresh process (median over
rounds).

The int8/float32 ratio is paired: within a round each model's int8 process runs right after its
float32 one, the round's ratio is int8's median over float32's, and the goal is judged on the
median of those per-round ratios: the machine's speed drifts over tens of seconds, and a ratio of
two fastest-round medians can pair a fast-phase float32 with a slow-phase int8
(docs/decisions/latency-rounds.md).
"""

import hashlib
import os

import numpy as np

from benchmarks.common import REPO_ROOT, mb
from components.quantizer import select_variant
from edge.latency import measure_in_fresh_process
from trainer.constants import LATENCY_MARGIN

DEPLOY_KINDS = ("attention", "baseline")
# Measurement order within a round: int8 right after float32, so their ratio is paired in time.
VARIANTS = ("float32", "int8", "float16", "dynamic")
INT8_RATIO_GOAL = 0.5  # int8 median latency ≤ 0.5 × float32 at 224 px, 1 thread
# The sources whose change makes cached conversions stale: the model code, the export, and the
# Quantizer's conversion functions (components/quantizer/conversion.py, not the whole package).
SOURCES = ("trainer/models/backbone.py", "trainer/models/baseline.py",
           "trainer/models/attention.py", "trainer/export.py",
           "trainer/config.py")  # TrainConfig's defaults shape the models
CONVERSION = ("convert", "convert_calibrations", "_convert_saved_model",
              "_convert_int8_keeping_float_layers", "_calibrate", "_in_float_layer")


def measure(work_dir: str, edge_python: str, size: int = 224, threads=(1, 2, 4),
            rounds: int = 5, warmup: int = 5, runs: int = 30) -> dict:
    files = prepare_models(os.path.join(work_dir, f"deploy-{size}px"), size)
    image = _phantom(size, "Normal", 0)
    cores = len(os.sched_getaffinity(0))
    results = {key: [] for key in ((kind, variant, t) for (kind, variant) in files
                                   for t in threads)}
    for round_index in range(rounds):
        order = list(files.items()) if round_index % 2 == 0 else list(files.items())[::-1]
        for thread_count in threads:
            print(f"bench: {size} px latency, round {round_index + 1}/{rounds}, "
                  f"{thread_count} thread(s), {len(order)} models", flush=True)
            for (kind, variant), path in order:
                result = measure_in_fresh_process(path, thread_count, warmup, runs, image,
                                                  python=edge_python)
                results[(kind, variant, thread_count)].append(result)
    rows = [_row(kind, variant, t, files[(kind, variant)], measured, cores)
            for (kind, variant, t), measured in results.items()]
    return {
        "image_size": size,
        "models": "untrained weights (build_model + trainer.export + quantizer.convert)",
        "threads": list(threads),
        "cores": cores,
        "rounds": rounds,
        "warmup": warmup,
        "runs": runs,
        "worker": "python -m edge.latency (fresh edge-interpreter process per measurement)",
        "rows": rows,
        "int8_vs_float32": _ratios(rows),
        "selection": _selections(rows, threads),
        "goal": {"int8_over_float32_latency_max": INT8_RATIO_GOAL, "threads": 1},
    }


def prepare_models(out_dir: str, size: int) -> dict:
    """(kind, variant) -> .tflite path; rebuilt only when the model or converter code changed."""
    import trainer  # noqa: F401  (Keras 2 before TensorFlow)
    from components import quantizer
    from trainer.config import TrainConfig
    from trainer.export import export_saved_model
    from trainer.models import build_model

    stamp = _source_stamp(size)
    files = {}
    for kind in DEPLOY_KINDS:
        kind_dir = os.path.join(out_dir, kind)
        stamp_path = os.path.join(kind_dir, "source.txt")
        paths = {variant: os.path.join(kind_dir, f"{variant}.tflite") for variant in VARIANTS}
        fresh = os.path.isfile(stamp_path) and open(stamp_path).read() == stamp and all(
            os.path.isfile(path) for path in paths.values())
        if not fresh:
            print(f"bench: building and converting the {kind} model at {size} px", flush=True)
            os.makedirs(kind_dir, exist_ok=True)
            saved = os.path.join(kind_dir, "saved_model")
            export_saved_model(build_model(TrainConfig(model=kind, image_size=size)), size,
                               saved)
            calibration = _calibration_split(size)
            for variant, path in paths.items():
                with open(path, "wb") as handle:
                    handle.write(quantizer.convert(variant, saved, calibration,
                                                   quantizer.QuantizerConfig()))
            with open(stamp_path, "w") as handle:
                handle.write(stamp)
        files.update({(kind, variant): path for variant, path in paths.items()})
    return files


def _row(kind, variant, threads, path, measured: list[dict], cores: int) -> dict:
    best = min(measured, key=lambda result: result["median_ms"])
    size_bytes = os.path.getsize(path)
    return {
        "model": kind,
        "variant": variant,
        "threads": threads,
        "oversubscribed": threads > cores,
        "quantization": best["quantization"],
        "median_ms": best["median_ms"],
        "p90_ms": best["p90_ms"],
        "round_medians_ms": [result["median_ms"] for result in measured],
        "cold_start_ms": round(float(np.median([r["load_and_first_ms"] for r in measured])), 1),
        "load_average_1min": [result["load_average_1min"] for result in measured],
        "runtime": best["runtime"],
        "tensorflow_imported": any(result["tensorflow_imported"] for result in measured),
        "size_bytes": size_bytes,
        "size_mb": mb(size_bytes),
    }


def _ratios(rows) -> list[dict]:
    """int8 vs float32 per model and thread count: the ratio of the fastest-round medians and
    the paired one (median over rounds of int8's round median / float32's; module docstring)."""
    by_key = {(r["model"], r["variant"], r["threads"]): r for r in rows}
    ratios = []
    for (kind, variant, threads), row in sorted(by_key.items()):
        float32 = by_key.get((kind, "float32", threads))
        if variant != "int8" or float32 is None:
            continue
        rounds = zip(row["round_medians_ms"], float32["round_medians_ms"], strict=True)
        per_round = [round(int8_ms / float32_ms, 3) for int8_ms, float32_ms in rounds]
        paired = round(float(np.median(per_round)), 3)
        ratios.append({"model": kind, "threads": threads, "int8_median_ms": row["median_ms"],
                       "float32_median_ms": float32["median_ms"],
                       "ratio_median": round(row["median_ms"] / float32["median_ms"], 3),
                       "ratio_paired": paired, "round_ratios": per_round,
                       "oversubscribed": row["oversubscribed"],
                       "goal_met": paired <= INT8_RATIO_GOAL if threads == 1 else None})
    return ratios


def _selections(rows, threads) -> list[dict]:
    """What `components.quantizer.select_variant` ships per model and thread count, if every
    variant passed the F1 gate (which the 64 px topic checks on trained models)."""
    out = []
    for kind in DEPLOY_KINDS:
        for thread_count in threads:
            candidates = [{"variant": r["variant"], "latency_ms": r["median_ms"],
                           "size_bytes": r["size_bytes"], "passed": True}
                          for r in rows if r["model"] == kind and r["threads"] == thread_count]
            if candidates:
                choice = select_variant(candidates, "fastest", LATENCY_MARGIN, None,
                                        thread_count)
                out.append({"model": kind, "threads": thread_count, **choice})
    return out


def _calibration_split(size: int, per_class: int = 4):
    from edge import spec
    from trainer.split_reader import Split

    images = [_phantom(size, name, index) for name in spec.CLASS_NAMES
              for index in range(per_class)]
    return Split(np.stack(images), np.zeros(len(images), np.int64), 0)


def _phantom(size: int, class_name: str, index: int) -> np.ndarray:
    from components.lib import demo_data

    return demo_data.render_phantom(class_name, index, size=size).astype(np.float32)[..., None]


def _source_stamp(size: int) -> str:
    import inspect

    from components import quantizer

    # The converter's settings: QuantizerConfig's defaults (float layers, calibration size).
    digest = hashlib.sha256(f"size={size} {quantizer.QuantizerConfig()!r}".encode())
    for source in SOURCES:
        digest.update((REPO_ROOT / source).read_bytes())
    for name in CONVERSION:
        digest.update(inspect.getsource(getattr(quantizer.conversion, name)).encode())
    return digest.hexdigest()
