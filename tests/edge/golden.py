"""Paths of the committed golden models (tests/edge/make_golden_models.py writes them)."""

from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).parent / "data"
VARIANTS = ("fp32", "fp16", "dynamic", "int8", "int8_io", "uint8_io")
PLAIN_MODEL = DATA_DIR / "plain_fp32.tflite"
# 4 classes + ood_score, no attention: ood_score = mean level / 100; the top probability grows
# with the brightness difference between the left and the right half.
REFERRAL_MODEL = DATA_DIR / "referral_fp32.tflite"
# The consistency check (trainer/consistency.py) around a classifier of one fine detail: class 0
# when the centre pixel (16, 16) is brighter than the mean of the 5x5 patch around it, class 1
# when darker; ood_score = mean level / 100. Outputs probabilities, ood_score and stability.
CONSISTENCY_MODEL = DATA_DIR / "consistency_fp32.tflite"
# The manifest's referral record the tests give it.
REFERRAL = {"ood_threshold": 1.0, "refer_below": 0.6, "method": "test", "temperature": 1.0}


def model_path(variant: str) -> Path:
    return DATA_DIR / f"golden_{variant}.tflite"


def expected() -> dict[str, np.ndarray]:
    """inputs [n, s, s, 1] float32 0..255 and the Keras model's outputs on them."""
    with np.load(DATA_DIR / "golden_expected.npz") as data:
        return {key: data[key] for key in data.files}
