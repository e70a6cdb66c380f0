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


def test_deep_supervision_loss_is_the_mean_of_each_heads_cross_entropy():
    rng = np.random.default_rng(0)
    labels = tf_keras.utils.to_categorical([0, 2, 1], 4)
    heads = rng.dirichlet(np.ones(4), size=(3, 3)).astype(np.float32)  # [N, heads, C]
    plain = tf_keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction="none")

    loss = train.DeepSupervisionLoss(label_smoothing=0.1)
    per_head = np.stack([plain(labels, heads[:, h]).numpy() for h in range(3)], axis=1)
    assert float(loss(labels, heads)) == pytest.approx(per_head.mean(), rel=1e-5)
    # Class weights reach it as per-example weights on the mean over heads.
    weights = np.array([1.0, 3.0, 0.5], np.float32)
    assert float(loss(labels, heads, sample_weight=weights)) == pytest.approx(
        (per_head.mean(axis=1) * weights).mean(), rel=1e-5)


def test_deep_supervision_trains_the_stacked_heads_and_reports_the_exported_heads_accuracy():
    config = TrainConfig(model="attention", image_size=64, attention_aggregation="deep_sup")
    model, classifier = train.compiled_classifier(config, train_examples=8)
    assert tuple(classifier.output.shape) == (None, 3, 4)  # the exported head, then gate1, gate2
    labels = tf_keras.utils.to_categorical([0, 1], 4)
    stacked = np.array([[[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]],
                        [[0, 0, 1, 0], [0, 1, 0, 0], [0, 1, 0, 0]]], np.float32)
    # Judged on the first head only: right for example 0, wrong for example 1.
    np.testing.assert_allclose(train.main_head_accuracy(labels, stacked).numpy(), [1.0, 0.0])
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 1)).astype(np.float32)
    np.testing.assert_allclose(classifier(images)[:, 0].numpy(),
                               model(images)["probabilities"].numpy(), rtol=1e-5)
    history = classifier.fit(images, labels, epochs=1, verbose=0).history
    assert set(history) == {"loss", "accuracy"}  # the same keys as without deep supervision
