"""Baseline: EfficientNetB0 → global average pooling → dropout → dense softmax.

Standard B0 (Tan & Le 2019) on the grayscale image; see `backbone`.
"""

import tf_keras
from tf_keras import layers

from edge import spec
from trainer.config import TrainConfig
from trainer.models import backbone


def build_baseline(config: TrainConfig) -> tf_keras.Model:
    image = backbone.image_input(config)
    features = baseline_features(image, config)
    features = layers.Dropout(config.dropout, name="head_dropout")(features)
    probabilities = layers.Dense(
        config.num_classes, activation="softmax", name=spec.PROBABILITIES_KEY
    )(features)
    return tf_keras.Model(image, {spec.PROBABILITIES_KEY: probabilities}, name="baseline")


def baseline_features(image, config: TrainConfig):
    """The pooled 1280-d B0 feature vector of an image tensor."""
    b0 = backbone.efficientnet_b0(image, config)
    return layers.GlobalAveragePooling2D(name="gap")(b0.output)
