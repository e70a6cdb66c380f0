"""Acquisition augmentation: each training batch as other scanners would have made it.

The TensorFlow side of `edge/shift.py`'s families, drawn at random per image and applied to the
model-size float images (0..255) before the random shift: another resampling path (down to a
random fraction of the side and back, bilinear, area or bicubic), blur, edge enhancement,
a tone curve and contrast, sensor noise, JPEG re-compression and a collimation border. Each is
applied with probability `AcquisitionConfig.probability`, so the model also keeps seeing clean
images. `REFERRAL_ACQUISITION` is the milder range the referral's Gaussians are fitted on
(trainer/referral.py): what the model was trained to answer is not out of distribution.
Nothing here is exported.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

TRANSFORMS = ("resample", "blur", "sharpen", "gamma", "contrast", "noise", "jpeg", "collimation")


@dataclasses.dataclass(frozen=True)
class AcquisitionConfig:
    probability: float = 0.5  # per transform and image
    min_resample: float = 0.5  # resampled down to this fraction of the side at most
    max_blur: float = 1.5  # Gaussian sigma, model pixels
    max_sharpen: float = 2.0  # unsharp-mask amount
    max_gamma: float = 1.5  # gamma drawn log-uniformly in [1/max, max]
    max_contrast: float = 1.3  # contrast factor in [1/max, max]
    max_noise: float = 6.0  # Gaussian sigma, grey levels
    min_jpeg_quality: int = 30
    max_collimation: float = 0.12  # dark border, fraction of the side
    transforms: tuple[str, ...] = TRANSFORMS  # which of them are drawn
    # Transforms drawn more often than `probability`: the demo model is least robust to these.
    more_often: tuple[str, ...] = ("sharpen", "collimation")


# The referral's Gaussians also see train and eval images with a thin collimation border (and a
# small translation, REFERRAL_SHIFT): the input-cell statistics read any border as out of
# distribution, and the model is trained to answer one. Blur, noise and the rest stay out, so the
# detail summary keeps its tight range (docs/decisions/acquisition-shift.md).
REFERRAL_ACQUISITION = AcquisitionConfig(probability=0.5, max_collimation=0.03,
                                         transforms=("collimation",), more_often=())
REFERRAL_SHIFT = 0.03


def make_acquisition_augmenter(size: int, seed: int,
                               config: AcquisitionConfig = AcquisitionConfig()):
    """A function float32 [N, size, size, 1] (0..255) → the same batch re-acquired."""
    generator = tf.random.Generator.from_seed(seed + 7919)
    unknown = set(config.transforms) - set(TRANSFORMS)
    if unknown:
        raise ValueError(f"unknown acquisition transforms {sorted(unknown)}; known: {TRANSFORMS}")

    def maybe(name, images, changed):
        if name not in config.transforms:
            return images
        batch = tf.shape(images)[0]
        probability = (min(1.0, 2 * config.probability) if name in config.more_often
                       else config.probability)
        return tf.where(generator.uniform([batch, 1, 1, 1]) < probability,
                        changed(images, batch), images)

    def augment(images):
        images = maybe("resample", images, lambda x, n: _resample(x, size, generator, config))
        images = maybe("blur", images, lambda x, n: _gaussian_blur(
            x, generator.uniform([n], 0.3, config.max_blur)))
        images = maybe("sharpen", images, lambda x, n: x + generator.uniform(
            [n, 1, 1, 1], 0.2, config.max_sharpen) * (x - _gaussian_blur(x, tf.ones([n]))))
        images = maybe("gamma", images, lambda x, n: 255.0 * tf.pow(
            tf.clip_by_value(x, 0.0, 255.0) / 255.0, _log_uniform(generator, n, config.max_gamma)))
        images = maybe("contrast", images, lambda x, n: _contrast(
            x, _log_uniform(generator, n, config.max_contrast)))
        images = maybe("noise", images, lambda x, n: x + generator.uniform(
            [n, 1, 1, 1], 0.0, config.max_noise) * generator.normal(tf.shape(x)))
        images = tf.clip_by_value(images, 0.0, 255.0)
        images = maybe("jpeg", images, lambda x, n: _jpeg(x, size, generator, config))
        return maybe("collimation", images,
                     lambda x, n: _collimation(x, size, generator, config))

    return augment


def _log_uniform(generator, batch, largest):
    """[N, 1, 1, 1] factors log-uniform in [1/largest, largest]."""
    log = tf.math.log(largest)
    return tf.exp(generator.uniform([batch, 1, 1, 1], -log, log))


def _contrast(images, factor):
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return mean + (images - mean) * factor


def _resample(images, size, generator, config):
    """Down to a random fraction of the side by one of three filters, back up bilinearly."""
    fraction = generator.uniform([], config.min_resample, 1.0)
    small = tf.maximum(8, tf.cast(tf.round(fraction * size), tf.int32))
    method = generator.uniform([], 0, 3, tf.int32)
    down = tf.switch_case(method, [
        lambda: tf.image.resize(images, [small, small], "bilinear", antialias=True),
        lambda: tf.image.resize(images, [small, small], "area"),
        lambda: tf.image.resize(images, [small, small], "bicubic", antialias=True),
    ])
    up = tf.image.resize(down, [size, size], "bilinear")
    return tf.reshape(tf.clip_by_value(up, 0.0, 255.0), tf.shape(images))


def _gaussian_blur(images, sigma, radius: int = 4):
    """Each image blurred by its own sigma [N] (separable, reflect-padded)."""
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernels = tf.exp(-0.5 * tf.square(offsets[None, :] / sigma[:, None]))
    kernels /= tf.reduce_sum(kernels, axis=1, keepdims=True)  # [N, k]
    # The batch as channels: a depthwise convolution applies image i's kernel to channel i.
    stacked = tf.transpose(images, [3, 1, 2, 0])  # [1, H, W, N]
    padded = tf.pad(stacked, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    kernel_t = tf.transpose(kernels)  # [k, N]
    rows = tf.nn.depthwise_conv2d(padded, kernel_t[:, None, :, None], [1, 1, 1, 1], "VALID")
    both = tf.nn.depthwise_conv2d(rows, kernel_t[None, :, :, None], [1, 1, 1, 1], "VALID")
    return tf.transpose(both, [3, 1, 2, 0])


def _collimation(images, size, generator, config):
    """A dark border of a random width (per image) and grey level 0..20."""
    batch = tf.shape(images)[0]
    width = generator.uniform([batch, 1, 1, 1], 0.0, config.max_collimation) * size
    position = tf.range(size, dtype=tf.float32)
    distance = tf.minimum(position, size - 1 - position)  # to the nearest edge
    inside = ((distance[None, :, None, None] >= width) & (distance[None, None, :, None] >= width))
    level = generator.uniform([batch, 1, 1, 1], 0.0, 20.0)
    return tf.where(inside, images, level)


def _jpeg(images, size, generator, config):
    qualities = generator.uniform([tf.shape(images)[0]], config.min_jpeg_quality, 96, tf.int32)

    def one(args):
        image, quality = args
        recompressed = tf.image.adjust_jpeg_quality(tf.cast(tf.round(image), tf.uint8), quality)
        return tf.cast(tf.reshape(recompressed, [size, size, 1]), tf.float32)

    return tf.map_fn(one, (images, qualities),
                     fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32))
