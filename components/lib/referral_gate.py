"""The referral gate: a model must know when not to answer, in every variant that may ship.

Measured by the Quantizer on the edge interpreter, for the float SavedModel and each TFLite
variant, with the device's own decision (`edge.classifier.decide`) and the thresholds the
Trainer chose on eval (trainer/referral.py, carried in the manifest):

- test acceptance: share of in-distribution test images the OOD check accepts (>= 0.95);
- OOD referral: share of the built-in non-X-ray set (components/lib/ood_images.py) referred as
  out_of_distribution (>= 0.95);
- agreement: share of test + OOD images whose ok/refer decision equals the float model's
  (>= 0.99), so quantization cannot quietly change who gets referred.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edge import spec
from edge.classifier import REASON_OUT_OF_DISTRIBUTION, REASON_UNSTABLE, STATUS_REFER, decide


@dataclasses.dataclass(frozen=True)
class ReferralGateConfig:
    min_test_acceptance: float = 0.95
    min_ood_referred: float = 0.95
    min_decision_agreement: float = 0.99


@dataclasses.dataclass
class Outputs:
    """A model's outputs on the test split and on the OOD set (stability: None for a model
    without the consistency check)."""

    test_probabilities: np.ndarray
    test_ood: np.ndarray | None
    ood_probabilities: np.ndarray
    ood_ood: np.ndarray | None
    test_stability: np.ndarray | None = None
    ood_stability: np.ndarray | None = None

    @classmethod
    def of(cls, test: tuple, ood: tuple) -> Outputs:
        """From two (probabilities, ood_score, stability) tuples, as the Quantizer reads them."""
        return cls(test[0], test[1], ood[0], ood[1], *(test[2:3] or (None,)),
                   *(ood[2:3] or (None,)))


def decisions(probabilities: np.ndarray, ood_scores: np.ndarray | None,
              referral: dict, stability: np.ndarray | None = None
              ) -> list[tuple[str, str | None]]:
    threshold = float(referral.get("ood_threshold", spec.DEFAULT_OOD_THRESHOLD))
    refer_below = float(referral.get("refer_below", 0.0))
    unstable_below = float(referral.get("unstable_below", 0.0))
    return [decide(p, None if ood_scores is None else float(ood_scores[i]), threshold,
                   refer_below, None if stability is None else float(stability[i]),
                   unstable_below) for i, p in enumerate(probabilities)]


def measure(outputs: Outputs, referral: dict, families: list[str] | None = None) -> dict:
    """Acceptance on test, OOD referral (overall and per family), ok share on test."""
    test = decisions(outputs.test_probabilities, outputs.test_ood, referral,
                     outputs.test_stability)
    ood = decisions(outputs.ood_probabilities, outputs.ood_ood, referral, outputs.ood_stability)
    out_of_distribution = [reason == REASON_OUT_OF_DISTRIBUTION for _, reason in ood]
    result = {
        "test_acceptance": _share(reason != REASON_OUT_OF_DISTRIBUTION for _, reason in test),
        "test_ok": _share(status != STATUS_REFER for status, _ in test),
        "test_unstable": _share(reason == REASON_UNSTABLE for _, reason in test),
        "ood_referred": _share(out_of_distribution),
        "ood_images": len(ood),
    }
    if families:
        result["ood_referred_by_family"] = {
            family: _share(flag for flag, f in zip(out_of_distribution, families, strict=True)
                           if f == family)
            for family in dict.fromkeys(families)
        }
    return result


def agreement(reference: Outputs, candidate: Outputs, referral: dict) -> float:
    """Share of test + OOD images with the same ok/refer status under both models."""
    same = np.concatenate([
        same_status((reference.test_probabilities, reference.test_ood,
                     reference.test_stability),
                    (candidate.test_probabilities, candidate.test_ood,
                     candidate.test_stability), referral),
        same_status((reference.ood_probabilities, reference.ood_ood, reference.ood_stability),
                    (candidate.ood_probabilities, candidate.ood_ood, candidate.ood_stability),
                    referral)])
    return _share(same)


def same_status(reference: tuple, candidate: tuple, referral: dict) -> np.ndarray:
    """Per image, whether two models give it the same ok/refer status; each model's outputs
    as (probabilities, ood_scores) or (probabilities, ood_scores, stability)."""
    before, after = (statuses_of(outputs[0], outputs[1], referral, *outputs[2:3])
                     for outputs in (reference, candidate))
    return np.array([a == b for a, b in zip(before, after, strict=True)], bool)


def statuses_of(probabilities: np.ndarray, ood_scores: np.ndarray | None,
                referral: dict, stability: np.ndarray | None = None) -> list[str]:
    """Each image's ok/refer status."""
    return [status for status, _ in decisions(probabilities, ood_scores, referral, stability)]


def verdict(measured: dict, agreed: float | None,
            config: ReferralGateConfig = ReferralGateConfig()) -> tuple[bool, list[str]]:
    """(passed, one sentence per check: the number, the threshold, pass/FAIL)."""
    checks = [
        ("test acceptance", measured["test_acceptance"], config.min_test_acceptance),
        ("OOD referral", measured["ood_referred"], config.min_ood_referred),
    ]
    if agreed is not None:
        checks.append(("ok/refer agreement with float", agreed, config.min_decision_agreement))
    lines = [f"{name} {value:.3f} (min {minimum:.2f}): {'pass' if value >= minimum else 'FAIL'}"
             for name, value, minimum in checks]
    return all(value >= minimum for _, value, minimum in checks), lines


def _share(flags) -> float:
    flags = list(flags)
    return float(np.mean(flags)) if flags else float("nan")
