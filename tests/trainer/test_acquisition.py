"""trainer.acquisition re-acquires training images within bounds, and the referral's detail
summary (trainer.referral.DetailSummary) sees blur and sharpening."""

import numpy as np
import tensorflow as tf

from edge import shift
from tests.edge.conftest import radiograph_like
from trainer import acquisition
from trainer.referral import DetailSummary

SIZE = 32


def _batch(count=8):
    return np.stack([radiograph_like(SIZE, SIZE, seed=i) for i in range(count)]
                    ).astype(np.float32)[..., None]


def test_augmenter_keeps_shape_and_range_and_is_off_at_probability_zero():
    images = _batch()
    unchanged = acquisition.make_acquisition_augmenter(
        SIZE, 1, acquisition.AcquisitionConfig(probability=0.0))(tf.constant(images)).numpy()
    np.testing.assert_allclose(unchanged, images, atol=1e-4)
    changed = acquisition.make_acquisition_augmenter(
        SIZE, 1, acquisition.AcquisitionConfig(probability=1.0))(tf.constant(images)).numpy()
    assert changed.shape == images.shape and changed.dtype == np.float32
    assert changed.min() >= 0.0 and changed.max() <= 255.0
    differences = np.abs(changed - images).mean(axis=(1, 2, 3))
    assert (differences > 1.0).all()  # every image re-acquired
    assert len(np.unique(differences.round(3))) == len(images)  # each by its own draw


def test_gaussian_blur_is_per_image_and_preserves_the_mean():
    images = tf.constant(_batch(2))
    blurred = acquisition._gaussian_blur(images, tf.constant([0.3, 2.0])).numpy()
    detail = np.abs(np.diff(blurred[..., 0], axis=2)).mean(axis=(1, 2))
    original = np.abs(np.diff(images.numpy()[..., 0], axis=2)).mean(axis=(1, 2))
    assert detail[1] < 0.5 * original[1] and detail[0] > 0.8 * original[0]
    np.testing.assert_allclose(blurred.mean(axis=(1, 2, 3)), images.numpy().mean(axis=(1, 2, 3)),
                               rtol=0.02)


def test_detail_summary_falls_with_blur_and_rises_with_sharpening():
    gray = radiograph_like(SIZE * 4, SIZE * 4, seed=9)
    summary = DetailSummary(grid=4)

    def detail(cell):
        inputs = shift.model_inputs([gray], cell, SIZE)
        return float(summary(tf.constant(inputs)).numpy()[0, :16].mean())  # 1-px Laplacian

    sharp = detail(shift.Cell("gamma", 1.0))  # gamma 1: the image as it is
    assert summary(tf.constant(_batch(3))).shape[0] == 3
    assert detail(shift.Cell("blur", 0.8)) < sharp - 0.5
    assert detail(shift.Cell("blur", 2.0)) < detail(shift.Cell("blur", 0.8))
    assert detail(shift.Cell("sharpen", 1.0)) > sharp
