"""`cxr-edge bench`: cold start, then edge.latency's warm-up and timed runs, and memory."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from edge import latency
from edge.classifier import Classifier
from edge.commands.common import EXIT_OK, open_classifier, table, variant_fields


def bench_command(args) -> int:
    started = time.perf_counter()
    classifier = open_classifier(args)
    runner = classifier.model.runner
    if args.image:
        model_input = _model_input_for(classifier, args.image)
    else:
        model_input = latency.gradient_input(classifier.input_size)
    runner.run(model_input)
    cold_start_ms = (time.perf_counter() - started) * 1000
    timings = latency.time_runs(runner, model_input, args.warmup, args.runs)
    timed = latency.summarize(timings)
    result = {
        "model": str(args.model),
        "runtime": classifier.runtime,
        **variant_fields(classifier, args.threads),
        "input_size": classifier.input_size,
        "warmup": args.warmup,
        "runs": timed["runs"],
        "cold_start_ms": round(cold_start_ms, 2),
        "latency_ms_median": timed["median_ms"],
        "latency_ms_p90": timed["p90_ms"],
        "images_per_s": round(1000 * len(timings) / sum(timings), 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    rows = [["metric", "value"]] + [[key, str(value)] for key, value in result.items()]
    print(table(rows), file=sys.stderr, end="")
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    sys.stdout.write(text)
    return EXIT_OK


def _model_input_for(classifier: Classifier, image: str):
    from edge.preprocess import to_model_input

    return to_model_input(classifier.load(image), classifier.input_size)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB
