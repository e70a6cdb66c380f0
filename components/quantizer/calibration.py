"""Which int8 calibration sample ships: the one whose model answers most like float on eval."""

import dataclasses
import os

import numpy as np

from components.lib import referral_gate
from components.quantizer.config import QuantizerConfig
from components.quantizer.conversion import convert_calibrations
from components.quantizer.recipes import RECIPES
from components.quantizer.scoring import runner_outputs, tf_outputs
from edge.runtime import ModelRunner
from trainer.split_reader import read_split


@dataclasses.dataclass
class FidelitySet:
    """The eval split's images and the float SavedModel's outputs on them: what an int8
    calibration is chosen against (never the test split, which gates the chosen one)."""

    images: np.ndarray
    reference: tuple  # (probabilities [N, C], ood_score [N] or None, stability [N] or None)
    referral: dict


def fidelity_set(signature, examples_uri: str, image_size: int, config: QuantizerConfig,
                 referral: dict) -> FidelitySet | None:
    if config.calibration_candidates < 2 or not any(
            RECIPES[variant].integer for variant in config.variants):
        return None
    held_out = read_split(examples_uri, "eval", image_size, config.max_test_examples)
    return FidelitySet(held_out.images, tf_outputs(signature, held_out.images), referral)


def fidelity(reference: tuple, candidate: tuple, referral: dict) -> dict:
    """How closely a quantized model reproduces the float one on the same images (no labels):
    the share of images whose answer agrees (top-1 class and, with referral thresholds, the
    ok/refer status), each part's share, and the mean L1 distance between the probabilities."""
    reference_p, candidate_p = reference[0], candidate[0]
    same_class = reference_p.argmax(1) == candidate_p.argmax(1)
    result = {
        "top1_agreement": float(np.mean(same_class)),
        "mean_l1": float(np.abs(reference_p - candidate_p).sum(axis=1).mean()),
    }
    same_answer = same_class
    if referral:
        same_status = referral_gate.same_status(reference, candidate, referral)
        result["decision_agreement"] = float(np.mean(same_status))
        same_answer = same_class & same_status
    result["answer_agreement"] = float(np.mean(same_answer))
    return result


def most_faithful_calibration(variant: str, saved_model_dir: str, calibrations: list,
                              config: QuantizerConfig, fidelity_set: FidelitySet,
                              work_dir: str) -> tuple[bytes, dict]:
    """Converts with each calibration sample and keeps the model closest to float on the eval
    split: the most answers (class and ok/refer status) agreeing, then the smallest L1. Either
    part alone misleads: with no low-confidence threshold (refer_below 0) ok/refer agreement
    only sees the OOD score, and the most agreeing sample can have the fewest top-1 classes
    right (docs/decisions/quantization.md)."""
    candidates, models = [], convert_calibrations(variant, saved_model_dir, calibrations, config)
    for index, model_bytes in enumerate(models):
        path = os.path.join(work_dir, f"{variant}.calibration{index}.tflite")
        with open(path, "wb") as handle:
            handle.write(model_bytes)
        runner = ModelRunner(path, threads=1)
        candidates.append({"seed": config.seed + index, **fidelity(
            fidelity_set.reference, runner_outputs(runner, fidelity_set.images),
            fidelity_set.referral)})
        os.remove(path)
    best = max(range(len(candidates)), key=lambda i: (
        candidates[i]["answer_agreement"], -candidates[i]["mean_l1"]))
    return models[best], {
        "rule": f"{len(candidates)} calibration samples of {config.representative_examples} "
                f"train images (seeds {candidates[0]['seed']}..{candidates[-1]['seed']}); kept "
                f"the int8 model closest to float on {len(fidelity_set.images)} eval images "
                "(most answers agreeing in class and ok/refer, then the smallest mean L1 of "
                "the probabilities)",
        "chosen_seed": candidates[best]["seed"],
        "candidates": candidates,
    }
