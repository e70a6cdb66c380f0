"""Attention-gated EfficientNetB0: grid attention gates (Schlemper et al. 2018, "Attention-Gated
Networks for Improving Ultrasound Scan Plane Detection").

Two gates read intermediate B0 feature maps x and are gated by the final 1280-channel map g. At
224 px they read block6 (192 channels) and block7 (320 channels), both on g's 1/32 grid (7x7).
Where that grid would have fewer than `attention_min_cells` cells a side (2x2 at the demo's
64 px: one cell per lung quadrant, nothing to point with) they read block2 (24 channels, 1/4
grid: 16x16 at 64 px, each cell seeing 19 px) and block3 (40 channels, 1/8 grid: 8x8), and g
is resized up to each: at 64 px a block4 cell sees nearly the whole image, too coarse to point
with (docs/decisions/attention-gates.md).
Each gate:

    θ = strided conv(x)                 # x brought to the gating grid
    φ = 1×1 conv(g), resized to θ's grid
    f = leaky-ReLU(θ + φ)
    ψ = 1×1 conv(f) → 1 channel, averaged over 3×3 cells on grids finer than g's
    α = softmax over positions (ψ)      # sums to 1 (or a per-cell sigmoid); the image's
                                        # outer band (attention_border_fraction) gets 0
    y = α (upsampled to x's grid) · x
    ĝ = W·Σ_spatial y                   # W: dense, no bias (a 1×1 conv commuted with Σ)

and the head classifies concat(BN(ĝ1), BN(ĝ2)): with softmax weights and no ungated GAP(g)
beside them (`attention_global_pool`), the class has to come through what each gate chose to
look at (how often that is the finding: the pointing game, components/lib/attention_score.py).
The attention maps α are extra outputs so the edge runner can draw them. θ's stride
(`attention_subsample`) defaults to 1: the maps are already coarse, and the paper's 2 would
leave a 1×1 map at 64 px.
"""

import tensorflow as tf
import tf_keras
from tf_keras import layers

from edge import spec
from trainer.config import TrainConfig
from trainer.models import backbone


def build_attention_model(config: TrainConfig) -> tf_keras.Model:
    return build_attention_model_and_auxiliary_heads(config)[0]


def build_attention_model_and_auxiliary_heads(config: TrainConfig):
    """(the export model, [per-gate class probabilities]): the second list is empty unless
    `attention_aggregation` is "deep_sup", and those heads are for the training loss only;
    the export model, its weights and its outputs are the same either way."""
    image = backbone.image_input(config)
    branches, attention_maps = gated_branches(image, config)
    features = layers.Concatenate(name="attention_concat")(list(branches.values()))
    features = layers.Dropout(config.dropout, name="head_dropout")(features)
    probabilities = layers.Dense(
        config.num_classes, activation="softmax", name=spec.PROBABILITIES_KEY
    )(features)
    outputs = {spec.PROBABILITIES_KEY: probabilities, **attention_maps}
    model = tf_keras.Model(image, outputs, name="attention")
    auxiliary = []
    if config.attention_aggregation == "deep_sup":
        for name, branch in branches.items():
            dropped = layers.Dropout(config.dropout, name=f"{name}_dropout")(branch)
            auxiliary.append(layers.Dense(config.num_classes, activation="softmax",
                                          name=f"{name}_classifier")(dropped))
    return model, auxiliary


def attention_features(image, config: TrainConfig, global_pool: bool | None = None):
    """Returns (concat(ĝ1, ĝ2[, GAP(g)]), {"attention_1": α1, "attention_2": α2}): [N, 64] at
    the demo's size (block2 + block3 channels), [N, 512] at 224 px; + 1280 with the GAP branch
    (global_pool; default config.attention_global_pool)."""
    branches, attention_maps = gated_branches(image, config, global_pool)
    return layers.Concatenate(name="attention_concat")(list(branches.values())), attention_maps


def gated_branches(image, config: TrainConfig, global_pool: bool | None = None):
    """({"gate1": BN(ĝ1), "gate2": BN(ĝ2)[, "gap": BN(GAP(g))]}, the attention maps)."""
    if global_pool is None:
        global_pool = config.attention_global_pool
    b0 = backbone.efficientnet_b0(image, config)
    gating = b0.get_layer(backbone.FINAL_OUTPUT).output
    branches, attention_maps = {}, {}
    for index, layer_name in enumerate(gated_layer_names(config), 1):
        gated, alpha = grid_attention_gate(
            b0.get_layer(layer_name).output, gating, config, name=f"gate{index}"
        )
        branches[f"gate{index}"] = gated
        key = f"{spec.ATTENTION_KEY_PREFIX}{index}"
        attention_maps[key] = layers.Activation("linear", name=key)(alpha)
    if global_pool:
        branches["gap"] = layers.GlobalAveragePooling2D(name="gap")(gating)
    # One BatchNorm per branch, before the concat: the sigmoid gates' spatial sums grow with the
    # map's area and would start the head with large, confident logits, and int8 gives a concat
    # one scale for all its inputs, which un-normalised branches of different ranges share badly.
    normalised = {
        name: layers.BatchNormalization(momentum=config.bn_momentum,
                                        name=f"{name}_features_bn")(branch)
        for name, branch in branches.items()}
    return normalised, attention_maps


def gated_layer_names(config: TrainConfig) -> tuple[str, str]:
    """The two B0 outputs the gates read at this image size (see the module docstring)."""
    if config.image_size // 32 >= config.attention_min_cells:
        return backbone.BLOCK6_OUTPUT, backbone.BLOCK7_OUTPUT
    return backbone.BLOCK2_OUTPUT, backbone.BLOCK3_OUTPUT


def grid_attention_gate(x, g, config: TrainConfig, name: str):
    """One gate: returns (ĝ [N, C_x], α for display [N, h_x, w_x, 1] in 0..1)."""
    inter = config.attention_channels
    stride = config.attention_subsample
    theta = layers.Conv2D(inter, stride, strides=stride, use_bias=False, name=f"{name}_theta")(x)
    phi = layers.Conv2D(inter, 1, name=f"{name}_phi")(g)
    phi = _resize_to(phi, theta, name=f"{name}_phi_resize")
    f = layers.LeakyReLU(0.2, name=f"{name}_act")(layers.Add(name=f"{name}_add")([theta, phi]))
    psi = layers.Conv2D(1, 1, name=f"{name}_psi")(f)
    if config.attention_smoothing > 1 and psi.shape[1] > config.image_size // 32:
        # Finer than B0's last grid (block2/block3 at the demo's size: cells of 4 and 8 px,
        # smaller than a finding), the peak cell alone sits on a finding's rim as often as in
        # it; averaged over k×k cells the evidence peaks at its centre
        # (docs/decisions/attention-gates.md).
        psi = layers.AveragePooling2D(config.attention_smoothing, strides=1, padding="same",
                                      name=f"{name}_smooth")(psi)

    if config.attention_normalisation == "sigmoid":
        alpha = layers.Activation("sigmoid", name=f"{name}_sigmoid")(psi)
    else:
        border = int(config.attention_border_fraction * psi.shape[1])
        if border:
            interior = layers.Cropping2D(border, name=f"{name}_interior")(psi)
            alpha = SpatialSoftmax(name=f"{name}_softmax")(interior)
            alpha = layers.ZeroPadding2D(border, name=f"{name}_border")(alpha)
        else:
            alpha = SpatialSoftmax(name=f"{name}_softmax")(psi)
    alpha = _resize_to(alpha, x, name=f"{name}_alpha_resize")

    # Σ α·x first, then W (the paper's W·Σ α·x): a per-cell offset before the sum would be
    # summed 256 times in int8 at 16x16 (docs/decisions/attention-gates.md).
    y = layers.Multiply(name=f"{name}_apply")([x, alpha])
    pooled = SpatialSum(name=f"{name}_sum")(y)
    gated = layers.Dense(x.shape[-1], use_bias=False, name=f"{name}_w")(pooled)

    if config.attention_normalisation == "softmax":
        # Softmax weights sum to 1; scale to the map's peak so every model draws 0..1 maps.
        alpha = ScaleToPeak(name=f"{name}_display")(alpha)
    return gated, alpha


def _resize_to(tensor, reference, name: str):
    """Bilinear resize of `tensor` to `reference`'s spatial grid (no-op when equal)."""
    height, width = reference.shape[1], reference.shape[2]
    if (tensor.shape[1], tensor.shape[2]) == (height, width):
        return tensor
    return layers.Resizing(height, width, interpolation="bilinear", name=name)(tensor)


class StackHeads(layers.Layer):
    """[N, C] per head → [N, heads, C]: deep supervision's one training output (one output
    keeps Keras' class weights, which it supports for single-output models only)."""

    def call(self, inputs):
        return tf.stack(inputs, axis=1)


class SpatialSoftmax(layers.Layer):
    """Softmax over all positions of a [N, h, w, 1] map: the attention weights sum to 1."""

    def call(self, inputs):
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, [shape[0], -1])
        return tf.reshape(tf.nn.softmax(flat, axis=-1), shape)


class SpatialSum(layers.Layer):
    """[N, h, w, C] → [N, C]: the gate's attention-weighted sum of features."""

    def call(self, inputs):
        return tf.reduce_sum(inputs, axis=[1, 2])


class ScaleToPeak(layers.Layer):
    """Divides each map by its maximum so it spans 0..1 for display."""

    def call(self, inputs):
        peak = tf.reduce_max(inputs, axis=[1, 2, 3], keepdims=True)
        return inputs / tf.maximum(peak, 1e-12)
