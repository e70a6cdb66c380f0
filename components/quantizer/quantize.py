"""quantize_and_select: every variant converted, gated, timed; variants.json says what ships."""

import os
import tempfile
import time

import numpy as np
from tfx.dsl.io import fileio

from components.lib import ood_images, referral_gate, storage
from components.quantizer.artifacts import VARIANTS_FILENAME
from components.quantizer.calibration import fidelity_set, most_faithful_calibration
from components.quantizer.config import QuantizerConfig
from components.quantizer.conversion import convert
from components.quantizer.gate import evaluate_variant, referral_record, training_referral
from components.quantizer.recipes import RECIPES
from components.quantizer.scoring import classification_scores, tf_outputs
from components.quantizer.selection import select_variant
from components.quantizer.shift_battery import run_shift_battery
from components.quantizer.timing import time_variants
from edge import spec
from edge.preprocess import to_model_input
from trainer.split_reader import read_split


class NoVariantPassed(RuntimeError):
    """Every variant lost more macro F1 than allowed (or failed to convert)."""


def quantize_and_select(
    saved_model_dir: str, examples_uri: str, output_dir: str, config: QuantizerConfig
) -> dict:
    """Converts, scores and gates every variant; writes variants.json; returns its content."""
    if not storage.is_remote(output_dir):
        return _quantize_and_select(saved_model_dir, examples_uri, output_dir, output_dir, config)
    # LiteRT opens a model by local file name: on a remote output_dir (gs://…) the variants are
    # converted and scored in a local folder, then copied there.
    with tempfile.TemporaryDirectory(prefix="cxr-quantizer-") as work_dir:
        return _quantize_and_select(saved_model_dir, examples_uri, output_dir, work_dir, config)


def _quantize_and_select(saved_model_dir: str, examples_uri: str, output_dir: str,
                         work_dir: str, config: QuantizerConfig) -> dict:
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model_dir).signatures[spec.TENSOR_SIGNATURE]
    image_size = int(signature.structured_input_signature[1][spec.IMAGE_TENSOR_KEY].shape[1])
    test = read_split(examples_uri, "test", image_size, config.max_test_examples,
                      keep_encoded=config.shift_gate.images > 0)
    if len(test.labels) == 0:
        raise ValueError(f"the test split of {examples_uri} holds no decodable examples")
    # Referral: the thresholds the Trainer chose, the built-in non-X-ray set, and the float
    # model's decisions on both, which every variant must reproduce (components/lib/referral_gate).
    referral = training_referral(saved_model_dir)
    ood_set = ood_images.generate(image_size)
    ood_inputs = np.stack([to_model_input(pixels, image_size) for _, _, pixels in ood_set])
    families = [family for family, _, _ in ood_set]
    reference_outputs = referral_gate.Outputs.of(
        tf_outputs(signature, test.images), tf_outputs(signature, ood_inputs))
    reference = classification_scores(reference_outputs.test_probabilities, test.labels,
                                      config.class_names)
    if referral:
        reference["referral"] = referral_gate.measure(reference_outputs, referral, families)
    # Calibration (and QAT) images: seeded class-balanced samples of the train split (the first
    # images in file order can miss a class, and int8 then misreads it).
    per_class = -(-config.representative_examples // len(config.class_names))
    calibrations = [read_split(examples_uri, "train", image_size, per_class=per_class,
                               seed=config.seed + index)
                    for index in range(config.calibration_candidates)]
    held_out = fidelity_set(signature, examples_uri, image_size, config, referral)

    os.makedirs(work_dir, exist_ok=True)
    rows = []
    for variant in config.variants:
        path = os.path.join(work_dir, f"{variant}.tflite")
        started = time.monotonic()
        calibration = None
        try:
            if RECIPES[variant].integer and len(calibrations) > 1:
                model_bytes, calibration = most_faithful_calibration(
                    variant, saved_model_dir, calibrations, config, held_out, work_dir)
            else:
                model_bytes = convert(variant, saved_model_dir, calibrations[0], config)
        except Exception as err:  # a failed variant is a table row, not a failed run
            rows.append({"variant": variant, "passed": False, "error": f"{type(err).__name__}: "
                         f"{err}", "message": f"{variant}: conversion failed: {err}"})
            continue
        with open(path, "wb") as handle:
            handle.write(model_bytes)
        rows.append(
            evaluate_variant(variant, path, test, reference, config,
                             ood_inputs, reference_outputs, referral, families)
            | {"convert_seconds": round(time.monotonic() - started, 1)}
            | ({"calibration": calibration} if calibration else {})
        )
    shift_record = run_shift_battery(signature, rows, test, referral, image_size, config)
    timing = time_variants(rows, test.images[0], config)
    selection = select_variant(rows, config.objective, config.latency_margin,
                               int(config.max_size_mb * 1e6) or None, config.latency_threads)
    selected = next((row for row in rows if row["variant"] == selection["selected"]), None)
    if work_dir != output_dir:
        for row in rows:
            if "file" in row:
                row["file"] = _upload(row["file"], output_dir)
    table = {
        "reference": {"runtime": f"tensorflow {tf.__version__} (SavedModel)", **reference},
        "max_f1_drop": config.max_f1_drop,
        "int8_float_layers": list(config.float_layers),
        "int8_calibration": {
            "images": config.representative_examples, "batches": config.calibration_batches,
            "ranges": "per-tensor min/max" if config.calibration_batches == 1 else
            f"mean over {config.calibration_batches} slices of each slice's min and max"},
        "test_examples": int(len(test.labels)),
        "test_skipped": test.skipped,
        "image_size": image_size,
        "class_names": list(config.class_names),
        "variants": rows,
        "referral": referral_record(referral, reference_outputs, test.labels),
        "shift_battery": shift_record,
        "selection": {
            "objective": config.objective,
            "latency_threads": config.latency_threads,
            "latency_warmup": config.latency_warmup,
            "latency_runs": config.latency_runs,
            "latency_rounds": config.latency_rounds,
            "latency_margin": config.latency_margin,
            "max_size_mb": config.max_size_mb or None,
            **timing,
            **selection,
        },
        "selected": selected["variant"] if selected else None,
        "selected_file": os.path.basename(selected["file"]) if selected else None,
    }
    storage.write_json(os.path.join(output_dir, VARIANTS_FILENAME), table, indent=2)
    if selected is None and config.fail_if_none_pass:
        raise NoVariantPassed(
            f"no TFLite variant can ship: {selection['reason']}\n"
            + "\n".join(row["message"] for row in rows)
        )
    return table



def _upload(local_file: str, output_dir: str) -> str:
    remote = os.path.join(output_dir, os.path.basename(local_file))
    fileio.makedirs(output_dir)
    fileio.copy(local_file, remote, overwrite=True)
    return remote
