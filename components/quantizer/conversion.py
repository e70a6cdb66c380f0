"""SavedModel to TFLite by a recipe; int8 keeps the input stem and the referral head in float."""

import tempfile

import numpy as np

from components.quantizer.config import QuantizerConfig
from components.quantizer.recipes import FLOAT_LAYERS, RECIPES, Recipe
from edge import spec
from trainer.constants import REFERRAL_LAYER_PREFIX


def convert(variant: str, saved_model_dir: str, train, config: QuantizerConfig) -> bytes:
    """One TFLite flatbuffer of the `serving_tensor` signature, made by RECIPES[variant]
    (a full-integer recipe calibrated on `train.images`)."""
    return convert_calibrations(variant, saved_model_dir, [train], config)[0]


def convert_calibrations(variant: str, saved_model_dir: str, calibrations: list,
                         config: QuantizerConfig) -> list[bytes]:
    """One flatbuffer per calibration sample for a full-integer recipe (the graph is converted
    and calibrated once, then re-calibrated on each further sample); a single flatbuffer for
    the others, which need no calibration (QAT fine-tunes on the first sample)."""
    recipe = RECIPES[variant]
    if recipe.qat:
        from trainer.qat import export_qat_saved_model

        train = calibrations[0]
        with tempfile.TemporaryDirectory(prefix="qat_") as export_dir:
            export_qat_saved_model(saved_model_dir, train.images, train.labels, export_dir,
                                   epochs=config.qat_epochs,
                                   learning_rate=config.qat_learning_rate,
                                   max_examples=config.qat_max_train_examples)
            return _convert_saved_model(recipe, export_dir, calibrations[:1], config)
    return _convert_saved_model(recipe, saved_model_dir, calibrations, config)


def _convert_saved_model(recipe: Recipe, saved_model_dir: str, calibrations: list,
                         config: QuantizerConfig) -> list[bytes]:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[spec.TENSOR_SIGNATURE]
    )
    if recipe.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe.weight_type:
        converter.target_spec.supported_types = [getattr(tf, recipe.weight_type)]
    if not recipe.integer:
        return [converter.convert()]
    samples = [sample.images for sample in calibrations]
    if not samples or any(len(images) == 0 for images in samples):
        raise ValueError(f"{recipe.name} needs representative images; the train split has none")
    return _convert_int8_keeping_float_layers(
        converter, samples, config.float_layers, integer_io=recipe.io_type != "float32",
        batches=config.calibration_batches)


def _convert_int8_keeping_float_layers(
    converter, samples: list[np.ndarray], float_layers: tuple[str, ...] = FLOAT_LAYERS,
    integer_io: bool = False, batches: int = 1
) -> list[bytes]:
    """Full-integer int8, except the ops of `float_layers`, which run in float32; one model per
    calibration sample.

    Selective quantization as TFLite's QuantizationDebugger does it, without its debug models:
    the converter calibrates the float graph on the first sample (recording each tensor's
    min/max), the MLIR quantizer then quantizes it with the output tensors of those layers
    denylisted. Each sample then re-calibrates the same graph (`_calibrate`: the mean of
    `batches` slices' ranges), which overwrites the recorded ranges: a sample costs calibration
    passes and a quantization, not a conversion. A model without such layers comes out fully
    int8. With `integer_io` the input and output are int8 too."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as lite_convert

    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,  # the float kernels of the denylisted ops
    ]
    converter.representative_dataset = _representative(samples[0][:1])  # the graph only
    converter.experimental_new_quantizer = True
    converter._experimental_calibrate_only = True  # what the QuantizationDebugger sets
    calibrated = converter.convert()
    interpreter = tf.lite.Interpreter(model_content=calibrated)
    tensors = interpreter.get_tensor_details()
    float_nodes = {tensor["name"] for tensor in tensors
                   if _in_float_layer(tensor["name"], float_layers)}
    if any(_in_referral_head(tensor["name"]) for tensor in tensors):
        float_nodes |= _referral_output_tensors(interpreter)
    denylisted = sorted(float_nodes)
    io_type = tf.int8 if integer_io else tf.float32
    return [lite_convert.mlir_quantize(
                _calibrate(calibrated, images, batches), fully_quantize=integer_io,
                input_data_type=io_type, output_data_type=io_type, denylisted_nodes=denylisted)
            for images in samples]


def _representative(images: np.ndarray):
    return lambda: ({spec.IMAGE_TENSOR_KEY: image[None]} for image in images)


def _calibrate(calibrated: bytes, images: np.ndarray, batches: int) -> bytes:
    """The calibrated graph with each tensor's recorded range re-measured on `images`: the mean,
    over `batches` interleaved slices, of each slice's min and max (the converter's min/max
    over the whole sample when 1). Like the moving averages of quantization-aware training, it
    keeps a few outlier images from setting a range the other images use a fraction of."""
    from tensorflow.lite.python.optimize import calibrator
    from tensorflow.lite.tools import flatbuffer_utils

    slices = [images[start::batches] for start in range(min(batches, len(images)))]
    runs = [calibrator.Calibrator(calibrated).calibrate(_representative(part)) for part in slices]
    if len(runs) == 1:
        return runs[0]
    models = [flatbuffer_utils.convert_bytearray_to_object(bytearray(run)) for run in runs]
    for subgraph_index, subgraph in enumerate(models[0].subgraphs):
        for tensor_index, tensor in enumerate(subgraph.tensors):
            recorded = tensor.quantization
            if recorded is None or recorded.min is None or not len(recorded.min):
                continue
            same = [model.subgraphs[subgraph_index].tensors[tensor_index].quantization
                    for model in models]
            recorded.min = np.mean([q.min for q in same], axis=0).astype(np.float32)
            recorded.max = np.mean([q.max for q in same], axis=0).astype(np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(models[0]))


def _in_float_layer(tensor_name: str, float_layers: tuple[str, ...] = FLOAT_LAYERS) -> bool:
    # TFLite names a tensor after the ops fused into it: "attention/standardise/Mean;...".
    return _in_referral_head(tensor_name) or any(
        f"/{layer}/" in part for part in tensor_name.split(";") for layer in float_layers
    )


def _in_referral_head(tensor_name: str) -> bool:
    """The referral head (trainer/referral.py, layers "referral_*") stays float: its distances
    square and sum thousands of features, which int8 would round away. Only a tensor the head
    itself produces counts (the first name): B0's residual ADDs it reads carry its name among
    their fused names, and denylisting those broke the classifier
    (docs/decisions/quantization.md)."""
    return f"/{REFERRAL_LAYER_PREFIX}_" in tensor_name.split(";")[0]


def _referral_output_tensors(interpreter) -> set[str]:
    """The ood_score and (calibrated) probabilities outputs: their last op is renamed after the
    signature output, so the name match above misses it; quantized, ood_score saturates at the
    largest value seen in calibration and every image looks out of distribution."""
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    outputs = interpreter.get_signature_runner(spec.TENSOR_SIGNATURE).get_output_details()
    return {names[detail["index"]] for key, detail in outputs.items()
            if key in (spec.OOD_SCORE_KEY, spec.PROBABILITIES_KEY, spec.STABILITY_KEY)}
