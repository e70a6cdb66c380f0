"""Knowing when not to answer: an out-of-distribution score and calibrated probabilities.

Fitted after training and exported *inside* the model, so every TFLite variant carries them and
the device needs nothing but the model file and the thresholds in its manifest.

Out of distribution (Lee et al. 2018, "A Simple Unified Framework for Detecting
Out-of-Distribution Samples and Adversarial Attacks", extended to several layers):
- At each of `FEATURE_LAYERS` the feature map is summarised by per-channel spatial mean and
  standard deviation (the standardised input image by a coarse grid of cell means and stds).
- Each summary gets a Gaussian fitted on the train split: probabilistic PCA (the top
  `components` directions keep their own variance, the rest share one), tied covariance;
  the last layer's is class-conditional (distance to the nearest class mean).
- Each layer's Mahalanobis distance is divided by its eval-split `layer_quantile`; the score is
  the largest of those ratios, divided by its own eval quantile at `acceptance` (default 0.99).
  The image-quality summary has a cut of its own (`_set_scales`), not outvoted by the others.
  So `ood_score > 1` means "unlike the training images", and 99% of eval images score <= 1.
Several layers, because the final layer alone cannot both accept 99% of eval and flag
non-X-rays: early layers see what the late ones discard (flat fields, noise, texture, contrast
layout; docs/referral.md).

Calibration (Guo et al. 2017): one temperature T fitted on eval by minimising the negative
log-likelihood; the exported probabilities are softmax(log p / T). Arg-max, and so macro F1,
is unchanged. The default referral threshold `refer_below` is the lowest top-1 probability at
which eval images that pass the OOD check reach `target_accuracy` (selective prediction).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tf_keras
from tf_keras import layers

from edge import spec
from trainer import metrics
from trainer.constants import REFERRAL_LAYER_PREFIX

# (layer name, grid): the input image (standardised here) on an 8×8 grid, then B0 blocks from
# early to late. The image is read from the model's input, not from the stem's "standardise"
# layer: a second consumer there changes how the int8 converter folds the stem's affine ops,
# which then get quantized and cost int8 its accuracy (docs/referral.md).
INPUT_LAYER = "input"
# Image quality (DetailSummary): the standardised input's fine detail at two scales, per cell of
# a coarse grid. Blur, resampling and noise move it; the classifier's features may not.
DETAIL_LAYER = "input_detail"
FEATURE_LAYERS = (
    (INPUT_LAYER, 8),
    (DETAIL_LAYER, 4),
    ("block2b_add", 1),
    ("block3b_add", 1),
    ("block4c_add", 1),
    ("block5c_add", 1),
    ("block6d_add", 1),
    ("top_activation", 1),
)
CLASS_CONDITIONAL_LAYER = "top_activation"
# No direction of a layer Gaussian has less variance than this share of its leading one, so
# int8 rounding noise alone never scores as out of distribution
# (docs/decisions/referral-variance-floor.md).
VARIANCE_FLOOR = 1e-3
METHOD = ("multi-layer Mahalanobis (the input's cell means/stds and its two-scale detail "
          "energy, per-channel mean/std summaries of 6 EfficientNetB0 layers; "
          "probabilistic-PCA Gaussians fitted on train, class-conditional on the last layer), "
          "max of per-layer eval-quantile ratios")


@dataclasses.dataclass(frozen=True)
class ReferralConfig:
    acceptance: float = 0.99  # share of eval images the OOD threshold accepts
    layer_quantile: float = 0.99  # each layer's distance is divided by this eval quantile
    components: int = 64  # PCA directions with their own variance, per layer
    target_accuracy: float = 0.97  # among accepted eval images at or above refer_below
    batch_size: int = 64
    layers: tuple[tuple[str, int], ...] = FEATURE_LAYERS  # (layer, grid) pairs summarised
    own_cut_layers: tuple[str, ...] = (DETAIL_LAYER,)  # cut on their own (_set_scales)


@dataclasses.dataclass
class LayerGaussian:
    layer: str
    grid: int
    means: np.ndarray  # [classes or 1, D]
    directions: np.ndarray  # [D, k] orthonormal
    inverse_std: np.ndarray  # [k]: 1 / sqrt(eigenvalue)
    residual_inverse_variance: float  # 1 / mean of the remaining eigenvalues
    scale: float  # eval quantile of the distance: the layer's score is distance / scale


def fit_referral(model: tf_keras.Model, train_split, eval_split,
                 config: ReferralConfig = ReferralConfig(),
                 reacquire=None) -> tuple[tf_keras.Model, dict]:
    """Returns (the model with calibrated probabilities and an `ood_score` output, summary).

    The splits are streamed (trainer.data: a Split or a StreamingSplit), one pass each: the
    train pass accumulates each layer's per-class sums and sum of outer products, the eval
    pass keeps per image only its layer distances, probabilities and label. With `reacquire`
    (a batch function, trainer.acquisition), each batch is also seen re-acquired: the
    Gaussians and the OOD thresholds then cover those acquisitions; temperature and
    `refer_below` stay fitted on the images as they are."""
    feature_model = feature_extractor(model, with_probabilities=True, layers=config.layers)
    forward = tf.function(lambda x: feature_model(x, training=False))

    def versions(images):
        images = tf.constant(images)
        return [images] if reacquire is None else [images, reacquire(images)]

    statistics = [GaussianStatistics() for _ in config.layers]
    for images, labels in train_split.dataset(config.batch_size).as_numpy_iterator():
        for version in versions(images):
            *features, _ = forward(version)
            for (layer, _grid), stats, layer_features in zip(config.layers, statistics,
                                                             features, strict=True):
                stats.add(layer_features.numpy(),
                          labels if layer == CLASS_CONDITIONAL_LAYER else None)
    gaussians = [stats.gaussian(layer, grid, config.components)
                 for (layer, grid), stats in zip(config.layers, statistics, strict=True)]

    distances, probabilities, eval_labels, clean = [], [], [], []
    for images, labels in eval_split.dataset(config.batch_size).as_numpy_iterator():
        for index, version in enumerate(versions(images)):
            *features, batch_probabilities = forward(version)
            distances.append(np.stack([distance(g, f.numpy())
                                       for g, f in zip(gaussians, features, strict=True)], 1))
            clean.append(np.full(len(labels), index == 0))
            if index == 0:
                probabilities.append(batch_probabilities.numpy())
                eval_labels.append(labels)
    distances = np.concatenate(distances)
    clean = np.concatenate(clean)
    probabilities = np.concatenate(probabilities)
    eval_labels = np.concatenate(eval_labels)
    ood_scale = _set_scales(gaussians, distances, config)
    eval_ood = (distances / np.array([g.scale for g in gaussians])).max(axis=1)[clean] / ood_scale

    temperature = fit_temperature(probabilities, eval_labels)
    calibrated = apply_temperature(probabilities, temperature)
    accepted = eval_ood <= spec.DEFAULT_OOD_THRESHOLD
    refer_below, coverage, accuracy = selective_threshold(
        calibrated[accepted], eval_labels[accepted], config.target_accuracy)
    exported = with_referral(model, gaussians, ood_scale, temperature)
    summary = {
        "method": METHOD,
        "layers": [g.layer for g in gaussians],
        "ood_threshold": spec.DEFAULT_OOD_THRESHOLD,
        "acceptance_target": config.acceptance,
        "eval_acceptance": float(accepted.mean()),
        "fitted_on_reacquired": reacquire is not None,
        "temperature": temperature,
        "ece_eval_before": metrics.expected_calibration_error(probabilities, eval_labels),
        "ece_eval_after": metrics.expected_calibration_error(calibrated, eval_labels),
        "refer_below": refer_below,
        "target_accuracy": config.target_accuracy,
        "eval_coverage_at_refer_below": coverage,
        "eval_accuracy_at_refer_below": accuracy,
    }
    return exported, summary


def _set_scales(gaussians: list[LayerGaussian], distances: np.ndarray,
                config: ReferralConfig) -> float:
    """Sets each layer's scale and returns the OOD scale (score = max of distance / scale, over
    the OOD scale; 1 is the cut).

    Most layers share one cut: each distance over its eval `layer_quantile`, their maximum
    cut at the quantile that accepts `acceptance` of eval. Image quality (DETAIL_LAYER) gets a
    cut of its own at the same eval quantile as that shared one, so a blur or sharpening that
    moves only the detail summary is not outvoted by the other layers' spread. The common
    quantile is the smallest at which both cuts together accept `acceptance` of eval."""
    for index, gaussian in enumerate(gaussians):
        gaussian.scale = float(np.quantile(distances[:, index], config.layer_quantile))
    ratios = distances / np.array([g.scale for g in gaussians])
    own = [i for i, g in enumerate(gaussians) if g.layer in config.own_cut_layers]
    shared = [i for i in range(len(gaussians)) if i not in own]
    if not own or not shared:
        return float(np.quantile(ratios.max(axis=1), config.acceptance))
    combined = ratios[:, shared].max(axis=1)
    for quantile in np.linspace(config.acceptance, 1.0, 201):
        ood_scale = float(np.quantile(combined, quantile))
        cuts = {i: float(np.quantile(distances[:, i], quantile)) for i in own}
        accepted = combined <= ood_scale
        for i, cut in cuts.items():
            accepted &= distances[:, i] <= cut
        if accepted.mean() >= config.acceptance:
            break
    for i, cut in cuts.items():  # its distance / cut is its score: scale = cut / ood_scale
        gaussians[i].scale = cut / ood_scale
    return ood_scale


def feature_extractor(model: tf_keras.Model, with_probabilities: bool = False,
                      layers: tuple[tuple[str, int], ...] = FEATURE_LAYERS) -> tf_keras.Model:
    """The model's input → the per-layer summaries of `layers` (then the model's
    probabilities when `with_probabilities`)."""
    summaries = [_summarise(model, layer, grid) for layer, grid in layers]
    if with_probabilities:
        outputs = model.output
        summaries.append(outputs[spec.PROBABILITIES_KEY] if isinstance(outputs, dict)
                         else outputs)
    return tf_keras.Model(model.input, summaries, name="referral_features")


class FeatureSummary(layers.Layer):
    """[N, H, W, C] → [N, 2·C·grid²]: mean and std of each channel in each grid cell
    (of the per-image standardised input when `standardise`)."""

    def __init__(self, grid: int = 1, standardise: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.grid = grid
        self.standardise = standardise

    def call(self, inputs):
        if self.standardise:
            mean = tf.reduce_mean(inputs, axis=[1, 2, 3], keepdims=True)
            std = tf.sqrt(tf.reduce_mean(tf.square(inputs - mean), axis=[1, 2, 3],
                                         keepdims=True))
            inputs = (inputs - mean) / tf.maximum(std, 1.0)  # a flat image: std floored
        # Means by RESHAPE + MEAN, never AVERAGE_POOL_2D: int8 average pooling ties its input's
        # scale to its output's, and the converter then shrank the scale of the B0 residual ADD
        # it reads (clipping the classifier's own activations) or fake-quantized the pooled
        # image even when denylisted.
        mean = _grid_mean(inputs, self.grid)
        mean_square = _grid_mean(tf.square(inputs), self.grid)
        std = tf.sqrt(tf.maximum(mean_square - tf.square(mean), 0.0) + 1e-6)
        flat = [tf_keras.backend.batch_flatten(t) for t in (mean, std)]
        return tf.concat(flat, axis=1)

    def get_config(self):
        return super().get_config() | {"grid": self.grid, "standardise": self.standardise}


class DetailSummary(layers.Layer):
    """[N, H, W, 1] → [N, 3·grid²]: per grid cell of the image's interior (without its outer
    eighth), the log energy of the standardised image's Laplacian at one pixel and at two (a
    2×2-averaged copy), and of its gradient. Their levels
    and ratios are the image's sharpness, noise and effective resolution. Slices, sums and
    means only (4-D ops, float like every referral layer)."""

    def __init__(self, grid: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.grid = grid

    def call(self, inputs):
        # The interior only: a collimation border's edge is no image quality.
        size = int(inputs.shape[1])
        ring = size // 8
        inputs = inputs[:, ring:size - ring, ring:size - ring, :]
        mean = tf.reduce_mean(inputs, axis=[1, 2, 3], keepdims=True)
        std = tf.sqrt(tf.reduce_mean(tf.square(inputs - mean), axis=[1, 2, 3], keepdims=True))
        image = (inputs - mean) / tf.maximum(std, 1.0)
        half = _grid_mean(image, int(image.shape[1]) // 2)
        energies = [_laplacian(image), _laplacian(half),
                    tf.square(image[:, 1:, 1:, :] - image[:, :-1, 1:, :])
                    + tf.square(image[:, 1:, 1:, :] - image[:, 1:, :-1, :])]
        cells = [tf.math.log(_grid_mean(tf.square(e) if i < 2 else e, self.grid) + 1e-4)
                 for i, e in enumerate(energies)]
        return tf.concat([tf_keras.backend.batch_flatten(c) for c in cells], axis=1)

    def get_config(self):
        return super().get_config() | {"grid": self.grid}


def _laplacian(x):
    centre = x[:, 1:-1, 1:-1, :]
    return (4.0 * centre - x[:, :-2, 1:-1, :] - x[:, 2:, 1:-1, :]
            - x[:, 1:-1, :-2, :] - x[:, 1:-1, 2:, :])


def _grid_mean(inputs, grid: int):
    """[N, H, W, C] → [N, g, g, C]: the mean of each cell of a g×g grid (4-D ops only)."""
    size, channels = int(inputs.shape[1]), int(inputs.shape[3])
    cell = max(1, size // grid)
    cells = size // cell
    x = inputs[:, :cells * cell, :cells * cell, :]
    x = tf.reduce_mean(tf.reshape(x, [-1, cell, cells * cell, channels]), axis=1)
    x = tf.reduce_mean(tf.reshape(x, [-1, cells, cell, channels]), axis=2)
    return tf.reshape(x, [-1, cells, cells, channels])


def _summarise(model: tf_keras.Model, layer: str, grid: int):
    """`layer`'s FeatureSummary (the standardised image's for INPUT_LAYER), named for the
    Quantizer, which keeps every "referral_*" layer in float."""
    name = f"{REFERRAL_LAYER_PREFIX}_summary_{layer}"
    if layer == DETAIL_LAYER:
        return DetailSummary(grid, name=name)(model.input)
    output = model.input if layer == INPUT_LAYER else model.get_layer(layer).output
    return FeatureSummary(grid, standardise=layer == INPUT_LAYER, name=name)(output)


def fit_gaussian(layer: str, grid: int, features: np.ndarray, labels: np.ndarray | None,
                 components: int) -> LayerGaussian:
    """Probabilistic-PCA Gaussian (tied covariance; one mean per class when labels are given)."""
    statistics = GaussianStatistics()
    statistics.add(features, labels)
    return statistics.gaussian(layer, grid, components)


class GaussianStatistics:
    """What fit_gaussian needs, accumulated batch by batch: count, per-class counts and sums,
    and the sum of outer products, in float64 around the first batch's mean (so that large
    offsets do not cancel catastrophically)."""

    def __init__(self):
        self.shift: np.ndarray | None = None
        self.count = 0
        self.class_counts = np.zeros(0, np.int64)
        self.class_sums: np.ndarray | None = None
        self.outer: np.ndarray | None = None
        self.conditional = False

    def add(self, features: np.ndarray, labels: np.ndarray | None) -> None:
        features = np.asarray(features, np.float64)
        if self.shift is None:
            self.shift = features.mean(axis=0)
            self.outer = np.zeros((features.shape[1], features.shape[1]))
            self.class_sums = np.zeros((0, features.shape[1]))
            self.conditional = labels is not None
        labels = (np.zeros(len(features), np.int64) if labels is None
                  else np.asarray(labels, np.int64))
        classes = max(len(self.class_counts), int(labels.max()) + 1 if len(labels) else 0)
        if classes > len(self.class_counts):
            grow = classes - len(self.class_counts)
            self.class_counts = np.concatenate([self.class_counts, np.zeros(grow, np.int64)])
            self.class_sums = np.concatenate(
                [self.class_sums, np.zeros((grow, self.class_sums.shape[1]))])
        shifted = features - self.shift
        self.count += len(features)
        np.add.at(self.class_counts, labels, 1)
        np.add.at(self.class_sums, labels, shifted)
        self.outer += shifted.T @ shifted

    def gaussian(self, layer: str, grid: int, components: int) -> LayerGaussian:
        counts = self.class_counts.astype(np.float64)
        total_mean = self.class_sums.sum(axis=0) / max(1, self.count)
        means = np.stack([self.class_sums[c] / counts[c] if counts[c] else total_mean
                          for c in range(len(counts))])
        # Σ (x − μ_y)(x − μ_y)ᵀ = Σ x xᵀ − Σ_c n_c μ_c μ_cᵀ (in the shifted coordinates).
        scatter = self.outer - (means * counts[:, None]).T @ means
        covariance = scatter / max(1, self.count - len(means))
        dims = covariance.shape[0]
        eigenvalues, eigenvectors = np.linalg.eigh((covariance + covariance.T) / 2)
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues, eigenvectors = np.maximum(eigenvalues[order], 0.0), eigenvectors[:, order]
        k = int(min(components, dims - 1, max(1, self.count // 10)))
        floor = VARIANCE_FLOOR * max(float(eigenvalues[0]), 1e-12)
        residual = float(max(eigenvalues[k:].mean() if k < len(eigenvalues) else floor, floor))
        return LayerGaussian(
            layer=layer,
            grid=grid,
            means=(means + self.shift).astype(np.float32),
            directions=eigenvectors[:, :k].astype(np.float32),
            inverse_std=(1.0 / np.sqrt(np.maximum(eigenvalues[:k], floor))).astype(np.float32),
            residual_inverse_variance=1.0 / residual,
            scale=1.0,
        )


def distance(gaussian: LayerGaussian, features: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance to the nearest mean (numpy twin of MahalanobisScore)."""
    centered = features[:, None, :].astype(np.float64) - gaussian.means[None].astype(np.float64)
    projected = centered @ gaussian.directions.astype(np.float64)
    inside = np.square(projected * gaussian.inverse_std).sum(axis=-1)
    outside = np.square(centered).sum(axis=-1) - np.square(projected).sum(axis=-1)
    return (inside + np.maximum(outside, 0.0) * gaussian.residual_inverse_variance).min(axis=1)


class MahalanobisScore(layers.Layer):
    """distance(features) / scale for one LayerGaussian, as TFLite builtins (float)."""

    def __init__(self, means, directions, inverse_std, residual_inverse_variance, scale,
                 **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.means_value = np.asarray(means, np.float32)
        self.directions_value = np.asarray(directions, np.float32)
        self.inverse_std_value = np.asarray(inverse_std, np.float32)
        self.residual_inverse_variance = float(residual_inverse_variance)
        self.scale = float(scale)

    def build(self, input_shape):
        def constant(name, value):
            return self.add_weight(name=name, shape=value.shape, trainable=False,
                                   initializer=tf_keras.initializers.Constant(value))

        self.means = constant("means", self.means_value)
        self.directions = constant("directions", self.directions_value)
        self.inverse_std = constant("inverse_std", self.inverse_std_value)
        super().build(input_shape)

    def call(self, features):
        classes, dims = self.means_value.shape
        centered = features[:, None, :] - self.means[None]  # [N, C, D]
        flat = tf.reshape(centered, [-1, dims])
        projected = tf.matmul(flat, self.directions)  # [N·C, k]
        inside = tf.reduce_sum(tf.square(projected * self.inverse_std), axis=-1)
        outside = tf.reduce_sum(tf.square(flat), axis=-1) - tf.reduce_sum(
            tf.square(projected), axis=-1)
        total = inside + tf.maximum(outside, 0.0) * self.residual_inverse_variance
        nearest = tf.reduce_min(tf.reshape(total, [-1, classes]), axis=-1)
        return nearest / self.scale

    def get_config(self):
        return super().get_config() | {
            "means": self.means_value.tolist(),
            "directions": self.directions_value.tolist(),
            "inverse_std": self.inverse_std_value.tolist(),
            "residual_inverse_variance": self.residual_inverse_variance,
            "scale": self.scale,
        }


class LargestRatio(layers.Layer):
    """max over the per-layer scores, divided by its eval quantile: > 1 is out of distribution."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.scale = float(scale)

    def call(self, scores):
        return tf.reduce_max(tf.stack(scores, axis=1), axis=1) / self.scale

    def get_config(self):
        return super().get_config() | {"scale": self.scale}


class TemperatureScaling(layers.Layer):
    """softmax(log p / T): calibrated probabilities with the same arg-max."""

    def __init__(self, temperature: float, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.temperature = float(temperature)

    def call(self, probabilities):
        logits = tf.math.log(tf.maximum(probabilities, 1e-12))
        return tf.nn.softmax(logits / self.temperature, axis=-1)

    def get_config(self):
        return super().get_config() | {"temperature": self.temperature}


def with_referral(model: tf_keras.Model, gaussians: list[LayerGaussian], ood_scale: float,
                  temperature: float) -> tf_keras.Model:
    """The model with calibrated `probabilities` and an `ood_score` [N] output added."""
    layer_scores = []
    for gaussian in gaussians:
        summary = _summarise(model, gaussian.layer, gaussian.grid)
        layer_scores.append(MahalanobisScore(
            gaussian.means, gaussian.directions, gaussian.inverse_std,
            gaussian.residual_inverse_variance, gaussian.scale,
            name=f"{REFERRAL_LAYER_PREFIX}_distance_{gaussian.layer}")(summary))
    ood = LargestRatio(ood_scale,
                       name=f"{REFERRAL_LAYER_PREFIX}_{spec.OOD_SCORE_KEY}")(layer_scores)
    outputs = dict(model.output) if isinstance(model.output, dict) else {
        spec.PROBABILITIES_KEY: model.output}
    outputs[spec.PROBABILITIES_KEY] = TemperatureScaling(
        temperature, name=f"{REFERRAL_LAYER_PREFIX}_calibrated")(outputs[spec.PROBABILITIES_KEY])
    outputs[spec.OOD_SCORE_KEY] = ood
    return tf_keras.Model(model.input, outputs, name=f"{model.name}_with_referral")


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimising eval negative log-likelihood (golden-section on log T)."""
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, 1.0))
    labels = np.asarray(labels, np.int64)

    def nll(log_t):
        scaled = logits / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_softmax = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        return -log_softmax[np.arange(len(labels)), labels].mean()

    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def selective_threshold(probabilities: np.ndarray, labels: np.ndarray,
                        target_accuracy: float) -> tuple[float, float, float]:
    """(refer_below, coverage, accuracy): the lowest top-1 probability at which the images at
    or above it are right at least `target_accuracy` of the time. 1.0 (refer everything) when
    no threshold reaches it; 0.0 when every image already does."""
    if len(labels) == 0:
        return 1.0, 0.0, float("nan")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    order = np.argsort(-confidence, kind="stable")
    cumulative = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    reaching = np.nonzero(cumulative >= target_accuracy)[0]
    if len(reaching) == 0:
        return 1.0, 0.0, float(correct.mean())
    last = int(reaching[-1])
    if last == len(order) - 1:
        return 0.0, 1.0, float(cumulative[-1])
    return float(confidence[order[last]]), (last + 1) / len(order), float(cumulative[last])


def risk_coverage(probabilities: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Selective risk at each coverage (images answered, most confident first), for the report."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    order = np.argsort(-confidence, kind="stable")
    answered = np.arange(1, len(order) + 1)
    risk = 1.0 - np.cumsum(correct[order]) / answered
    return [{"coverage": float(n / len(order)), "risk": float(r),
             "threshold": float(confidence[order[n - 1]])}
            for n, r in zip(answered, risk, strict=True)]

