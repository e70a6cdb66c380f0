"""int8 is integer where it matters, on the real attention and baseline models.

Every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED op of the Quantizer's int8 file must read
int8 activations and int8 weights, and the only float ops must be the input stem that
`components.quantizer.FLOAT_LAYERS` keeps in float on purpose: the standardisation and B0's
stem convolution (one CONV_2D over the gray channel). A converter that
silently falls back to float for some layer (the model would still run, and still pass an F1
gate, only slower) fails here. Op types do not depend on the weights, so untrained models built by
`trainer.models.build_model` at 64 px suffice; the calibration images are demo phantoms.
"""

import numpy as np
import pytest

from components import quantizer
from components.lib import demo_data
from components.quantizer import conversion
from edge import spec
from trainer import split_reader

SIZE = 64
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """kind -> SavedModel dir exported by the trainer's own export (serving_tensor included)."""
    from trainer.config import TrainConfig
    from trainer.export import export_saved_model
    from trainer.models import build_model

    root = tmp_path_factory.mktemp("int8_ops")
    exported = {}
    for kind in ("attention", "baseline"):
        exported[kind] = str(root / kind)
        export_saved_model(build_model(TrainConfig(model=kind, image_size=SIZE)), SIZE,
                           exported[kind])
    return exported


@pytest.fixture(scope="module")
def calibration():
    images = [demo_data.render_phantom(name, index, size=SIZE)
              for name in spec.CLASS_NAMES for index in range(3)]
    return split_reader.Split(np.stack(images).astype(np.float32)[..., None],
                           np.zeros(len(images), np.int64), 0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["attention", "baseline"])
def test_int8_file_runs_every_conv_and_dense_op_on_int8_and_only_the_stem_in_float(
    kind, saved_models, calibration
):
    flatbuffer = quantizer.convert("int8", saved_models[kind], calibration,
                                   quantizer.QuantizerConfig())
    ops = _ops(flatbuffer)
    weight_ops = [op for op in ops if op["kind"] in WEIGHT_OPS]
    assert len(weight_ops) > 60, [op["kind"] for op in ops]  # B0: 65 convs + 16 depthwise + ...
    assert float_fallbacks(ops) == []
    # The stem really is float (the deliberate exception), and it is all that is.
    stem = {op["kind"] for op in ops if op["float"] and conversion._in_float_layer(op["name"])}
    assert {"SQRT", "DIV", "MUL", "CONV_2D"} <= stem, stem  # MUL: the standardisation's "* 64"
    float_weight_ops = [op["name"] for op in weight_ops if op["input_dtypes"][0] == "float32"]
    assert len(float_weight_ops) == 1 and "/stem_conv/" in float_weight_ops[0], float_weight_ops


@pytest.mark.slow
def test_a_conv_left_in_float_is_caught(saved_models, calibration):
    # A silent float fallback, made on purpose: one projection conv denylisted like the stem.
    config = quantizer.QuantizerConfig(
        float_layers=quantizer.FLOAT_LAYERS + ("block7a_project_conv",))
    flatbuffer = quantizer.convert("int8", saved_models["baseline"], calibration, config)
    # judged by the real stem (FLOAT_LAYERS), as the test above does
    problems = float_fallbacks(_ops(flatbuffer))
    assert any(p.startswith("CONV_2D") and "block7a_project_conv" in p and
               "input float32, weights float32" in p for p in problems), problems


def float_fallbacks(ops: list[dict]) -> list[str]:
    """Each place the model computes in float outside the input stem, as one line each."""
    problems = []
    for op in ops:
        if op["kind"] in WEIGHT_OPS:
            activation, weights = op["input_dtypes"][:2]
            if (activation, weights) != ("int8", "int8") and not conversion._in_float_layer(
                    op["name"]):
                problems.append(f"{op['kind']} {op['name']}: input {activation}, "
                                f"weights {weights}")
        elif op["kind"] == "DEQUANTIZE":
            if not op["feeds_model_output"]:  # int8 -> float inside the graph
                problems.append(f"DEQUANTIZE inside the graph: {op['name']}")
        elif op["kind"] == "QUANTIZE":
            if op["input_dtypes"][0] == "float32" and not conversion._in_float_layer(
                    op["input_names"][0]):
                problems.append(f"QUANTIZE of a float tensor from outside the stem: "
                                f"{op['input_names'][0]}")
        elif op["float"] and not conversion._in_float_layer(op["name"]):
            problems.append(f"float {op['kind']} outside the input stem: {op['name']}")
    return problems


def _ops(flatbuffer: bytes) -> list[dict]:
    """The op list with tensor dtypes, read by the edge interpreter from the flatbuffer."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    outputs = {d["index"] for d in interpreter.get_output_details()}

    def dtype(index):
        return np.dtype(tensors[index]["dtype"]).name

    ops = []
    for op in interpreter._get_ops_details():  # the op list has no public API
        inputs = [i for i in op["inputs"] if i >= 0]
        ops.append({
            "kind": op["op_name"],
            "name": ";".join(tensors[i]["name"] for i in op["outputs"]),
            "input_dtypes": [dtype(i) for i in inputs],
            "input_names": [tensors[i]["name"] for i in inputs],
            "float": any(dtype(i) == "float32" for i in op["outputs"]),
            "feeds_model_output": set(op["outputs"]) <= outputs,
        })
    return ops
