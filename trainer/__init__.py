"""Keras models, input pipeline and the TFX Trainer's run_fn.

Every TensorFlow entry point of the project imports this package first (components/ and
pipelines/ do so in their __init__), so this is the one place that selects Keras 2 (tf_keras):
tensorflow-model-optimization and tensorflow-addons do not work with Keras 3. TensorFlow reads
the variable when `tf.keras` is first touched, so it must be set before that.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
