"""The model's input transform, shared with the trainer: grayscale uint8 -> float32 [s, s, 1].

The device resizes with Pillow, the trainer with TensorFlow; both are bilinear with antialiasing
and half-pixel centres (Pillow's BILINEAR on a float image, TF's
`tf.image.resize(method="bilinear", antialias=True)`), which agree within 1/255 of the range:
tests/edge/test_preprocess_parity.py measures it. Values stay 0..255, unrounded; the aspect
ratio is not kept (the image is stretched to a square), and standardisation happens inside the
model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# The TensorFlow twin of this resize, for the trainer and documentation.
TF_RESIZE_METHOD = "bilinear"
TF_RESIZE_ANTIALIAS = True


def to_model_input(gray: np.ndarray, size: int) -> np.ndarray:
    """Resizes a 2-D uint8 grayscale image to float32 [size, size, 1] with values 0..255."""
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {gray.shape}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32))  # mode "F"
    resized = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32).reshape(size, size, 1)
