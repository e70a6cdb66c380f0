"""Median inference latency of one .tflite model on the edge runtime, in a process of its own.

    python -m edge.latency --model model.tflite [--threads 1] [--warmup 5] [--runs 30] \
        [--image image.npy]

Loads the model with `edge.runtime.ModelRunner` (LiteRT), runs it once (cold start: load +
first inference), then `warmup` untimed and `runs` timed single-image inferences, and prints
one JSON object (median, p90, mean, min, cold start, the model's quantization). The Quantizer
calls it through `measure_in_fresh_process` once per variant: a model timed after others in the
same process ran slower (thread pools and caches left by the earlier ones:
docs/decisions/latency-rounds.md), so every variant gets a process of its own, as on the device.
On a device it times a pushed model as it will run there (`--threads 4` on a Raspberry Pi 4).
`cxr-edge bench` times a loaded model with the same `time_runs`, so "latency" means one thing
everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.runtime import ModelRunner

WARMUP, RUNS = 5, 30  # untimed, timed single-image inferences


def measure(model_path: str | os.PathLike, threads: int, warmup: int = WARMUP, runs: int = RUNS,
            image: np.ndarray | None = None) -> dict:
    """Times the model in this process (see the module docstring for why a fresh one)."""
    started = time.perf_counter()
    runner = ModelRunner(model_path, threads=threads)
    if image is None:
        image = gradient_input(runner.input_size)
    runner.run(image)
    cold_ms = (time.perf_counter() - started) * 1000
    timings = time_runs(runner, image, warmup, runs)
    return {
        "model": str(model_path),
        "runtime": runner.runtime,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "input_size": runner.input_size,
        "warmup": warmup,
        **summarize(timings),
        "load_and_first_ms": round(cold_ms, 2),
        "quantization": runner.quantization()["scheme"],
        "load_average_1min": round(os.getloadavg()[0], 2),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "pid": os.getpid(),
    }


def gradient_input(size: int) -> np.ndarray:
    """A model input that stands in for an image: latency does not depend on the content."""
    return np.linspace(0, 255, size * size, dtype=np.float32).reshape(size, size, 1)


def time_runs(runner: ModelRunner, image: np.ndarray, warmup: int = WARMUP,
              runs: int = RUNS) -> list[float]:
    """Milliseconds of each of `runs` (at least 1) timed inferences after `warmup` untimed ones."""
    for _ in range(warmup):
        runner.run(image)
    timings = []
    for _ in range(max(1, runs)):
        tick = time.perf_counter()
        runner.run(image)
        timings.append((time.perf_counter() - tick) * 1000)
    return timings


def summarize(timings: list[float]) -> dict:
    return {
        "runs": len(timings),
        "median_ms": round(statistics.median(timings), 4),
        "p90_ms": round(float(np.percentile(timings, 90)), 4),
        "mean_ms": round(statistics.fmean(timings), 4),
        "min_ms": round(min(timings), 4),
    }


def measure_in_fresh_process(model_path: str | os.PathLike, threads: int, warmup: int = WARMUP,
                             runs: int = RUNS, image: np.ndarray | None = None,
                             python: str | None = None, timeout: float = 600) -> dict:
    """`measure` in a new interpreter (this one's unless `python` is given); returns its JSON."""
    root = str(Path(__file__).resolve().parent.parent)  # so `-m edge.latency` resolves here
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="cxr_latency_") as work:
        command = [python or sys.executable, "-m", "edge.latency", "--model", str(model_path),
                   "--threads", str(threads), "--warmup", str(warmup), "--runs", str(runs)]
        if image is not None:
            image_path = os.path.join(work, "image.npy")
            np.save(image_path, np.asarray(image, np.float32))
            command += ["--image", image_path]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"timing {model_path} exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.latency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .tflite file")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (1)")
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help=f"untimed runs first ({WARMUP})")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed runs ({RUNS})")
    parser.add_argument("--image", help=".npy float32 [size, size, 1], 0..255 (a gradient)")
    args = parser.parse_args(argv)
    image = np.load(args.image) if args.image else None
    result = measure(args.model, args.threads, args.warmup, args.runs, image)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
