"""The 224 px int8/float32 ratio is paired in time (benchmarks/deploy_latency.py)."""

import json
import re
from pathlib import Path

from benchmarks import deploy_latency, report

REPO_ROOT = Path(__file__).resolve().parent.parent


def _row(variant, round_medians, threads=1):
    return {"model": "baseline", "variant": variant, "threads": threads,
            "oversubscribed": False, "median_ms": min(round_medians),
            "round_medians_ms": round_medians}


def test_int8_is_measured_right_after_float32():
    order = deploy_latency.VARIANTS
    assert abs(order.index("int8") - order.index("float32")) == 1


def test_the_goal_is_judged_on_the_paired_ratio_not_on_two_fastest_rounds():
    # A recorded case: float32 caught a fast phase (15.2 ms) that int8, timed minutes later,
    # missed; in the two rounds where they ran in the same phase int8 took under half the time.
    float32, int8 = [20.9, 21.3, 15.2], [10.2, 10.6, 10.58]
    (ratio,) = deploy_latency._ratios([_row("float32", float32), _row("int8", int8)])
    assert ratio["ratio_median"] == round(10.2 / 15.2, 3)  # 0.67: the unpaired reading fails
    assert ratio["round_ratios"] == [round(i / f, 3) for i, f in zip(int8, float32, strict=True)]
    assert ratio["ratio_paired"] == round(10.6 / 21.3, 3)  # the median round: 0.498
    assert ratio["goal_met"] is True
    slow = deploy_latency._ratios([_row("float32", [15.2, 21.0, 20.6]),
                                   _row("int8", [10.6, 11.2, 10.9])])[0]
    assert slow["ratio_paired"] == round(11.2 / 21.0, 3) and slow["goal_met"] is False
    assert report._paired_cell(slow) == f"{slow['ratio_paired']:.2f} (0.53–0.70)"


def test_the_recorded_results_render_without_machine_paths_or_update_paragraphs():
    with open(REPO_ROOT / "benchmarks" / "results.json") as handle:
        text = report.render(json.load(handle))
    # benchmarks/work/... is repo-relative; /work/... or /tmp/... after a space, quote or
    # bracket is a machine path.
    assert not re.search(r"(^|[\s(`'\"])/(work|tmp)/|Re-measured", text, re.MULTILINE)
