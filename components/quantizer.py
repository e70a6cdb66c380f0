"""Quantizer: the Trainer's SavedModel as TFLite variants, each gated on the edge interpreter.

Converts the `serving_tensor` signature to float32, float16, dynamic-range and full-integer int8
(representative images from the train split; float32 I/O so the device code is the same for
every variant), optionally an int8-I/O variant and a quantization-aware-trained one (QAT,
tensorflow-model-optimization). Every variant is scored on the test split by the same LiteRT
runner the device uses (`edge.runtime.ModelRunner`), one thread, and may lose at most
`max_f1_drop` macro F1 against the float SavedModel scored by TensorFlow on the same images.
The smallest passing variant is selected; `variants.json` records the whole table.
"""


import dataclasses
import json
import os
import statistics
import tempfile
import time

import numpy as np
from tfx import v1 as tfx
from tfx.types import artifact, standard_artifacts

from edge import spec
from edge.imageio import ImageError, load_grayscale
from edge.preprocess import to_model_input
from edge.runtime import ModelRunner
from trainer import metrics

VARIANTS_FILENAME = "variants.json"
TRAINING_SUMMARY_FILENAME = "training_summary.json"  # written by the trainer beside the model
ALL_VARIANTS = ("float32", "float16", "dynamic", "int8", "int8_io", "qat")
# Layers QAT leaves in float: tfmot has no quantize config for the first three (FINDINGS); an
# annotated Concatenate in the attention head makes the converter fail its same-scale rule.
QAT_SKIPPED_LAYERS = ("Rescaling", "Normalization", "Multiply", "Concatenate")
# Layers the int8 variant keeps in float32 (the model's input stem, trainer/models/backbone.py).
# The per-image standardisation squares 0..255 pixels, averages, takes a square root and
# divides; the converter folds its "* 64 + 127.5" and B0's Rescaling/Normalization into a
# MUL/ADD after the gray_to_rgb concat, and names them after it. Quantized, these ops shift the
# whole image by several levels and the int8 model predicts one class (macro F1 0.18 against
# 0.99 float on the 64 px benchmark; denylisting only "standardise" still loses 0.26). In float
# they cost a few KB; from the stem convolution on, everything stays int8.
FLOAT_LAYERS = ("standardise", "gray_to_rgb")


class QuantizedModel(artifact.Artifact):
    """A directory of .tflite variants, variants.json and the selected variant's name."""

    TYPE_NAME = "cxredge.QuantizedModel"


class NoVariantPassed(RuntimeError):
    """Every variant lost more macro F1 than allowed (or failed to convert)."""


@dataclasses.dataclass(frozen=True)
class QuantizerConfig:
    variants: tuple[str, ...] = ("float32", "float16", "dynamic", "int8")
    max_f1_drop: float = 0.01
    representative_examples: int = 100
    latency_runs: int = 20
    max_test_examples: int | None = None
    class_names: tuple[str, ...] = spec.CLASS_NAMES
    qat_epochs: int = 2
    qat_learning_rate: float = 1e-4
    qat_max_train_examples: int = 2000
    # A model the Evaluator did not bless is not converted (it will never ship).
    skip_unblessed: bool = True
    fail_if_none_pass: bool = True
    seed: int = 0

    def __post_init__(self):
        unknown = set(self.variants) - set(ALL_VARIANTS)
        if unknown or not self.variants:
            raise ValueError(f"unknown variants {sorted(unknown)}; choose from {ALL_VARIANTS}")
        if not 0.0 <= self.max_f1_drop <= 1.0:
            raise ValueError(f"max_f1_drop must lie in [0, 1], got {self.max_f1_drop}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "QuantizerConfig":
        values = json.loads(text or "{}")
        for key in ("variants", "class_names"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def quantize_and_select(
    saved_model_dir: str, examples_uri: str, output_dir: str, config: QuantizerConfig
) -> dict:
    """Converts, scores and gates every variant; writes variants.json; returns its content."""
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model_dir).signatures[spec.TENSOR_SIGNATURE]
    image_size = int(signature.structured_input_signature[1][spec.IMAGE_TENSOR_KEY].shape[1])
    test = read_split(examples_uri, "test", image_size, config.max_test_examples)
    if len(test.labels) == 0:
        raise ValueError(f"the test split of {examples_uri} holds no decodable examples")
    reference = _score(_tf_predict(signature, test.images), test.labels, config.class_names)
    train = read_split(examples_uri, "train", image_size, config.representative_examples)

    os.makedirs(output_dir, exist_ok=True)
    rows = []
    for variant in config.variants:
        path = os.path.join(output_dir, f"{variant}.tflite")
        started = time.monotonic()
        try:
            model_bytes = convert(variant, saved_model_dir, train, config)
        except Exception as err:  # a failed variant is a table row, not a failed run
            rows.append({"variant": variant, "passed": False, "error": f"{type(err).__name__}: "
                         f"{err}", "message": f"{variant}: conversion failed: {err}"})
            continue
        with open(path, "wb") as handle:
            handle.write(model_bytes)
        rows.append(
            evaluate_variant(variant, path, test, reference, config)
            | {"convert_seconds": round(time.monotonic() - started, 1)}
        )
    passing = [row for row in rows if row["passed"]]
    selected = min(passing, key=lambda row: row["size_bytes"]) if passing else None
    table = {
        "reference": {"runtime": f"tensorflow {tf.__version__} (SavedModel)", **reference},
        "max_f1_drop": config.max_f1_drop,
        "test_examples": int(len(test.labels)),
        "test_skipped": test.skipped,
        "image_size": image_size,
        "class_names": list(config.class_names),
        "variants": rows,
        "selected": selected["variant"] if selected else None,
        "selected_file": os.path.basename(selected["file"]) if selected else None,
    }
    with open(os.path.join(output_dir, VARIANTS_FILENAME), "w") as handle:
        json.dump(table, handle, indent=2)
    if selected is None and config.fail_if_none_pass:
        raise NoVariantPassed(
            "no TFLite variant passed the quantization gate:\n"
            + "\n".join(row["message"] for row in rows)
        )
    return table


def evaluate_variant(variant: str, path: str, test, reference: dict, config) -> dict:
    """Scores one .tflite file with the edge runner (1 thread) and gates its macro F1 drop."""
    runner = ModelRunner(path, threads=1)
    probabilities = np.stack(
        [runner.run(image)[spec.PROBABILITIES_KEY] for image in test.images]
    )
    scores = _score(probabilities, test.labels, config.class_names)
    drop = reference["macro_f1"] - scores["macro_f1"]
    passed = drop <= config.max_f1_drop + 1e-9
    verdict = "pass" if passed else "rejected"
    return {
        "variant": variant,
        "file": path,
        "size_bytes": os.path.getsize(path),
        "runtime": runner.runtime,
        "input_dtype": runner.input.dtype,
        "latency_ms": _median_latency_ms(runner, test.images[0], config.latency_runs),
        **scores,
        "f1_drop": drop,
        "passed": passed,
        "message": (
            f"{variant}: macro F1 {scores['macro_f1']:.3f} is {drop:.3f} below float "
            f"{reference['macro_f1']:.3f} (max drop {config.max_f1_drop:.3f}): {verdict}"
        ),
    }


def convert(variant: str, saved_model_dir: str, train, config: QuantizerConfig) -> bytes:
    """One TFLite flatbuffer of the `serving_tensor` signature."""
    if variant == "qat":
        with tempfile.TemporaryDirectory(prefix="qat_") as export_dir:
            _export_qat_saved_model(saved_model_dir, train, config, export_dir)
            return _convert_saved_model(variant, export_dir, train)
    return _convert_saved_model(variant, saved_model_dir, train)


def _convert_saved_model(variant: str, saved_model_dir: str, train) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[spec.TENSOR_SIGNATURE]
    )
    if variant in ("float16", "dynamic", "int8", "int8_io", "qat"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant in ("int8", "int8_io"):
        if len(train.images) == 0:
            raise ValueError("int8 needs representative images; the train split has none")

        def representative_dataset():
            for image in train.images:
                yield {spec.IMAGE_TENSOR_KEY: image[None]}

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if variant in ("int8", "int8_io"):
        return _convert_int8_keeping_float_layers(
            converter, train.images, integer_io=variant == "int8_io"
        )
    return converter.convert()


def _convert_int8_keeping_float_layers(
    converter, images: np.ndarray, integer_io: bool = False
) -> bytes:
    """Full-integer int8, except the ops of FLOAT_LAYERS, which run in float32.

    Selective quantization through the QuantizationDebugger: the model is calibrated once, then
    quantized with the output tensors of those layers denylisted. A model without such layers
    comes out fully int8, as the plain converter would make it. With `integer_io` the model's
    input and output are int8 too (the debugger only makes float I/O, so its quantize step is
    called directly, with the same calibration and denylist).
    """
    import tensorflow as tf

    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,  # the float kernels of the denylisted ops
    ]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([image[None]] for image in images[:1])
    )
    tensors = tf.lite.Interpreter(model_content=debugger.calibrated_model).get_tensor_details()
    float_nodes = sorted({tensor["name"] for tensor in tensors if _in_float_layer(tensor["name"])})
    if integer_io:
        from tensorflow.lite.python import convert as lite_convert

        return lite_convert.mlir_quantize(
            debugger.calibrated_model,
            fully_quantize=True,
            input_data_type=tf.int8,
            output_data_type=tf.int8,
            denylisted_nodes=float_nodes,
        )
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes)
    return debugger.get_nondebug_quantized_model()


def _in_float_layer(tensor_name: str) -> bool:
    # TFLite names a tensor after the ops fused into it: "attention/standardise/Mean;...".
    return any(
        f"/{layer}/" in part for part in tensor_name.split(";") for layer in FLOAT_LAYERS
    )


@dataclasses.dataclass
class Split:
    images: np.ndarray  # float32 [N, size, size, 1], 0..255
    labels: np.ndarray  # int64 [N]
    skipped: int  # examples whose image could not be decoded


def read_split(examples_uri: str, split: str, image_size: int, limit: int | None = None) -> Split:
    """Decodes a split with the edge decoder and preprocessing (what the device will see)."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    images, labels, skipped = [], [], 0
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        if limit is not None and len(labels) >= limit:
            break
        features = tf.train.Example.FromString(record.numpy()).features.feature
        try:
            gray = load_grayscale(features[spec.IMAGE_KEY].bytes_list.value[0])
        except (ImageError, IndexError):
            skipped += 1
            continue
        images.append(to_model_input(gray, image_size))
        labels.append(features[spec.LABEL_KEY].int64_list.value[0])
    shape = (0, image_size, image_size, 1)
    return Split(
        np.stack(images) if images else np.zeros(shape, np.float32),
        np.asarray(labels, np.int64),
        skipped,
    )


@tfx.dsl.components.component
def Quantizer(  # noqa: N802 (TFX component names are classes)
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
    quantized_model: tfx.dsl.components.OutputArtifact[QuantizedModel],
    model_blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing] = None,
    config_json: tfx.dsl.components.Parameter[str] = "{}",
):
    """TFX component around `quantize_and_select` (config: QuantizerConfig as JSON)."""
    from tfx.utils import path_utils

    config = QuantizerConfig.from_json(config_json)
    if model_blessing is not None and config.skip_unblessed and not _is_blessed(model_blessing):
        _write_skipped(quantized_model.uri, "the Evaluator did not bless the model")
        quantized_model.set_string_custom_property("selected_variant", "")
        return
    table = quantize_and_select(
        path_utils.serving_model_path(model.uri), examples.uri, quantized_model.uri, config
    )
    quantized_model.set_string_custom_property("selected_variant", table["selected"] or "")
    quantized_model.set_string_custom_property("selected_file", table["selected_file"] or "")


def selected_variant(quantized_model_uri: str) -> dict | None:
    """The selected variant's row of variants.json (with its file path), or None."""
    path = os.path.join(quantized_model_uri, VARIANTS_FILENAME)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        table = json.load(handle)
    for row in table.get("variants", []):
        if row["variant"] == table.get("selected"):
            return row | {"file": os.path.join(quantized_model_uri, table["selected_file"])}
    return None


def _is_blessed(blessing) -> bool:
    return bool(blessing.get_int_custom_property("blessed"))


def _write_skipped(output_dir: str, reason: str) -> None:
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, VARIANTS_FILENAME), "w") as handle:
        json.dump({"variants": [], "selected": None, "skipped": reason}, handle, indent=2)


def _tf_predict(signature, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    import tensorflow as tf

    outputs = [
        signature(**{spec.IMAGE_TENSOR_KEY: tf.constant(images[start : start + batch_size])})[
            spec.PROBABILITIES_KEY
        ].numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs)


def _score(probabilities: np.ndarray, labels: np.ndarray, class_names) -> dict:
    predictions = probabilities.argmax(axis=1)
    report = metrics.f1_report(labels, predictions, class_names)
    return {
        "macro_f1": report["macro_f1"],
        "per_class_f1": report["per_class_f1"],
        "per_class_recall": report["per_class_recall"],
        "accuracy": float((predictions == labels).mean()),
        "confusion_matrix": metrics.confusion_matrix(
            labels, predictions, len(class_names)
        ).tolist(),
    }


def _median_latency_ms(runner: ModelRunner, image: np.ndarray, runs: int) -> float:
    for _ in range(3):
        runner.run(image)
    timings = []
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        runner.run(image)
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 3)


def _export_qat_saved_model(
    saved_model_dir: str, train, config: QuantizerConfig, export_dir: str
) -> None:
    """Fine-tunes a QAT copy of the Keras model on the train split; exports serving_tensor."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )

    supported = registry.Default8BitQuantizeRegistry()
    keras_model = _keras_model_for_qat(saved_model_dir, train)
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
    size = train.images.shape[1]
    # quantize_apply renames output layers ("quant_..."); the call keeps the original dict keys.
    outputs = qat_model(np.zeros((1, size, size, 1), np.float32), training=False)
    if not isinstance(outputs, dict) or spec.PROBABILITIES_KEY not in outputs:
        raise ValueError(f"QAT needs a dict output with {spec.PROBABILITIES_KEY!r}")
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(config.qat_learning_rate),
        loss={spec.PROBABILITIES_KEY: "sparse_categorical_crossentropy"},
    )
    limit = config.qat_max_train_examples
    qat_model.fit(
        train.images[:limit],
        {spec.PROBABILITIES_KEY: train.labels[:limit]},
        epochs=config.qat_epochs,
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


def _keras_model_for_qat(saved_model_dir: str, train):
    """The trained Keras model, rebuilt from the trainer's code when its config is known.

    A model revived from a SavedModel has generic stand-ins for the project's layers, which
    tfmot cannot clone; rebuilding from `training_summary.json`'s config and copying the weights
    gives the real classes. The copy is checked against the SavedModel's own outputs.
    """
    import tf_keras

    loaded = tf_keras.models.load_model(saved_model_dir, compile=False)
    summary_path = os.path.join(saved_model_dir, TRAINING_SUMMARY_FILENAME)
    config = None
    if os.path.isfile(summary_path):
        with open(summary_path) as handle:
            config = json.load(handle).get("config")
    if not config:
        return loaded
    if config.get("model") == "siamese":
        raise ValueError("QAT supports the baseline and attention models, not the Siamese one "
                         "(its nearest-prototype head has no quantized training path)")
    from trainer.config import TrainConfig
    from trainer.models import build_model

    rebuilt = build_model(TrainConfig.from_custom_config(config))
    rebuilt.set_weights(loaded.get_weights())
    probe = train.images[:4]
    expected = loaded(probe, training=False)[spec.PROBABILITIES_KEY].numpy()
    actual = rebuilt(probe, training=False)[spec.PROBABILITIES_KEY].numpy()
    if not np.allclose(expected, actual, atol=1e-4):
        raise ValueError("the model rebuilt for QAT does not reproduce the SavedModel's outputs "
                         f"(max difference {np.abs(expected - actual).max():.4g})")
    return rebuilt
