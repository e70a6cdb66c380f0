"""Quantization-aware training: a fake-quantized copy of a trained model, fine-tuned briefly.

The Quantizer (components/quantizer.py) converts what `export_qat_saved_model` writes like any
other SavedModel; the model surgery (rebuilding the trainer's own classes, annotating layers)
lives here, next to the models it rebuilds.
"""

import numpy as np

from edge import spec
from trainer.summary_file import read_training_summary

# Layers QAT leaves in float: tfmot has no quantize config for the first three; an
# annotated Concatenate in the attention head makes the converter fail its same-scale rule.
QAT_SKIPPED_LAYERS = ("Rescaling", "Normalization", "Multiply", "Concatenate")


def export_qat_saved_model(saved_model_dir: str, images: np.ndarray, labels: np.ndarray,
                           export_dir: str, epochs: int = 2, learning_rate: float = 1e-4,
                           max_examples: int = 2000) -> None:
    """Fine-tunes a QAT copy of the Keras model on (images, labels); exports serving_tensor."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    supported = registry.Default8BitQuantizeRegistry()
    keras_model = keras_model_for_qat(saved_model_dir, images)
    # The project's own layers (e.g. per-image standardisation) stay float; tfmot must still
    # know their classes to rebuild the model.
    custom = {
        type(layer).__name__: type(layer)
        for layer in keras_model.layers
        if not type(layer).__module__.startswith("tf_keras")
    }

    def annotate(layer):
        name = type(layer).__name__
        if name in QAT_SKIPPED_LAYERS or name in custom or not supported.supports(layer):
            return layer
        return tfmot.quantization.keras.quantize_annotate_layer(layer)

    with tfmot.quantization.keras.quantize_scope(custom):
        annotated = tf_keras.models.clone_model(keras_model, clone_function=annotate)
        qat_model = tfmot.quantization.keras.quantize_apply(annotated)
    size = images.shape[1]
    # quantize_apply renames output layers ("quant_..."); the call keeps the original dict keys.
    outputs = qat_model(np.zeros((1, size, size, 1), np.float32), training=False)
    if not isinstance(outputs, dict) or spec.PROBABILITIES_KEY not in outputs:
        raise ValueError(f"QAT needs a dict output with {spec.PROBABILITIES_KEY!r}")
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate),
        loss={spec.PROBABILITIES_KEY: "sparse_categorical_crossentropy"},
    )
    qat_model.fit(
        images[:max_examples],
        {spec.PROBABILITIES_KEY: labels[:max_examples]},
        epochs=epochs,
        batch_size=16,
        verbose=0,
    )

    @tf.function(
        input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32, spec.IMAGE_TENSOR_KEY)]
    )
    def serve_tensor(image):
        result = qat_model(image, training=False)
        return {key: tf.identity(value) for key, value in result.items()}

    tf.saved_model.save(qat_model, export_dir, signatures={spec.TENSOR_SIGNATURE: serve_tensor})


def keras_model_for_qat(saved_model_dir: str, probe_images: np.ndarray):
    """The trained Keras model, rebuilt from the trainer's code when its config is known.

    A model revived from a SavedModel has generic stand-ins for the project's layers, which
    tfmot cannot clone; rebuilding from `training_summary.json`'s config and copying the weights
    gives the real classes. The copy is checked against the SavedModel's own outputs.
    """
    import tf_keras

    loaded = tf_keras.models.load_model(saved_model_dir, compile=False)
    config = (read_training_summary(saved_model_dir) or {}).get("config")
    if not config:
        return loaded
    if config.get("model") == "siamese":
        raise ValueError("QAT supports the baseline and attention models, not the Siamese one "
                         "(its nearest-prototype head has no quantized training path)")
    from trainer.config import TrainConfig
    from trainer.models import build_model

    rebuilt = build_model(TrainConfig.from_custom_config(config))
    rebuilt.set_weights(loaded.get_weights())
    probe = probe_images[:4]
    expected = loaded(probe, training=False)[spec.PROBABILITIES_KEY].numpy()
    actual = rebuilt(probe, training=False)[spec.PROBABILITIES_KEY].numpy()
    if not np.allclose(expected, actual, atol=1e-4):
        raise ValueError("the model rebuilt for QAT does not reproduce the SavedModel's outputs "
                         f"(max difference {np.abs(expected - actual).max():.4g})")
    return rebuilt
