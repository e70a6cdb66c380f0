"""The three serving signatures of an exported SavedModel agree with each other."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from edge import spec
from trainer import export, preprocessing
from trainer.config import TrainConfig
from trainer.models import build_model, siamese

SIZE = 64


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def serialized_example(image_bytes):
    feature = {
        spec.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        spec.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["siamese"])
def test_bytes_examples_and_tensor_signatures_agree(tmp_path, kind):
    config = TrainConfig(model=kind, image_size=SIZE, embedding_dims=8)
    model = build_model(config)
    if kind == "siamese":
        prototypes = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
        model = siamese.with_classifier(model, siamese.PrototypeClassifier(prototypes, 0.1))
    export.export_saved_model(model, SIZE, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))

    rng = np.random.default_rng(1)
    encoded = [png(rng.integers(0, 256, (80, 90))), png(rng.integers(0, 256, (64, 64)))]
    by_bytes = loaded.signatures[spec.SERVING_SIGNATURE](
        **{spec.IMAGE_BYTES_KEY: tf.constant(encoded)})
    by_example = loaded.signatures[spec.EXAMPLES_SIGNATURE](
        examples=tf.constant([serialized_example(e) for e in encoded]))
    tensor = preprocessing.preprocess_image_bytes_batch(tf.constant(encoded), SIZE)
    by_tensor = loaded.signatures[spec.TENSOR_SIGNATURE](**{spec.IMAGE_TENSOR_KEY: tensor})

    expected_keys = {spec.PROBABILITIES_KEY}
    if kind == "siamese":
        expected_keys |= {spec.EMBEDDING_KEY}
        if config.siamese_backbone == "attention":
            expected_keys |= {"attention_1", "attention_2"}
    assert set(by_bytes) == expected_keys
    for key in expected_keys:
        np.testing.assert_allclose(by_bytes[key].numpy(), by_tensor[key].numpy(), atol=1e-5)
        np.testing.assert_allclose(by_example[key].numpy(), by_tensor[key].numpy(), atol=1e-5)
    assert by_bytes[spec.PROBABILITIES_KEY].shape == (2, 4)
