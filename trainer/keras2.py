"""Keras 2 (tf_keras) for every entry point: the one place that selects it.

tensorflow-model-optimization and tensorflow-addons work only with Keras 2, so:

- TF_USE_LEGACY_KERAS=1 makes `tf.keras` mean tf_keras. TensorFlow reads it when `tf.keras` is
  first touched, so it is set before anything imports TensorFlow.
- tensorflow-addons 0.23 (end of life, built for TF < 2.16) imports `keras.src.engine` and
  `keras.src.engine.keras_tensor`, which Keras 3 no longer has. The same modules live in
  tf_keras and tfa's code works against them (its TripletSemiHardLoss matches a NumPy
  reference: tests/trainer), so an import hook serves tf_keras's modules under those names.
  The hook is lazy: nothing is imported until tfa asks.

`activate()` runs when the `trainer` package is imported, and `make setup` adds a one-line
.pth file to .venv that imports `trainer` at interpreter start-up, so plain `python -c
"import tensorflow_addons"`, the `tfx` CLI, Beam workers and TFX's subprocesses all get it.
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

_ALIASES = {
    "keras.src.engine": "tf_keras.src.engine",
    "keras.src.engine.keras_tensor": "tf_keras.src.engine.keras_tensor",
}


def activate():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # required, not a preference: see above
    if not any(isinstance(finder, _TfKerasAliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TfKerasAliasFinder())


class _TfKerasAliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of the names in _ALIASES get the tf_keras module itself (not a copy)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(_ALIASES[spec.name])
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module):
        # The import system stamped the alias's spec on the tf_keras module between
        # create_module and here; give the module back its own.
        module.__spec__ = self._own_spec
