"""Builds the tiny golden .tflite models the edge tests run on (no TensorFlow needed there).

Run in the pipeline venv when the export contract (edge/spec.py tensor names) changes:

    TF_USE_LEGACY_KERAS=1 python tests/edge/make_golden_models.py

Writes tests/edge/data/: golden_<variant>.tflite for float32, float16, dynamic-range and three
int8 flavours (float, int8 and uint8 I/O), a `plain_fp32.tflite` without attention,
`referral_fp32.tflite` (a steerable ood_score), `consistency_fp32.tflite` (the consistency
check of trainer/consistency.py around a one-pixel-detail classifier), and
golden_expected.npz holding the Keras model's outputs on fixed inputs, so the tests compare the
interpreter against TensorFlow's own numbers. The models are untrained but deterministic and
input-dependent (no BatchNorm, fixed seed), which is all a numerical parity check needs.
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import tf_keras as keras

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from edge import spec

DATA_DIR = Path(__file__).parent / "data"
SIZE = 32
CLASSES = len(spec.CLASS_NAMES)


def main() -> None:
    DATA_DIR.mkdir(exist_ok=True)
    keras.utils.set_random_seed(7)
    model = build_attention_model()
    inputs = golden_inputs()
    outputs = model(inputs)
    np.savez(
        DATA_DIR / "golden_expected.npz",
        inputs=inputs,
        probabilities=outputs[spec.PROBABILITIES_KEY].numpy(),
        attention_1=outputs[spec.ATTENTION_KEY_PREFIX + "1"].numpy(),
    )
    for variant in ("fp32", "fp16", "dynamic", "int8", "int8_io", "uint8_io"):
        data = convert(model, variant, inputs)
        (DATA_DIR / f"golden_{variant}.tflite").write_bytes(data)
        print(f"golden_{variant}.tflite: {len(data)} bytes")
    plain = convert(build_plain_model(), "fp32", inputs)
    (DATA_DIR / "plain_fp32.tflite").write_bytes(plain)
    print(f"plain_fp32.tflite: {len(plain)} bytes")
    write_referral_model()
    write_consistency_model()


def write_consistency_model() -> None:
    from trainer.consistency import with_consistency

    model = with_consistency(build_detail_model())
    data = convert(model, "fp32", golden_inputs())
    (DATA_DIR / "consistency_fp32.tflite").write_bytes(data)
    print(f"consistency_fp32.tflite: {len(data)} bytes")


def build_detail_model() -> keras.Model:
    """The referral model's `ood_score` (mean level / 100) with a class read from one fine
    detail a blur removes: class 0 when the centre pixel is brighter than the mean of the 5x5
    patch around it, class 1 when darker (trainer/consistency.py's check sees a faint one)."""
    image = keras.Input((SIZE, SIZE, 1), name=spec.IMAGE_TENSOR_KEY)
    mean = keras.layers.GlobalAveragePooling2D()(image)
    ood = keras.layers.Reshape((), name=spec.OOD_SCORE_KEY)(mean / 100.0)
    centre = keras.layers.Cropping2D(((SIZE // 2, SIZE // 2 - 1), (SIZE // 2, SIZE // 2 - 1)))(
        image)
    patch = keras.layers.Cropping2D(((SIZE // 2 - 2, SIZE // 2 - 3),
                                     (SIZE // 2 - 2, SIZE // 2 - 3)))(image)
    detail = keras.layers.Flatten()(centre) - keras.layers.GlobalAveragePooling2D()(patch)
    logits = keras.layers.Concatenate()([detail, -detail, 0 * detail - 5, 0 * detail - 5]) / 4.0
    probabilities = keras.layers.Softmax(name=spec.PROBABILITIES_KEY)(logits)
    return keras.Model(image, {spec.PROBABILITIES_KEY: probabilities, spec.OOD_SCORE_KEY: ood})


def write_referral_model() -> None:
    referral = convert(build_referral_model(), "fp32", golden_inputs())
    (DATA_DIR / "referral_fp32.tflite").write_bytes(referral)
    print(f"referral_fp32.tflite: {len(referral)} bytes")


def golden_inputs() -> np.ndarray:
    """Four 0..255 float images: gradients and noise, so the outputs differ per image."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    images = [255 * xx, 255 * yy, 255 * (1 - xx * yy), rng.uniform(0, 255, (SIZE, SIZE))]
    return np.stack(images)[..., None].astype(np.float32)


def build_attention_model() -> keras.Model:
    image = keras.Input((SIZE, SIZE, 1), name=spec.IMAGE_TENSOR_KEY)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(image)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    attention = keras.layers.Conv2D(1, 1, activation="sigmoid", name="attention")(x)
    x = keras.layers.Multiply()([x, attention])
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(CLASSES)(x)
    probabilities = keras.layers.Softmax()(logits * 40.0)  # spread the untrained scores
    return keras.Model(
        image,
        {spec.PROBABILITIES_KEY: probabilities, spec.ATTENTION_KEY_PREFIX + "1": attention},
    )


def build_plain_model() -> keras.Model:
    image = keras.Input((SIZE, SIZE, 1), name=spec.IMAGE_TENSOR_KEY)
    x = keras.layers.Rescaling(1 / 255.0)(image)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    probabilities = keras.layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(image, {spec.PROBABILITIES_KEY: probabilities})


def build_referral_model() -> keras.Model:
    """Probabilities plus an `ood_score` the tests can steer: the image's mean level / 100
    (so a mid-gray image scores 1.28, above the default threshold 1.0; a dark one is in), and
    the top probability grows with the left-right brightness difference."""
    image = keras.Input((SIZE, SIZE, 1), name=spec.IMAGE_TENSOR_KEY)
    mean = keras.layers.GlobalAveragePooling2D()(image)
    left = keras.layers.GlobalAveragePooling2D()(keras.layers.Cropping2D(((0, 0), (0, SIZE // 2)))(
        image))
    ood = keras.layers.Reshape((), name=spec.OOD_SCORE_KEY)(mean / 100.0)
    logits = keras.layers.Concatenate()([left - mean, mean - left, 0 * mean, 0 * mean]) / 10.0
    probabilities = keras.layers.Softmax(name=spec.PROBABILITIES_KEY)(logits)
    return keras.Model(image, {spec.PROBABILITIES_KEY: probabilities, spec.OOD_SCORE_KEY: ood})


def convert(model: keras.Model, variant: str, calibration: np.ndarray) -> bytes:
    """Saves a SavedModel with the serving_tensor signature and converts that signature."""

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], tf.float32)])
    def serving_tensor(image):
        return model(image, training=False)

    with tempfile.TemporaryDirectory() as export_dir:
        tf.saved_model.save(model, export_dir, signatures={spec.TENSOR_SIGNATURE: serving_tensor})
        converter = tf.lite.TFLiteConverter.from_saved_model(
            export_dir, signature_keys=[spec.TENSOR_SIGNATURE]
        )
        if variant != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        if variant.startswith(("int8", "uint8")):
            converter.representative_dataset = lambda: ([image[None]] for image in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if variant == "int8_io":
            converter.inference_input_type = converter.inference_output_type = tf.int8
        if variant == "uint8_io":
            converter.inference_input_type = converter.inference_output_type = tf.uint8
        return converter.convert()


if __name__ == "__main__":
    main()
