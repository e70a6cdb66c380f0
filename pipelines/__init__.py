"""Pipeline wiring, configs and runners. No model or data logic lives here."""

import trainer  # noqa: F401  (selects Keras 2 before TensorFlow loads; see trainer/__init__.py)
