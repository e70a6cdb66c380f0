"""The device contract: names and numbers every stage shares.

Training, ingestion and the edge runner import these instead of restating them, so the
model on the device and the data it was trained on cannot drift apart. Pure Python.
"""

# Class names in model-output order (the Kaggle COVID-19 Radiography Database folders).
# A dataset may configure its own; this is the default and the order the demo uses.
CLASS_NAMES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
# The class whose recall is gated: a missed COVID case costs more than a false alarm.
PRIORITY_CLASS = "COVID"

# Model input: a square 8-bit grayscale image resized to IMAGE_SIZE, as float32 0..255,
# shape [batch, size, size, 1]. Standardisation happens inside the model.
DEFAULT_IMAGE_SIZE = 224
DEMO_IMAGE_SIZE = 64

# tf.Example feature keys written by the ExampleGen and read by the Trainer.
IMAGE_KEY = "image"  # bytes: PNG, 8-bit grayscale
LABEL_KEY = "label"  # int64: index into the class names
LABEL_NAME_KEY = "label_name"  # bytes
SOURCE_PATH_KEY = "source_path"  # bytes: path relative to the data root
CONTENT_HASH_KEY = "content_hash"  # bytes: sha256 hex of the decoded 8-bit pixels
WIDTH_KEY = "width"  # int64: original width
HEIGHT_KEY = "height"  # int64: original height

SPLITS = ("train", "eval", "test")

# Files in a pushed model directory.
MODEL_FILENAME = "model.tflite"
LABELS_FILENAME = "labels.txt"
MANIFEST_FILENAME = "manifest.json"
# The pusher's destination: versions/<version>/ holds each pushed model directory; the text
# file LATEST names the newest, and on a local destination the symbolic link `latest` too.
VERSIONS_DIR = "versions"
LATEST_FILE = "LATEST"
LATEST_LINK = "latest"

# Tensor names of the exported models. The TFLite file keeps the SavedModel's
# "serving_tensor" signature: input IMAGE_TENSOR_KEY float32 [1, size, size, 1] (0..255),
# outputs PROBABILITIES_KEY [1, classes], optional ATTENTION_KEY_PREFIX + "1", "2", ...
# [1, h, w, 1] in 0..1, and optional EMBEDDING_KEY [1, dims] (Siamese).
IMAGE_TENSOR_KEY = "image"
IMAGE_BYTES_KEY = "image_bytes"  # serving_default input: encoded PNG/JPEG bytes
PROBABILITIES_KEY = "probabilities"
ATTENTION_KEY_PREFIX = "attention_"
EMBEDDING_KEY = "embedding"
# [1]: out-of-distribution score (trainer/referral.py); above the manifest's ood_threshold
# the image is unlike the training data and is referred.
OOD_SCORE_KEY = "ood_score"
# The score is scaled so that the cut chosen on eval is 1: the threshold the Trainer writes and
# the one a manifest without `ood_threshold` gets.
DEFAULT_OOD_THRESHOLD = 1.0
# [1]: the consistency check (trainer/consistency.py): the smallest margin of the image's top
# class in the model's answers on mild re-acquisitions of it; below the manifest's
# unstable_below (0: a re-acquisition changed the class) the image is referred as unstable.
STABILITY_KEY = "stability"
# SavedModel signature names.
SERVING_SIGNATURE = "serving_default"  # encoded image bytes in
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Example in (TFMA Evaluator)
TENSOR_SIGNATURE = "serving_tensor"  # preprocessed float tensor in (TFLite conversion)

# `cxr-edge export-android` (edge/android.py). MediaPipe's ImageClassifier reads one
# classification output, so a model with an OOD score gets one more category, last, folded
# into the graph: score 1 (and every class 0) when ood_score > ood_threshold, else 0 (and the
# class probabilities unchanged). The low-confidence rule (top score < refer_below) is the
# app's, from the JSON written next to the model (<name>.referral.json).
ANDROID_REFER_CATEGORY = "refer_out_of_distribution"
ANDROID_REFERRAL_SUFFIX = ".referral.json"
ANDROID_REFERRAL_FORMAT = 1
