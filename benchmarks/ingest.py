"""ExampleGen images/s, single- vs multi-process: runs benchmarks/bench_ingest.py as it is."""

import os

from benchmarks.common import BENCH_DIR, pipeline_python, run_json


def measure(images: int, size: int, workers: int | None = None) -> dict:
    workers = workers or os.cpu_count() or 2
    print(f"bench: ExampleGen ingest, {images} images of {size} px, 1 vs {workers} processes",
          flush=True)
    result = run_json([pipeline_python(), str(BENCH_DIR / "bench_ingest.py"),
                       "--images", str(images), "--size", str(size),
                       "--workers", str(workers)])
    single = result["single_process"]["images_per_s"]
    multi = result["multi_process"]["images_per_s"]
    return result | {"workers": workers, "speedup": round(multi / single, 2)}
