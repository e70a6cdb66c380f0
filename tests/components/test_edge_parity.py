"""Device parity on a real, trained model: the exported SavedModel fed encoded PNG bytes and the
float32 TFLite file run by the edge runner (Pillow decode + resize, LiteRT) give the same class
scores within 1e-4, and the attention maps agree too.

A trained model is needed: an untrained EfficientNet answers 0.25 for every class on any input,
which any two pipelines would agree on."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.lib import demo_data
from components.quantizer import QuantizerConfig, convert
from edge import spec
from edge.classifier import Classifier, ClassifierOptions
from trainer import data, train
from trainer.config import TrainConfig
from trainer.export import export_saved_model

SIZE = 64


@pytest.mark.slow
def test_float32_tflite_on_the_edge_matches_the_savedmodel(tmp_path):
    train_split = _phantoms(per_class=8, seed=7, size=SIZE)
    config = TrainConfig(model="attention", image_size=SIZE, epochs=6, batch_size=16,
                         dropout=0.0, augment_shift=0.0, augment_acquisition=0.0,
                         bn_recalibration_batches=2,
                         target_eval_macro_f1=0.9, verbose=0)
    model = train.train(config, train_split, train_split).model
    saved_model = str(tmp_path / "saved_model")
    export_saved_model(model, SIZE, saved_model)
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(convert("float32", saved_model, train_split, QuantizerConfig()))

    # Held-out phantoms at sizes other than the model's, so both sides really resize.
    paths = []
    for index, (name, side) in enumerate(zip(spec.CLASS_NAMES, (100, 256, 48, 299), strict=True)):
        path = tmp_path / f"{index}.png"
        Image.fromarray(demo_data.render_phantom(name, 500 + index, size=side, seed=11)).save(path)
        paths.append(path)

    serve = tf.saved_model.load(saved_model).signatures[spec.SERVING_SIGNATURE]
    expected = serve(**{spec.IMAGE_BYTES_KEY: tf.constant([p.read_bytes() for p in paths])})
    classifier = Classifier.open(tflite, ClassifierOptions(threads=1))
    predictions = [classifier.classify(classifier.load(p)) for p in paths]

    scores = np.stack([p.probabilities for p in predictions])
    reference = expected[spec.PROBABILITIES_KEY].numpy()
    assert reference.std() > 0.05, "the model is not trained: parity would prove nothing"
    np.testing.assert_allclose(scores, reference, atol=1e-4)
    for key in (k for k in expected if k.startswith(spec.ATTENTION_KEY_PREFIX)):
        maps = np.stack([p.attention[key] for p in predictions])
        np.testing.assert_allclose(maps, expected[key].numpy()[..., 0], atol=1e-4)


def _phantoms(per_class, seed, size):
    images, labels = [], []
    for label, name in enumerate(spec.CLASS_NAMES):
        for index in range(1, per_class + 1):
            images.append(demo_data.render_phantom(name, index, size=size, seed=seed))
            labels.append(label)
    return data.Split(np.stack(images).astype(np.float32)[..., None], np.array(labels))
