"""Latency timing in a fresh process (edge.latency) and the quantization read from a model."""

import json
import os

import numpy as np
import pytest

from edge import latency
from edge.runtime import ModelRunner, describe_quantization
from tests.edge.golden import model_path


@pytest.mark.parametrize("variant, scheme", [
    ("fp32", "float32"), ("fp16", "float16"), ("dynamic", "dynamic-range"), ("int8", "int8"),
    ("int8_io", "int8"), ("uint8_io", "int8"),
])
def test_quantization_is_read_from_the_models_own_tensor_types(variant, scheme):
    quantization = ModelRunner(model_path(variant)).quantization()
    assert quantization["scheme"] == scheme
    if scheme == "int8":
        assert quantization["integer_weight_ops"] == quantization["weight_ops"] == 4
        assert quantization["description"].startswith("int8: 4/4 conv/dense ops on integer")


def _tensors(*dtypes):
    return [{"index": index, "dtype": dtype} for index, dtype in enumerate(dtypes)]


I8, F32 = np.int8, np.float32


def test_a_float_conv_inside_the_integer_path_makes_the_model_mixed():
    # int8 conv -> DEQUANTIZE -> float conv -> QUANTIZE -> int8 conv: a silent float fallback.
    tensors = _tensors(I8, I8, I8, F32, F32, F32, I8, I8, I8)
    ops = [{"op_name": "CONV_2D", "inputs": [0, 1], "outputs": [2]},
           {"op_name": "DEQUANTIZE", "inputs": [2], "outputs": [3]},
           {"op_name": "CONV_2D", "inputs": [3, 4], "outputs": [5]},
           {"op_name": "QUANTIZE", "inputs": [5], "outputs": [6]},
           {"op_name": "CONV_2D", "inputs": [6, 7], "outputs": [8]}]
    described = describe_quantization(ops, tensors, "float32")
    assert described["scheme"] == "mixed" and described["integer_weight_ops"] == 2
    assert described["fallback_weight_ops"] == 1 and described["float_ops"] == 1
    assert "1 fallen back to float" in described["description"]


def test_a_float_input_stem_and_a_float_output_branch_leave_the_model_integer():
    # float image -> float conv (the stem) -> QUANTIZE -> int8 conv -> DEQUANTIZE -> float
    # dense (a head ending at an output, like the referral distances): int8 by design.
    tensors = _tensors(F32, F32, F32, I8, I8, I8, F32, F32, F32)
    ops = [{"op_name": "CONV_2D", "inputs": [0, 1], "outputs": [2]},
           {"op_name": "QUANTIZE", "inputs": [2], "outputs": [3]},
           {"op_name": "CONV_2D", "inputs": [3, 4], "outputs": [5]},
           {"op_name": "DEQUANTIZE", "inputs": [5], "outputs": [6]},
           {"op_name": "FULLY_CONNECTED", "inputs": [6, 7], "outputs": [8]}]
    described = describe_quantization(ops, tensors, "float32")
    assert described["scheme"] == "int8" and described["integer_weight_ops"] == 1
    assert (described["float_stem_weight_ops"], described["float_branch_weight_ops"]) == (1, 1)
    assert described["description"].startswith(
        "int8: 1/3 conv/dense ops on integer tensors (1 in the float input stem, 1 in float "
        "output branches)")


def test_each_measurement_runs_in_a_fresh_process_with_warmup_and_the_asked_threads():
    result = latency.measure_in_fresh_process(model_path("int8"), threads=2, warmup=3, runs=7)
    assert result["pid"] != os.getpid()
    assert (result["threads"], result["warmup"], result["runs"]) == (2, 3, 7)
    assert 0 < result["min_ms"] <= result["median_ms"] <= result["p90_ms"]
    assert result["load_and_first_ms"] > 0 and result["quantization"] == "int8"
    assert result["tensorflow_imported"] is False  # the device's own stack only


def test_module_entry_point_times_a_given_image(tmp_path, capsys):
    image = tmp_path / "image.npy"
    np.save(image, np.full((32, 32, 1), 128, np.float32))
    assert latency.main(["--model", str(model_path("fp32")), "--runs", "3", "--warmup", "0",
                         "--image", str(image)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 3 and result["input_size"] == 32
    assert result["quantization"] == "float32"
