"""The consistency check inside the exported model (trainer/consistency.py)."""

import numpy as np
import tensorflow as tf
import tf_keras

from edge import spec
from trainer import consistency


def _toy_model(size=16):
    """Class 0 when the image's centre pixel is brighter than its neighbours' mean (a fine
    detail a blur removes), class 1 otherwise; and a per-image "ood_score"."""
    image = tf_keras.Input((size, size, 1))
    centre = image[:, size // 2, size // 2, 0]
    around = tf.reduce_mean(image[:, size // 2 - 2:size // 2 + 3, size // 2 - 2:size // 2 + 3, 0],
                            axis=1)
    around = tf.reduce_mean(around, axis=1)
    logit = (centre - around) / 4.0
    probabilities = tf.nn.softmax(tf.stack([logit, -logit], axis=1))
    ood = tf.reduce_mean(image, axis=[1, 2, 3]) / 255.0
    return tf_keras.Model(image, {spec.PROBABILITIES_KEY: probabilities,
                                  spec.OOD_SCORE_KEY: ood})


def test_outputs_are_the_images_own_and_stability_follows_the_views():
    model = _toy_model()
    checked = consistency.with_consistency(model)
    flat = np.full((1, 16, 16, 1), 100.0, np.float32)
    spot = flat.copy()
    spot[0, 8, 8, 0] = 140.0  # a one-pixel detail: blurred, it fades but keeps its sign
    faint = flat.copy()
    faint[0, 8, 8, 0] = 101.0
    faint[0, 7, 8, 0] = faint[0, 9, 8, 0] = faint[0, 8, 7, 0] = faint[0, 8, 9, 0] = 99.0
    images = np.concatenate([spot, faint, flat])
    own = model(images)
    outputs = checked(images)
    assert set(outputs) == {spec.PROBABILITIES_KEY, spec.OOD_SCORE_KEY, spec.STABILITY_KEY}
    np.testing.assert_allclose(outputs[spec.PROBABILITIES_KEY], own[spec.PROBABILITIES_KEY],
                               atol=1e-6)
    np.testing.assert_allclose(outputs[spec.OOD_SCORE_KEY], own[spec.OOD_SCORE_KEY], atol=1e-6)
    assert outputs[spec.STABILITY_KEY].shape == (3,)
    # The numpy twin from the views computed here agrees with the graph.
    views = consistency.ReacquiredViews()(images).numpy().reshape(3, 3, 16, 16, 1)
    view_probabilities = [model(v)[spec.PROBABILITIES_KEY].numpy() for v in views[1:]]
    np.testing.assert_allclose(
        outputs[spec.STABILITY_KEY],
        consistency.stability_of(own[spec.PROBABILITIES_KEY].numpy(), view_probabilities),
        atol=1e-5)
    stability = outputs[spec.STABILITY_KEY].numpy()
    assert stability[0] > 0  # a clear detail survives a mild blur: every view agrees
    # Centre above its 5x5 mean only by a hair its neighbours share: blurred, it is below it.
    assert own[spec.PROBABILITIES_KEY].numpy()[1].argmax() == 0
    assert stability[1] < 0


def test_views_keep_the_level_of_a_flat_image():
    flat = np.full((2, 12, 12, 1), 77.0, np.float32)
    views = consistency.ReacquiredViews()(flat).numpy()
    assert views.shape == (6, 12, 12, 1)
    np.testing.assert_allclose(views, 77.0, atol=1e-3)  # reflected edges: no dark rim
