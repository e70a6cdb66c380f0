"""Each model can fit 32 demo phantoms (8 per class, 64 px) to training macro F1 >= 0.9 within
a bounded number of optimiser steps: the loss, labels, BatchNorm handling and head are wired
so that learning happens at all. A label-shuffled control must not look like success."""

import numpy as np
import pytest

from components.lib import demo_data
from edge import spec
from trainer import data, metrics, train
from trainer.config import TrainConfig

SIZE = 64
PER_CLASS = 8
MAX_EPOCHS = 30  # 2 steps per epoch at batch 16: at most 60 optimiser steps


@pytest.fixture(scope="module")
def phantoms():
    images, labels = [], []
    for label, name in enumerate(spec.CLASS_NAMES):
        for index in range(1, PER_CLASS + 1):
            images.append(demo_data.render_phantom(name, index, size=SIZE, seed=7))
            labels.append(label)
    return data.Split(np.stack(images).astype(np.float32)[..., None], np.array(labels))


def overfit_config(model, **overrides):
    return TrainConfig(
        model=model, image_size=SIZE, epochs=MAX_EPOCHS, batch_size=16, learning_rate=3e-3,
        warmup_epochs=1, dropout=0.0, augment_shift=0.0, augment_acquisition=0.0,
        bn_recalibration_batches=2,
        early_stopping_patience=MAX_EPOCHS, target_eval_macro_f1=0.9, verbose=0,
        pk_classes=4, pk_images=8, steps_per_epoch=2, embedding_dims=32, **overrides,
    )


@pytest.mark.slow
@pytest.mark.parametrize("model", ["baseline", "attention", "siamese"])
def test_model_overfits_32_images(phantoms, model):
    result = train.train(overfit_config(model), phantoms, phantoms)
    assert result.summary["epochs"] <= MAX_EPOCHS
    assert result.summary["best_eval_macro_f1"] >= 0.9, result.summary["history"]
    # The exported model's own class scores agree: its classifier was built after training.
    probabilities = result.model.predict(phantoms.images, verbose=0)[spec.PROBABILITIES_KEY]
    f1 = metrics.macro_f1(phantoms.labels, probabilities.argmax(axis=1), len(spec.CLASS_NAMES))
    assert f1 >= 0.9
