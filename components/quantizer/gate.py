"""The Quantizer's gate: a variant may lose at most max_f1_drop macro F1 against float on the
test split, scored by the edge runner, and must keep the float model's referral decisions."""

import dataclasses
import os

import numpy as np

from components.lib import referral_gate
from components.quantizer.recipes import RECIPES
from components.quantizer.scoring import classification_scores, runner_outputs
from edge import spec
from edge.runtime import ModelRunner
from trainer.summary_file import read_training_summary


def evaluate_variant(variant: str, path: str, test, reference: dict, config,
                     ood_inputs=None, reference_outputs=None, referral=None,
                     families=None) -> dict:
    """Scores one .tflite file with the edge runner (1 thread) and gates its macro F1 drop and,
    for a model with referral thresholds, its referral (components/lib/referral_gate.py).

    Latency is timed later, in a fresh process per variant (`timing.time_variants`): this
    runner has shared the process with the converter and the other variants."""
    runner = ModelRunner(path, threads=1)
    outputs = referral_gate.Outputs.of(
        runner_outputs(runner, test.images),
        runner_outputs(runner, ood_inputs if ood_inputs is not None else test.images[:0]))
    probabilities = outputs.test_probabilities
    scores = classification_scores(probabilities, test.labels, config.class_names)
    drop = reference["macro_f1"] - scores["macro_f1"]
    passed = drop <= config.max_f1_drop + 1e-9
    referral_lines = []
    if referral and reference_outputs is not None:
        scores["referral"] = referral_gate.measure(outputs, referral, families)
        scores["referral"]["agreement"] = referral_gate.agreement(
            reference_outputs, outputs, referral)
        referral_passed, referral_lines = referral_gate.verdict(
            scores["referral"], scores["referral"]["agreement"])
        passed = passed and referral_passed
    verdict = "pass" if passed else "rejected"
    return {
        "variant": variant,
        "recipe": RECIPES[variant].description,
        "file": path,
        "size_bytes": os.path.getsize(path),
        "runtime": runner.runtime,
        "input_dtype": runner.input.dtype,
        "quantization": runner.quantization()["scheme"],
        **scores,
        "f1_drop": drop,
        "passed": passed,
        "message": (
            f"{variant}: macro F1 {scores['macro_f1']:.3f} is {drop:.3f} below float "
            f"{reference['macro_f1']:.3f} (max drop {config.max_f1_drop:.3f})"
            + "".join(f"; {line}" for line in referral_lines) + f": {verdict}"
        ),
    }


def training_referral(saved_model_dir: str) -> dict:
    """The referral thresholds the Trainer chose on eval (training_summary.json), or {}."""
    return (read_training_summary(saved_model_dir) or {}).get("referral") or {}


def referral_record(referral: dict, reference, labels) -> dict | None:
    """variants.json's referral block: thresholds, the float model's numbers, risk–coverage."""
    if not referral:
        return None
    from trainer.referral import risk_coverage

    accepted = (reference.test_ood <= referral.get("ood_threshold", spec.DEFAULT_OOD_THRESHOLD)
                if reference.test_ood is not None else np.ones(len(labels), bool))
    curve = risk_coverage(reference.test_probabilities[accepted], labels[accepted])
    step = max(1, len(curve) // 50)
    return referral | {"gate": dataclasses.asdict(referral_gate.ReferralGateConfig()),
                       "risk_coverage_test": curve[::step] + curve[-1:]}

