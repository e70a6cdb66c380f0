"""edge.preprocess: the device's resize, and its parity with the trainer's TensorFlow resize."""

import numpy as np
import pytest

from edge.preprocess import TF_RESIZE_ANTIALIAS, TF_RESIZE_METHOD, to_model_input
from tests.edge.conftest import radiograph_like

# (height, width, size): downscale, non-square, identity and upscale.
CASES = [(299, 299, 64), (256, 256, 96), (50, 50, 64), (300, 200, 64), (64, 64, 64), (33, 97, 96)]


def test_model_input_shape_dtype_and_range():
    gray = radiograph_like(120, 80)
    out = to_model_input(gray, 64)
    assert out.shape == (64, 64, 1) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 255
    assert not np.allclose(out, np.rint(out))  # not rounded back to integers
    flat = to_model_input(np.full((10, 30), 77, np.uint8), 16)
    np.testing.assert_allclose(flat, 77, atol=1e-4)  # stretched, no padding
    with pytest.raises(ValueError):
        to_model_input(np.zeros((4, 4, 3), np.uint8), 8)


@pytest.mark.pipeline_venv
def test_resize_matches_tensorflow_within_one_level():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    for height, width, size in CASES:
        for gray in (radiograph_like(height, width), rng.integers(0, 256, (height, width))):
            gray = gray.astype(np.uint8)
            edge = to_model_input(gray, size)
            trainer = tf.image.resize(
                gray[None, ..., None].astype(np.float32),
                [size, size],
                method=TF_RESIZE_METHOD,
                antialias=TF_RESIZE_ANTIALIAS,
            ).numpy()[0]
            difference = np.abs(edge - trainer).max()
            assert difference <= 1.0, (height, width, size, difference)
