"""The TensorFlow side of the device contract: encoded image → model input tensor.

Defined once here and used by training, by the exported serving signatures and (mirrored with
Pillow) by `edge/preprocess.py`, whose parity test pins both to the same numbers:
decode to 8-bit grayscale → bilinear resize with antialiasing to size×size → float32 0..255,
shape [size, size, 1]. Standardisation happens inside the Keras model, so a TFLite file takes
plain 0..255 grayscale.
"""

import tensorflow as tf


def preprocess_image_bytes(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """One encoded PNG/JPEG (scalar tf.string) → float32 [size, size, 1] in 0..255."""
    return resize_gray(decode_gray(image_bytes), size)


def preprocess_image_bytes_batch(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """A [N] tf.string batch of encoded images → float32 [N, size, size, 1]."""
    return tf.map_fn(
        lambda one: preprocess_image_bytes(one, size),
        image_bytes,
        fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32),
    )


def decode_gray(image_bytes: tf.Tensor) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP/GIF → uint8 [h, w, 1]; colour images are converted to gray."""
    image = tf.io.decode_image(image_bytes, channels=1, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 1])
    return image


def resize_gray(image: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 or float [h, w, 1] → float32 [size, size, 1], bilinear with antialiasing."""
    resized = tf.image.resize(
        tf.cast(image, tf.float32), [size, size], method="bilinear", antialias=True
    )
    # A triangle filter cannot overshoot, but float rounding can leave 255.00002.
    return tf.clip_by_value(resized, 0.0, 255.0)
