"""Which passing variant ships, and why, from the gate verdicts, sizes and latencies (pure)."""

import math

from components.quantizer.config import OBJECTIVES
from trainer.constants import LATENCY_MARGIN


def select_variant(rows: list[dict], objective: str = "fastest", margin: float = LATENCY_MARGIN,
                   max_size_bytes: int | None = None, threads: int = 1) -> dict:
    """Which variant ships and why, from the gate verdicts, file sizes and median latencies.

    Pure: rows are variants.json rows (variant, passed, size_bytes, latency_ms; "error" when
    conversion failed). Eligible: passed the gate and fits the size budget. "fastest": the
    lowest latency wins, but any eligible variant within `margin` (relative) of it counts as
    tied and the smallest file among the tied wins. "smallest": the smallest file wins.
    Returns {"selected": name or None, "reason": one sentence, "fastest": the fastest eligible
    variant, "excluded": {variant: why}}.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    excluded, eligible = {}, []
    for row in rows:
        if "error" in row:
            excluded[row["variant"]] = "conversion failed"
        elif not row.get("passed"):
            excluded[row["variant"]] = "failed the Quantizer's gate"
        elif max_size_bytes and row["size_bytes"] > max_size_bytes:
            excluded[row["variant"]] = (f"{_mb(row['size_bytes'])} MB exceeds the "
                                        f"{_mb(max_size_bytes)} MB size budget")
        else:
            eligible.append(row)
    if not eligible:
        passed = [row for row in rows if row.get("passed")]
        reason = ("no variant passed the Quantizer's gate" if not passed else
                  f"{len(passed)} variant(s) passed the Quantizer's gate but none fits the "
                  f"{_mb(max_size_bytes)} MB size budget")
        return {"selected": None, "fastest": None, "reason": reason, "excluded": excluded}

    def latency(row):  # an unmeasured variant ranks last, never first
        value = row.get("latency_ms")
        return math.inf if value is None else value

    fastest = min(eligible, key=lambda row: (latency(row), row["size_bytes"]))
    where = f"median on the edge runtime at {threads} thread{'s' * (threads != 1)}"
    if objective == "smallest":
        winner = min(eligible, key=lambda row: (row["size_bytes"], latency(row)))
        reason = (f"{winner['variant']} shipped: objective 'smallest', the smallest file that "
                  f"passed the Quantizer's gate ({_mb(winner['size_bytes'])} MB"
                  + (f"; the fastest, {fastest['variant']}, takes {_ms(fastest)} vs "
                     f"{_ms(winner)} ms {where})" if fastest is not winner else ")"))
    else:
        tied = [row for row in eligible if latency(row) <= latency(fastest) * (1 + margin)]
        winner = min(tied, key=lambda row: (row["size_bytes"], latency(row)))
        others = sorted((row for row in eligible if row is not winner), key=latency)
        if winner is not fastest:
            reason = (f"{winner['variant']} shipped: {_ms(winner)} ms is within the "
                      f"{margin:.0%} noise margin of the fastest passing variant "
                      f"({fastest['variant']}, {_ms(fastest)} ms, {where}) and its file is "
                      f"smaller ({_mb(winner['size_bytes'])} vs {_mb(fastest['size_bytes'])} "
                      "MB)")
        elif math.isinf(latency(winner)):
            reason = (f"{winner['variant']} shipped: no latency was measured, so the smallest "
                      "passing file won")
        else:
            reason = (f"{winner['variant']} shipped: the fastest variant that passed the "
                      f"Quantizer's gate, {_ms(winner)} ms {where}"
                      + (f" (next: {others[0]['variant']} {_ms(others[0])} ms)" if others else ""))
    # A faster variant that may not ship is part of the answer to "why not that one?".
    faster = [row for row in rows if row["variant"] in excluded
              and latency(row) < latency(winner)]
    if faster:
        reason += "; faster but excluded: " + ", ".join(
            f"{row['variant']} {_ms(row)} ms ({excluded[row['variant']]})" for row in faster)
    return {"selected": winner["variant"], "fastest": fastest["variant"], "reason": reason,
            "excluded": excluded}


def _mb(size_bytes) -> str:
    return f"{size_bytes / 1e6:.2f}"


def _ms(row) -> str:
    return "unmeasured" if row.get("latency_ms") is None else f"{row['latency_ms']:.2f}"
