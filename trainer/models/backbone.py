"""The shared stem: grayscale 0..255 in, EfficientNetB0 feature maps out.

Per-image standardisation comes first (without it, and with BatchNorm's default momentum, a
from-scratch B0 collapses to one class: docs/training.md). The standardised image is re-expressed on
the 0..255 scale Keras' EfficientNet expects (it rescales by 1/255 itself, and with ImageNet
weights normalises by ImageNet statistics); only pretrained weights need it replicated to three
channels.
"""

import tensorflow as tf
import tf_keras
from tf_keras import layers

from edge import spec
from trainer.config import TrainConfig

# Where the standardised image lands on the 0..255 scale: mid-gray, one std = 64 levels.
CANONICAL_MEAN = 127.5
CANONICAL_STD = 64.0
# Names of the EfficientNetB0 layers whose outputs the attention gates read: block6/block7 at
# stride 32 (7x7 at 224 px), block2/block3 at strides 4 and 8 where stride 32 leaves too few
# cells (16x16 and 8x8 at 64 px).
BLOCK2_OUTPUT = "block2b_add"  # 24 channels, stride 4
BLOCK3_OUTPUT = "block3b_add"  # 40 channels, stride 8
BLOCK6_OUTPUT = "block6d_add"  # 192 channels, stride 32
BLOCK7_OUTPUT = "block7a_project_bn"  # 320 channels, stride 32
FINAL_OUTPUT = "top_activation"  # 1280 channels, stride 32


def image_input(config: TrainConfig) -> tf_keras.Input:
    size = config.image_size
    return tf_keras.Input(shape=(size, size, 1), dtype=tf.float32, name=spec.IMAGE_TENSOR_KEY)


def efficientnet_b0(image: tf.Tensor, config: TrainConfig) -> tf_keras.Model:
    """EfficientNetB0 (no top) applied to a [N, s, s, 1] 0..255 tensor, standardised first.

    Returns the B0 model; its layers are wired into the caller's graph, so intermediate
    outputs (`model.get_layer(BLOCK6_OUTPUT).output`) can be read by the caller.
    """
    weights = _weights_argument(config.weights)
    standardised = PerImageStandardisation(name="standardise")(image)
    # Pretrained weights read three channels; from scratch, B0's stem convolution reads the gray
    # channel itself: the same function as three identical channels, a third of the work
    # (docs/decisions/gray-stem.md).
    stem_input = grayscale_to_rgb(standardised) if weights else standardised
    backbone = tf_keras.applications.EfficientNetB0(
        include_top=False, weights=weights, input_tensor=stem_input
    )
    set_batchnorm_momentum(backbone, config.bn_momentum)
    return backbone


def grayscale_to_rgb(image: tf.Tensor) -> tf.Tensor:
    return GrayToRGB(name="gray_to_rgb")(image)


def set_batchnorm_momentum(model: tf_keras.Model, momentum: float) -> None:
    """Faster moving averages: with few steps per epoch the default 0.99 lags the weights."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum


class GrayToRGB(layers.Layer):
    """[N, h, w, 1] → [N, h, w, 3], the gray channel copied three times.

    A broadcast multiply by ones, not a Concatenate, which LiteRT runs element by element
    outside XNNPACK (docs/decisions/gray-stem.md)."""

    def call(self, inputs):
        return inputs * tf.ones([3], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([3])


class PerImageStandardisation(layers.Layer):
    """(x - mean) / std per image, mapped back to CANONICAL_MEAN ± CANONICAL_STD."""

    def call(self, inputs):
        mean = tf.reduce_mean(inputs, axis=[1, 2, 3], keepdims=True)
        variance = tf.reduce_mean(tf.square(inputs - mean), axis=[1, 2, 3], keepdims=True)
        # A flat image has std 0: floor it at one gray level instead of dividing by zero.
        std = tf.maximum(tf.sqrt(variance), 1.0)
        return (inputs - mean) / std * CANONICAL_STD + CANONICAL_MEAN


def _weights_argument(weights: str):
    if weights in ("none", "", None):
        return None
    if weights == "imagenet":
        return "imagenet"
    if not tf.io.gfile.exists(weights):
        raise FileNotFoundError(f"EfficientNetB0 weights file not found: {weights}")
    return weights
