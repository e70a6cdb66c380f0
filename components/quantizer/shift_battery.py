"""The acquisition-shift battery (components/lib/shift_gate.py) on the float SavedModel and every
variant that passed the cheaper gates: a variant that fails it is rejected."""

import dataclasses
import time

from components.lib import shift_gate
from components.quantizer.config import QuantizerConfig
from components.quantizer.scoring import runner_outputs, tf_outputs
from edge.imageio import load_grayscale
from edge.runtime import ModelRunner

# The battery scores tens of thousands of inputs per variant; its answers, unlike its timings,
# do not depend on the thread count.
SHIFT_BATTERY_THREADS = 2


def run_shift_battery(signature, rows: list[dict], test, referral: dict, image_size: int,
                      config: QuantizerConfig) -> dict | None:
    """Runs the acquisition-shift battery on the float SavedModel and every converted variant;
    a variant that fails it is rejected (its row says which cell missed which number). Returns
    variants.json's "shift_battery" block: the settings and the float model's cells."""
    gate = config.shift_gate
    if gate.images <= 0:
        return None
    chosen = shift_gate.sample(test.labels, gate.images, gate.seed)
    originals = [load_grayscale(test.encoded[index]) for index in chosen]
    labels = test.labels[chosen]
    models = {"float": lambda inputs: tf_outputs(signature, inputs)}
    # A variant that already failed a cheaper gate cannot ship; its battery would only cost time.
    runners = {row["variant"]: ModelRunner(row["file"], threads=SHIFT_BATTERY_THREADS)
               for row in rows if "error" not in row and row["passed"]}
    models.update({name: (lambda inputs, r=runner: runner_outputs(r, inputs))
                   for name, runner in runners.items()})
    started = time.monotonic()
    measured = shift_gate.measure(models, originals, labels, referral, image_size, gate)
    reference = shift_gate.verdict(measured["float"], referral, gate)
    for row in rows:
        if "error" not in row and not row["passed"]:
            row["message"] = row["message"].replace(
                ": rejected", "; acquisition-shift battery not run: rejected")
        if row["variant"] not in measured:
            continue
        result = shift_gate.verdict(measured[row["variant"]], referral, gate)
        row["shift"] = {"cells": measured[row["variant"]], **result}
        # The float model is gated too: a variant of a model that fails is no safer by luck.
        row["passed"] = bool(row["passed"] and result["passed"] and reference["passed"])
        base = row["message"].rpartition(": ")[0]
        float_failed = "" if reference["passed"] else "; the float model fails the battery"
        row["message"] = (f"{base}; {result['summary']}{float_failed}: "
                          f"{'pass' if row['passed'] else 'rejected'}")
    return {"config": dataclasses.asdict(gate), "images": int(len(chosen)),
            "families": {name: {"cause": family.cause, "unit": family.unit,
                                "severities": list(family.severities)}
                         for name, family in shift_gate.shift.FAMILIES.items()
                         if not gate.families or name in gate.families},
            "seconds": round(time.monotonic() - started, 1),
            "float": {"cells": measured["float"], **reference}}
