"""Each converted variant's latency on the edge runtime, as the device will see it."""

import os

import numpy as np

from components.quantizer.config import QuantizerConfig
from edge.latency import measure_in_fresh_process


def time_variants(rows: list[dict], image: np.ndarray, config: QuantizerConfig) -> dict:
    """Adds each converted variant's latency to its row; returns how it was measured.

    One fresh process per variant and round (edge.latency); rounds alternate the order so a
    slow spell of the machine does not land on one variant only; a variant's latency is its
    fastest round's median, since other load on the machine only ever adds time.
    """
    timed = [row for row in rows if "error" not in row]
    medians = {row["variant"]: [] for row in timed}
    details = {}
    for round_index in range(config.latency_rounds):
        for row in timed if round_index % 2 == 0 else timed[::-1]:
            try:
                result = measure_in_fresh_process(
                    row["file"], config.latency_threads, config.latency_warmup,
                    config.latency_runs, image)
            except (RuntimeError, OSError, ValueError) as err:  # the row says so
                row["latency_error"] = str(err)[-500:]
                continue
            medians[row["variant"]].append(result["median_ms"])
            if result["median_ms"] <= min(medians[row["variant"]]):
                details[row["variant"]] = result
    for row in timed:
        result = details.get(row["variant"])
        if result is None:
            row["latency_ms"] = None
            continue
        row.update(latency_ms=result["median_ms"], latency_p90_ms=result["p90_ms"],
                   latency_round_medians_ms=medians[row["variant"]],
                   latency_threads=config.latency_threads,
                   load_and_first_ms=result["load_and_first_ms"],
                   quantization=result["quantization"])
    any_result = next(iter(details.values()), {})
    cores = os.cpu_count() or 1
    return {
        "latency_measured": (
            f"median of {config.latency_runs} timed runs after {config.latency_warmup} warm-up "
            f"runs, one fresh process per variant (python -m edge.latency), "
            f"{config.latency_rounds} interleaved round(s), the faster round counted; "
            f"{any_result.get('runtime', 'edge runtime')} on a {cores}-core build machine"
            + (f" ({config.latency_threads} threads on {cores} cores: oversubscribed)"
               if config.latency_threads > cores else "")
        ),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
