"""Import TensorFlow Addons under tf_keras: the one place that knows the trick.

tensorflow-addons 0.23 (end of life, built for TF < 2.16) imports `keras.src.engine` and
`keras.src.engine.keras_tensor`, which Keras 3 no longer has. The same modules live in tf_keras,
and tfa's code works against them (measured: TripletSemiHardLoss matches a NumPy reference), so
we alias them in `sys.modules` before the import. Everything else imports `tfa` from here.
"""

import sys
import warnings

import tf_keras.src.engine
import tf_keras.src.engine.keras_tensor

sys.modules.setdefault("keras.src.engine", tf_keras.src.engine)
sys.modules.setdefault("keras.src.engine.keras_tensor", tf_keras.src.engine.keras_tensor)

# tfa warns on import that it is end-of-life and untested with this TF; we know, and test it.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import tensorflow_addons as tfa  # must follow the alias above

__all__ = ["tfa"]
