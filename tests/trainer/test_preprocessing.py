"""The TensorFlow side of the input contract: decode to gray, antialiased bilinear resize."""

import io

import numpy as np
import tensorflow as tf
from PIL import Image

from trainer import preprocessing


def encode(pixels, mode="L", fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_png_bytes_become_float_0_255_at_model_size():
    pixels = np.random.default_rng(0).integers(0, 256, (90, 70), dtype=np.uint8)
    out = preprocessing.preprocess_image_bytes(tf.constant(encode(pixels)), 64).numpy()
    assert out.shape == (64, 64, 1) and out.dtype == np.float32
    expected = tf.image.resize(pixels[..., None].astype(np.float32), [64, 64],
                               method="bilinear", antialias=True).numpy()
    np.testing.assert_allclose(out, np.clip(expected, 0, 255), atol=1e-4)


def test_same_size_image_passes_through_unchanged():
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    out = preprocessing.preprocess_image_bytes(tf.constant(encode(pixels)), 64).numpy()
    np.testing.assert_allclose(out[..., 0], pixels, atol=1e-3)


def test_colour_jpeg_is_converted_to_one_channel():
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0] = 200
    out = preprocessing.preprocess_image_bytes(tf.constant(encode(rgb, "RGB", "JPEG")), 32)
    assert out.shape == (32, 32, 1)
    assert 40 < float(tf.reduce_mean(out)) < 80  # luma of pure red ≈ 0.299 · 200


def test_batch_of_differently_sized_images():
    rng = np.random.default_rng(2)
    batch = [encode(rng.integers(0, 256, (h, w), dtype=np.uint8)) for h, w in [(50, 80), (64, 64)]]
    out = preprocessing.preprocess_image_bytes_batch(tf.constant(batch), 48)
    assert out.shape == (2, 48, 48, 1)
