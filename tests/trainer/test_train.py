"""Training helpers: precise-BN recalibration, the optimiser schedule, config parsing."""

import numpy as np
import pytest
import tf_keras

from trainer import train
from trainer.config import TrainConfig


def test_recalibration_sets_moving_statistics_to_the_batch_average():
    inputs = tf_keras.Input((3,))
    outputs = tf_keras.layers.BatchNormalization(momentum=0.9)(inputs)
    model = tf_keras.Model(inputs, outputs)
    images = np.random.default_rng(0).normal(5.0, 2.0, (40, 3)).astype(np.float32)

    forward = train.recalibrate_batchnorm(model, images, 4, 8, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    batches = [images[rng.choice(40, size=8, replace=False)] for _ in range(4)]
    bn = model.layers[1]
    np.testing.assert_allclose(bn.moving_mean.numpy(),
                               np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               np.mean([b.var(axis=0) for b in batches], axis=0), rtol=1e-4)
    assert bn.momentum == 0.9  # training keeps its own momentum

    # The traced pass is reused and still uses momentum 0.
    train.recalibrate_batchnorm(model, images[:8], 1, 8, np.random.default_rng(2), forward)
    np.testing.assert_allclose(bn.moving_mean.numpy(), images[:8].mean(axis=0), rtol=1e-5)


def test_schedule_warms_up_then_decays():
    config = TrainConfig(epochs=10, learning_rate=1e-2, warmup_epochs=1)
    schedule = train.learning_rate_schedule(config, steps_per_epoch=20)
    assert isinstance(train.make_optimizer(config, 20), tf_keras.optimizers.AdamW)
    rates = [float(schedule(step)) for step in (0, 10, 20, 100, 199)]
    assert rates[0] == pytest.approx(0.0)
    assert rates[1] == pytest.approx(5e-3, rel=1e-3)
    assert rates[2] == pytest.approx(1e-2, rel=1e-3)
    assert rates[2] > rates[3] > rates[4] > 0


def test_custom_config_builds_the_dataclass_and_rejects_typos():
    config = TrainConfig.from_custom_config({"model": "siamese", "class_names": ["a", "b"]})
    assert config.num_classes == 2 and config.class_names == ("a", "b")
    with pytest.raises(ValueError, match="unknown custom_config keys"):
        TrainConfig.from_custom_config({"learning_rte": 1.0})
    with pytest.raises(ValueError, match="model"):
        TrainConfig(model="resnet")
