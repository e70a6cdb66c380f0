"""Exporting a trained model as a SavedModel with the three signatures of the device contract.

  serving_default   image_bytes: tf.string [N]  encoded PNG/JPEG  → outputs
  serving_examples  examples:    tf.string [N]  serialized tf.Example (TFMA's Evaluator)
  serving_tensor    image:       float32 [N, size, size, 1], 0..255 (TFLite conversion)

All three return the model's output dict ("probabilities", and "attention_1/2" or
"embedding" where the model has them). Decoding and resizing live in `preprocessing`, so the
bytes and examples signatures preprocess exactly as training did.
"""

import tensorflow as tf
import tf_keras

from edge import spec
from trainer import preprocessing


def export_saved_model(model: tf_keras.Model, image_size: int, export_dir: str) -> None:
    model.save(export_dir, save_format="tf", signatures=serving_signatures(model, image_size))


def serving_signatures(model: tf_keras.Model, image_size: int):
    @tf.function(input_signature=[
        tf.TensorSpec([None, image_size, image_size, 1], tf.float32, name=spec.IMAGE_TENSOR_KEY)
    ])
    def serve_tensor(image):
        return model(image, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=spec.IMAGE_BYTES_KEY)])
    def serve_image_bytes(image_bytes):
        images = preprocessing.preprocess_image_bytes_batch(image_bytes, image_size)
        return model(images, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        features = tf.io.parse_example(
            examples, {spec.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}
        )
        images = preprocessing.preprocess_image_bytes_batch(features[spec.IMAGE_KEY], image_size)
        return model(images, training=False)

    return {
        spec.SERVING_SIGNATURE: serve_image_bytes,
        spec.EXAMPLES_SIGNATURE: serve_examples,
        spec.TENSOR_SIGNATURE: serve_tensor,
    }
