"""Edge runner footprint: installed size (edge vs pipeline), cold start, peak RSS on 100 images.

Sizes: the dependency closure of setup.py's `edge` extra in the edge interpreter's environment
and of the `pipeline` extra in the pipeline's (bytes each distribution installs), and the whole
venv folders. Cold start: wall time of `cxr-edge classify` on one image in a fresh process
(interpreter start, imports, model load and verification, one classification), best and median
of several. Peak RSS: the child's peak resident set (VmHWM, read inside it by
edge_cli_probe.py, so the benchmark's own size cannot leak in) while `cxr-edge classify`
classifies 100 images. Also the `edge` closure with the `serve` extra added (`cxr-edge serve`).
"""

import ast
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.common import (
    BENCH_DIR,
    REPO_ROOT,
    mb,
    pipeline_python,
    run_json,
    subprocess_env,
    tree_bytes,
)

WORKER = str(BENCH_DIR / "footprint_worker.py")
PROBE = str(BENCH_DIR / "edge_cli_probe.py")
EXTRA_LISTS = ("EDGE", "DICOM", "PIPELINE", "SERVE")


def measure(edge_python: str, model_paths: dict, png_dir: str, cold_runs: int = 3,
            rss_images: int = 100) -> dict:
    extras = setup_extras()
    edge = run_json([edge_python, WORKER, *extras["EDGE"]])
    pipeline = run_json([pipeline_python(), WORKER, *extras["PIPELINE"], *extras["EDGE"],
                         *extras["DICOM"]])
    same = os.path.realpath(edge["prefix"]) == os.path.realpath(sys.prefix)
    venvs = {"pipeline_venv": {"prefix": sys.prefix, "bytes": tree_bytes(sys.prefix)}}
    if not same:
        venvs["edge_venv"] = {"prefix": edge["prefix"], "bytes": tree_bytes(edge["prefix"])}
    for value in venvs.values():
        value["mb"] = mb(value["bytes"])
    pngs = sorted(os.path.join(png_dir, name) for name in os.listdir(png_dir))[:rss_images]
    batch_dir = os.path.join(os.path.dirname(png_dir), f"png-{len(pngs)}")
    _link_batch(pngs, batch_dir)
    runs = {}
    for label, path in model_paths.items():
        print(f"bench: edge cold start and peak RSS, {label}", flush=True)
        runs[label] = _cli_runs(edge_python, path, pngs[0], batch_dir, len(pngs), cold_runs,
                                os.path.dirname(png_dir))
    return {
        "edge_python": edge_python,
        "edge_is_separate_venv": not same,
        "edge_extra": _closure_summary(edge),
        "pipeline_extra": _closure_summary(pipeline),
        "edge_over_pipeline_install": round(edge["total_bytes"] / pipeline["total_bytes"], 4),
        "edge_with_serve": extra_closures(edge_python, extras),
        "venvs": venvs,
        "cli_runs": runs,
    }


def extra_closures(python: str, extras: dict | None = None) -> dict:
    """Installed bytes of the `edge` extra's closure, and with the `serve` extra added."""
    extras = extras or setup_extras()
    edge = run_json([python, WORKER, *extras["EDGE"]])
    served = run_json([python, WORKER, *extras["EDGE"], *extras["SERVE"]])
    added = sorted({d["name"] for d in served["distributions"]}
                   - {d["name"] for d in edge["distributions"]})
    return {"edge_mb": mb(edge["total_bytes"]), "edge_distributions": len(edge["distributions"]),
            "edge_serve_mb": mb(served["total_bytes"]),
            "edge_serve_distributions": len(served["distributions"]),
            "serve_adds_mb": mb(served["total_bytes"] - edge["total_bytes"]),
            "serve_adds": added, "missing": served["missing"]}


def setup_extras() -> dict:
    """The EDGE, DICOM, PIPELINE and SERVE requirement lists, read from setup.py (not restated)."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name) and node.targets[0].id in EXTRA_LISTS:
            found[node.targets[0].id] = ast.literal_eval(node.value)
    missing = set(EXTRA_LISTS) - set(found)
    if missing:
        raise ValueError(f"setup.py defines no {sorted(missing)} requirement list")
    return found


def _closure_summary(result: dict) -> dict:
    return {"prefix": result["prefix"], "requirements": result["requirements"],
            "distributions": len(result["distributions"]), "bytes": result["total_bytes"],
            "mb": mb(result["total_bytes"]), "missing": result["missing"],
            "largest": [f"{d['name']} {d['version']}: {mb(d['bytes'])} MB"
                        for d in result["distributions"][:5]]}


def _cli_runs(python: str, model: str, one_png: str, batch_dir: str, count: int,
              cold_runs: int, report_dir: str) -> dict:
    env = {k: v for k, v in subprocess_env().items() if k != "TF_USE_LEGACY_KERAS"}
    report = os.path.join(report_dir, "probe.json")
    base = [python, PROBE, report, "classify", "--model", model, "--format", "json",
            "--out", os.devnull, "--progress", "never"]
    colds = []
    for _ in range(cold_runs):
        seconds, probe = _timed(base + [one_png], env, report)
        colds.append(seconds * 1000)
    seconds, probe = _timed(base + [batch_dir], env, report)
    return {"model": model, "size_mb": mb(os.path.getsize(model) if os.path.isfile(model)
                                          else tree_bytes(model)),
            "cold_start_ms_best": round(min(colds), 1),
            "cold_start_ms_median": round(statistics.median(colds), 1),
            "cold_runs": cold_runs, "images": count,
            "peak_rss_mb": round(probe["vm_hwm_kib"] * 1024 / 1e6, 1),
            "tensorflow_imported": probe["tensorflow_imported"],
            "batch_wall_s": round(seconds, 2),
            "batch_images_per_s": round(count / seconds, 1)}


def _timed(command, env, report):
    """Wall seconds of a fresh process, and what the probe reported from inside it."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cxr-edge classify exited {done.returncode}: {done.stderr[-1500:]}")
    with open(report) as handle:
        return seconds, json.load(handle)


def _link_batch(pngs, batch_dir):
    os.makedirs(batch_dir, exist_ok=True)
    for path in pngs:
        target = os.path.join(batch_dir, os.path.basename(path))
        if not os.path.exists(target):
            os.link(path, target)
