"""The consistency check: the model's answer on the image against its answers on mild
re-acquisitions of it, inside the exported model.

An image whose class evidence sits at the edge of what its acquisition kept (a soft detector,
strong edge enhancement, a noisy exposure) changes class when it is blurred or sharpened a
little more; an image the model reads well does not. `with_consistency` runs the model on the
image and on `VIEWS` of it (one batch: the views stacked behind the images), returns the
image's own outputs and adds `stability` [N]: the smallest margin, over the views, of the
image's top class over the view's best other class. Below the manifest's `unstable_below`
(0: some view answered another class) the device refers the image as `unstable`
(edge.classifier.decide). Each view costs one more forward pass.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras
from tf_keras import layers

from edge import spec
from trainer.constants import REFERRAL_LAYER_PREFIX

# (name, parameter) on the model's grid: a Gaussian blur of σ pixels, an unsharp mask of that
# amount (σ of the same blur). Mild: within what the Trainer's acquisition augmentation draws.
VIEWS = (("blur", 0.7), ("sharpen", 1.0))
BLUR_SIGMA = 0.7
UNSTABLE_BELOW = 0.0  # a view's top class differs from the image's
METHOD = "smallest top-class margin over a blurred (σ 0.7 px) and a sharpened (unsharp 100%) view"


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-x * x / (2 * sigma * sigma))
    weights /= weights.sum()
    return np.outer(weights, weights).astype(np.float32)


class ReacquiredViews(layers.Layer):
    """[N, H, W, 1] 0..255 → [(1 + views)·N, H, W, 1]: the images, then each view of them."""

    def __init__(self, views=VIEWS, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.views = tuple((str(name), float(value)) for name, value in views)

    def call(self, images):
        stacked = [images]
        for name, value in self.views:
            blurred = self._blur(images, BLUR_SIGMA if name == "sharpen" else value)
            if name == "blur":
                stacked.append(blurred)
            elif name == "sharpen":
                stacked.append(tf.clip_by_value(images + value * (images - blurred), 0.0, 255.0))
            else:
                raise ValueError(f"unknown view {name!r}; choose blur or sharpen")
        return tf.concat(stacked, axis=0)

    @staticmethod
    def _blur(images, sigma):
        kernel = gaussian_kernel(sigma)
        radius = kernel.shape[0] // 2
        padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]],
                        mode="REFLECT")  # edges keep their level: no dark rim
        return tf.nn.depthwise_conv2d(padded, tf.constant(kernel[:, :, None, None]),
                                      strides=[1, 1, 1, 1], padding="VALID")

    def get_config(self):
        return super().get_config() | {"views": [list(view) for view in self.views]}


class FirstOfStack(layers.Layer):
    """[(1 + views)·N, ...] → [N, ...]: the images' own rows."""

    def __init__(self, copies: int, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.copies = int(copies)

    def call(self, stacked):
        shape = [self.copies, -1] + [int(d) for d in stacked.shape[1:]]
        return tf.reshape(stacked, shape)[0]

    def get_config(self):
        return super().get_config() | {"copies": self.copies}


class ViewStability(layers.Layer):
    """[(1 + views)·N, C] probabilities → [N]: min over views of p_view[top] − max of
    p_view over the other classes, top the image's own arg-max (> 0: every view agrees)."""

    def __init__(self, copies: int, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.copies = int(copies)

    def call(self, probabilities):
        classes = int(probabilities.shape[-1])
        stack = tf.reshape(probabilities, [self.copies, -1, classes])
        image = stack[0]
        top = tf.one_hot(tf.argmax(image, axis=-1), classes)  # ties: the first, as np.argmax
        views = stack[1:]
        top_share = tf.reduce_sum(views * top, axis=-1)
        other = tf.reduce_max(views - 2.0 * top, axis=-1)  # the top class pushed below 0
        return tf.reduce_min(top_share - other, axis=0)

    def get_config(self):
        return super().get_config() | {"copies": self.copies}


def with_consistency(model: tf_keras.Model, views=VIEWS) -> tf_keras.Model:
    """The model's outputs on the image, plus `stability` [N] from its answers on `views`.
    Every layer added is named "referral_*": the int8 Quantizer keeps them in float."""
    copies = 1 + len(views)
    image = tf_keras.Input(shape=model.input.shape[1:], name=spec.IMAGE_TENSOR_KEY)
    stacked = ReacquiredViews(views, name=f"{REFERRAL_LAYER_PREFIX}_views")(image)
    outputs = model(stacked)
    if not isinstance(outputs, dict):
        outputs = {spec.PROBABILITIES_KEY: outputs}
    own = {key: FirstOfStack(copies, name=f"{REFERRAL_LAYER_PREFIX}_image_{key}")(value)
           for key, value in outputs.items()}
    own[spec.STABILITY_KEY] = ViewStability(
        copies, name=f"{REFERRAL_LAYER_PREFIX}_{spec.STABILITY_KEY}")(
        outputs[spec.PROBABILITIES_KEY])
    return tf_keras.Model(image, own, name=f"{model.name}_with_consistency")


def summary(model: tf_keras.Model, eval_split, batch_size: int = 64) -> dict:
    """The training summary's consistency record: the rule, and on eval the share of images
    it calls unstable and the accuracy of the rest (which the referral's target is about)."""
    forward = tf.function(lambda x: model(x, training=False))
    stable, right = [], []
    for images, labels in eval_split.dataset(batch_size).as_numpy_iterator():
        outputs = forward(tf.constant(images))
        stable.append(outputs[spec.STABILITY_KEY].numpy() >= UNSTABLE_BELOW)
        right.append(outputs[spec.PROBABILITIES_KEY].numpy().argmax(axis=1) == labels)
    stable, right = np.concatenate(stable), np.concatenate(right)
    return {
        "consistency_method": METHOD,
        "consistency_views": [list(view) for view in VIEWS],
        "unstable_below": UNSTABLE_BELOW,
        "eval_unstable": float(1.0 - stable.mean()) if len(stable) else float("nan"),
        "eval_accuracy_stable": float(right[stable].mean()) if stable.any() else float("nan"),
        "eval_accuracy_unstable": float(right[~stable].mean()) if (~stable).any()
        else float("nan"),
    }


def stability_of(probabilities: np.ndarray, view_probabilities: list[np.ndarray]) -> np.ndarray:
    """numpy twin of ViewStability: images' [N, C] and each view's [N, C] → [N]."""
    top = np.eye(probabilities.shape[1])[probabilities.argmax(axis=1)]
    margins = [np.sum(view * top, axis=1) - np.max(view - 2.0 * top, axis=1)
               for view in view_probabilities]
    return np.min(margins, axis=0)
