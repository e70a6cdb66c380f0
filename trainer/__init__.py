"""Keras models, input pipeline and the TFX Trainer's run_fn.

Importing this package selects Keras 2 (see keras2.py). components/ and pipelines/ import it
first, and .venv imports it at start-up, so every TensorFlow entry point gets Keras 2.
"""

from trainer import keras2

keras2.activate()
