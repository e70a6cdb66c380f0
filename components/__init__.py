"""Custom TFX components: image ExampleGen, image validation, quantizer, pusher, run report."""

import trainer  # noqa: F401  (selects Keras 2 before TensorFlow loads; see trainer/__init__.py)
