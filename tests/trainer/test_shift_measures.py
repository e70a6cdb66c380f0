"""The acquisition-shift gate fails a small model trained without the acquisition-shift measures
and passes the same model trained with them (docs/decisions/acquisition-shift.md).

The task is built to have the phantoms' trap in miniature: the class is where a bright disc
sits (left or right), and in images drawn at the model's size one class also carries a fine
texture that a resize or a blur removes. Drawn at the model's size only and trained without
acquisition augmentation, the model and its referral lean on that texture: under blur or
another source size it is wrong or, with the input summaries' referral, refers everything.
With the measures — images drawn at mixed sizes (the texture
then blurs away when resized, as it does for real acquisitions), the Trainer's acquisition
augmentation, and the referral's detail summary — it must read the disc, or refer.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from PIL import Image

from components.lib import shift_gate
from edge import preprocess, spec
from trainer import data, referral
from trainer.acquisition import REFERRAL_ACQUISITION, REFERRAL_SHIFT

SIZE = 32
CLASSES = 2
GATE = shift_gate.ShiftGateConfig(families=("source_resolution", "blur"), min_ok_accuracy=0.9)


def _drawn(label: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """One image drawn at `side` px: a disc left (label 0) or right (1) of centre, on a smooth
    background; label 0 also carries a one-pixel checker texture at the drawn grid."""
    yy, xx = (np.mgrid[0:side, 0:side] + 0.5) / side
    centre_x = (0.3 if label == 0 else 0.7) + rng.uniform(-0.06, 0.06)
    centre_y = 0.5 + rng.uniform(-0.15, 0.15)
    disc = ((xx - centre_x) ** 2 + (yy - centre_y) ** 2) < rng.uniform(0.12, 0.16) ** 2
    image = 90 + 30 * yy + rng.normal(0, 2, (side, side)) + 70 * disc
    if label == 0:
        image += 28 * (((np.arange(side)[:, None] + np.arange(side)[None, :]) % 2) - 0.5)
    return np.clip(image, 0, 255).astype(np.uint8)


def _images(count: int, seed: int, mixed: bool):
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for index in range(count):
        label = index % CLASSES
        side = int(round(np.exp(rng.uniform(np.log(SIZE), np.log(4 * SIZE))))) if mixed else SIZE
        images.append(_drawn(label, side, rng))
        labels.append(label)
    return images, np.array(labels)


def _split(images, labels):
    return data.Split(np.stack([preprocess.to_model_input(g, SIZE) for g in images]), labels)


def _model() -> tf_keras.Model:
    image = tf_keras.Input((SIZE, SIZE, 1), name=spec.IMAGE_TENSOR_KEY)
    x = tf_keras.layers.Rescaling(1 / 255.0)(image)
    x = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = tf_keras.layers.MaxPooling2D()(x)
    x = tf_keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = tf_keras.layers.MaxPooling2D()(x)
    x = tf_keras.layers.Conv2D(16, 3, padding="same", activation="relu",
                               name=referral.CLASS_CONDITIONAL_LAYER)(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    probabilities = tf_keras.layers.Dense(CLASSES, activation="softmax")(x)
    return tf_keras.Model(image, {spec.PROBABILITIES_KEY: probabilities})


def _trained(measures: bool):
    tf_keras.utils.set_random_seed(5)
    train_split = _split(*_images(240, 1, mixed=measures))
    eval_split = _split(*_images(80, 2, mixed=measures))
    model = _model()
    model.compile(tf_keras.optimizers.Adam(3e-3),
                  {spec.PROBABILITIES_KEY: "categorical_crossentropy"})
    batches = data.training_dataset(train_split, 32, seed=3, shift=0.0, flip=False,
                                    num_classes=CLASSES, acquisition=0.5 if measures else 0.0)
    model.fit(batches.map(lambda x, y: (x, {spec.PROBABILITIES_KEY: y})).repeat(),
              steps_per_epoch=8, epochs=25, verbose=0)
    layers = ((referral.INPUT_LAYER, 8), (referral.CLASS_CONDITIONAL_LAYER, 1))
    if measures:
        layers += ((referral.DETAIL_LAYER, 4),)
    reacquire = (data.make_augmenter(SIZE, REFERRAL_SHIFT, False, 4, REFERRAL_ACQUISITION)
                 if measures else None)
    return referral.fit_referral(model, train_split, eval_split,
                                 referral.ReferralConfig(components=16, layers=layers),
                                 reacquire)


def _battery(model, summary, images, labels):
    def predict(inputs):
        outputs = model(tf.constant(inputs), training=False)
        return (outputs[spec.PROBABILITIES_KEY].numpy(), outputs[spec.OOD_SCORE_KEY].numpy())

    rows = shift_gate.measure({"m": predict}, images, labels, summary, SIZE, GATE)["m"]
    return rows, shift_gate.verdict(rows, summary, GATE)


def test_the_task_images_carry_the_texture_only_at_their_drawn_grid():
    rng = np.random.default_rng(0)
    native, large = _drawn(0, SIZE, rng), _drawn(0, 4 * SIZE, rng)
    resized = np.asarray(Image.fromarray(large).resize((SIZE, SIZE), Image.Resampling.BOX))
    assert np.abs(np.diff(native.astype(float), axis=1)).mean() > 20
    assert np.abs(np.diff(resized.astype(float), axis=1)).mean() < 8


@pytest.mark.slow
def test_the_gate_fails_without_the_measures_and_passes_with_them():
    images, labels = _images(64, 9, mixed=True)  # held out, as X-ray units deliver them
    without_rows, without = _battery(*_trained(measures=False), images, labels)
    with_rows, with_measures = _battery(*_trained(measures=True), images, labels)
    table = {a["cell"]: (a["acceptance"], a["accuracy_ok"], b["acceptance"], b["accuracy_ok"])
             for a, b in zip(without_rows, with_rows, strict=True)}
    # Without: every other source size is referred (measured: all of it), which is safe but
    # no answer at a clinic whose images all arrive larger than the model's input.
    assert not without["passed"], table
    assert any("source-resolution acceptance" in failure for failure in without["failures"])
    assert with_measures["passed"], (with_measures["failures"], table)
    assert all(row["acceptance"] >= 0.9 and row["accuracy_ok"] >= 0.9
               for row in with_rows if row["family"] == "source_resolution"), table
