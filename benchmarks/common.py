"""Small helpers the benchmark modules share: paths, interpreters, subprocess JSON, statistics."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "benchmarks"


def pipeline_python() -> str:
    """The interpreter of the pipeline venv: the one running the benchmark."""
    return sys.executable


def edge_python(explicit: str | None = None) -> tuple[str, str]:
    """(python, where) for edge-side measurements: --edge-python, else .venv-edge, else this one.

    The edge venv has no TensorFlow, so what it measures is what a device install would see."""
    if explicit:
        return explicit, f"{explicit} (given with --edge-python)"
    venv = REPO_ROOT / ".venv-edge" / "bin" / "python"
    if venv.exists():
        return str(venv), ".venv-edge (no TensorFlow)"
    return sys.executable, "the pipeline interpreter (no .venv-edge found; TensorFlow installed)"


def subprocess_env(extra: dict | None = None) -> dict:
    """The environment for worker processes: the repo importable, Keras 2, quiet TF logs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("TF_USE_LEGACY_KERAS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra or {})
    return env


def run_json(command: list[str], env: dict | None = None, timeout: float | None = None) -> dict:
    """Runs a worker that prints one JSON object last on stdout; returns it (raises on failure)."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT,
                          env=env or subprocess_env(), timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])}... exited {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    return last_json_object(done.stdout)


def last_json_object(text: str) -> dict:
    """The last top-level JSON object in text (workers may print other lines first)."""
    decoder = json.JSONDecoder()
    start = text.rfind("\n{")
    candidates = [start + 1] if start >= 0 else []
    candidates.append(text.find("{"))
    for index in candidates:
        if index < 0:
            continue
        try:
            value, _ = decoder.raw_decode(text[index:])
            return value
        except json.JSONDecodeError:
            continue
    raise ValueError(f"no JSON object in the worker's output: {text[-500:]!r}")


def summarize_ms(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {
        "n": int(values.size),
        "median_ms": round(float(np.median(values)), 3),
        "p90_ms": round(float(np.percentile(values, 90)), 3),
        "mean_ms": round(float(values.mean()), 3),
    }


def tree_bytes(path: str | os.PathLike) -> int:
    """Bytes of the regular files under path (symlinks not followed, hard links once)."""
    total, seen = 0, set()
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if not os.path.isfile(os.path.join(root, name)) or os.path.islink(
                    os.path.join(root, name)):
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
    return total


def mb(size_bytes: float) -> float:
    """Megabytes (10^6 bytes), the unit of the size goals."""
    return round(size_bytes / 1e6, 2)
