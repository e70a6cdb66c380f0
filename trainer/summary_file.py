"""training_summary.json: what the Trainer writes beside the SavedModel, and its one reader.

Holds the config, per-epoch history, best eval macro F1 and the referral thresholds
(trainer/referral.py). Every consumer (Quantizer, report, model summaries, benchmarks) reads it
through `read_training_summary` instead of spelling the file name.
"""

import json
import os

import tensorflow as tf

SUMMARY_FILENAME = "training_summary.json"


def write_training_summary(serving_model_dir: str, summary: dict) -> None:
    with tf.io.gfile.GFile(os.path.join(serving_model_dir, SUMMARY_FILENAME), "w") as handle:
        json.dump(summary, handle, indent=2, default=float)


def read_training_summary(serving_model_dir: str | None) -> dict | None:
    """The summary beside a SavedModel the Trainer exported, or None when there is none."""
    if not serving_model_dir:
        return None
    path = os.path.join(serving_model_dir, SUMMARY_FILENAME)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)
