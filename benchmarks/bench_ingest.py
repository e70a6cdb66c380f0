"""Ingest throughput of the ImageExampleGen: images/s single- vs multi-process (SYNTHETIC data).

Generates demo phantoms (default 1,000 images of 256 px), runs the executor's Beam pipeline
once on the in-memory DirectRunner and once in multi-processing mode, and prints JSON.
Not a test: the numbers depend on the machine.

    TF_USE_LEGACY_KERAS=1 python benchmarks/bench_ingest.py [--images 1000] [--size 256]
        [--workers 2] [--keep DIR]
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.lib import artifact_types, demo_data
from edge import spec


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args(argv)

    work = args.keep or tempfile.mkdtemp(prefix="bench_ingest_")
    try:
        data = os.path.join(work, "data")
        per_class = args.images // len(spec.CLASS_NAMES)
        started = time.perf_counter()
        demo_data.generate(data, per_class=per_class, size=args.size, seed=0)
        generate_s = time.perf_counter() - started
        images = per_class * len(spec.CLASS_NAMES)
        modes = {
            "single_process": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
            "multi_process": ["--direct_running_mode=multi_processing",
                              f"--direct_num_workers={args.workers}"],
        }
        results = {}
        for name, beam_args in modes.items():
            seconds, examples = _ingest(data, os.path.join(work, name), beam_args)
            results[name] = {"beam_args": beam_args, "seconds": round(seconds, 2),
                             "examples": examples, "images_per_s": round(images / seconds, 1)}
        print(json.dumps({
            "note": "synthetic demo phantoms; wall time includes Beam pipeline start-up",
            "images": images, "size_px": args.size, "generate_s": round(generate_s, 2),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), **results,
        }, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _ingest(input_base, out_dir, beam_args):
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from components.image_example_gen import executor

    outputs = {
        executor.EXAMPLES_KEY: standard_artifacts.Examples(),
        executor.QUARANTINE_KEY: artifact_types.QuarantineReport(),
        executor.SUMMARY_KEY: artifact_types.IngestSummary(),
    }
    for key, artifact in outputs.items():
        artifact.uri = os.path.join(out_dir, key)
        os.makedirs(artifact.uri, exist_ok=True)
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=beam_args, tmp_dir=os.path.join(out_dir, "tmp"))
    started = time.perf_counter()
    executor.Executor(context).Do({}, {k: [v] for k, v in outputs.items()},
                                  {executor.INPUT_BASE: input_base})
    seconds = time.perf_counter() - started
    with open(os.path.join(outputs[executor.SUMMARY_KEY].uri, executor.SUMMARY_FILE)) as f:
        examples = json.load(f)["examples"]
    return seconds, examples


if __name__ == "__main__":
    sys.exit(main())
