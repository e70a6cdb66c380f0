"""The TFLite interpreter behind one small interface: float32 0..255 in, float32 maps out.

Uses ai-edge-litert (LiteRT) and falls back to tflite-runtime where LiteRT has no wheel; says
which one runs. `ModelRunner` calls the model's `serving_tensor` signature (spec), quantizes
the input and dequantizes the outputs of int8/uint8 models with the tensors' own parameters, so
float32, float16, dynamic-range and integer models look alike to the caller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from edge import spec

# Set to "tflite_runtime" to force the fallback (for comparisons); default: LiteRT first.
RUNTIME_ENV = "CXR_EDGE_RUNTIME"


class RuntimeUnavailable(ImportError):
    """Neither ai-edge-litert nor tflite-runtime is importable."""


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as the caller sees it."""

    key: str  # signature key (e.g. "probabilities"), or the tensor name without a signature
    dtype: str  # the tensor's own dtype: float32, int8, uint8, ...
    shape: tuple[int, ...]
    scale: float  # 0.0 when the tensor is not quantized
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in ("int8", "uint8", "int16")

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "quantization": {"scale": self.scale, "zero_point": self.zero_point}
            if self.quantized
            else None,
        }


def interpreter_class():
    """Returns (Interpreter class, "package version") for the runtime that will be used."""
    preferred = os.environ.get(RUNTIME_ENV, "ai_edge_litert")
    order = ["ai_edge_litert", "tflite_runtime"]
    if preferred == "tflite_runtime":
        order.reverse()
    failures = []
    for package in order:
        try:
            if package == "ai_edge_litert":
                from ai_edge_litert.interpreter import Interpreter

                return Interpreter, f"ai-edge-litert {_version('ai-edge-litert')}"
            from tflite_runtime.interpreter import Interpreter

            return Interpreter, f"tflite-runtime {_version('tflite-runtime')}"
        except ImportError as err:  # tflite-runtime also fails this way under NumPy 2
            failures.append(f"{package}: {err}")
    raise RuntimeUnavailable(
        "no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime). "
        + "; ".join(failures)
    )


class ModelRunner:
    """Runs one .tflite model through its tensor signature, one image at a time."""

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None):
        interpreter_type, self.runtime = interpreter_class()
        self.model_path = Path(model_path)
        try:
            self._interpreter = interpreter_type(
                model_path=str(self.model_path), num_threads=threads
            )
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"{self.model_path} is not a loadable TFLite model: {err}") from err
        self.threads = threads
        signatures = self._interpreter.get_signature_list()
        if spec.TENSOR_SIGNATURE in signatures:
            self.signature = spec.TENSOR_SIGNATURE
        elif len(signatures) == 1:
            self.signature = next(iter(signatures))
        else:
            self.signature = None  # no signatures: plain input/output tensors
        if self.signature is not None:
            self._runner = self._interpreter.get_signature_runner(self.signature)
            inputs = self._runner.get_input_details()
            outputs = self._runner.get_output_details()
        else:
            self._runner = None
            self._interpreter.allocate_tensors()
            inputs = {d["name"]: d for d in self._interpreter.get_input_details()}
            outputs = _name_plain_outputs(self._interpreter.get_output_details())
        if len(inputs) != 1:
            raise ValueError(f"expected one image input, the model has {sorted(inputs)}")
        self._input_detail = next(iter(inputs.values()))
        self.input = _tensor_info(next(iter(inputs)), self._input_detail)
        self._output_details = outputs
        self.outputs = {key: _tensor_info(key, detail) for key, detail in outputs.items()}
        if spec.PROBABILITIES_KEY not in self.outputs:
            raise ValueError(
                f"the model has no {spec.PROBABILITIES_KEY!r} output (outputs: "
                f"{sorted(self.outputs)}); export it with the {spec.TENSOR_SIGNATURE!r} signature"
            )
        shape = self.input.shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1:
            raise ValueError(f"expected an input of shape [1, size, size, 1], got {list(shape)}")

    @property
    def input_size(self) -> int:
        return int(self.input.shape[1])

    def quantization(self) -> dict:
        """How the model computes, read from its own op and tensor types (not from a manifest).

        scheme: "int8"/"uint8" (weights and activations integer in every conv/dense op of the
        integer path; a float input stem and float output branches are counted apart),
        "dynamic-range" (int8 weights, float activations), "float16" (float16 weights expanded
        to float32), "float32", or "mixed" (some conv/dense ops fully integer, some not: a
        partial float fallback). See `describe_quantization`.
        """
        try:
            ops = self._interpreter._get_ops_details()  # no public op list
            tensors = self._interpreter.get_tensor_details()
        except (AttributeError, RuntimeError, ValueError) as err:
            return {"scheme": "unknown", "description": f"op list unavailable: {err}"}
        return describe_quantization(ops, tensors, self.input.dtype)

    @property
    def class_count(self) -> int:
        return int(self.outputs[spec.PROBABILITIES_KEY].shape[-1])

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """float32 [size, size, 1] in 0..255 -> {output key: float32 array without batch axis}."""
        batch = _quantize(np.asarray(image, np.float32)[None], self.input)
        if self._runner is not None:
            raw = self._runner(**{self.input.key: batch})
        else:
            self._interpreter.set_tensor(self._input_detail["index"], batch)
            self._interpreter.invoke()
            raw = {
                key: self._interpreter.get_tensor(detail["index"])
                for key, detail in self._output_details.items()
            }
        return {key: _dequantize(raw[key], self.outputs[key])[0] for key in self.outputs}


# The ops that hold nearly all of a CNN's weights and multiply-adds.
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
INTEGER_DTYPES = ("int8", "uint8")


def describe_quantization(ops: list[dict], tensors: list[dict], input_dtype: str) -> dict:
    """The quantization scheme of a model from its op list and tensor details (pure).

    ops: the interpreter's `_get_ops_details()` (op_name, inputs, outputs as tensor indices);
    tensors: `get_tensor_details()`. For each weight op, input 0 is the activation and input 1
    the weights. A float conv/dense op is a fallback only inside the integer path: it reads a
    tensor computed from integer activations and its result is quantized back into them. The
    Quantizer keeps two float parts on purpose (components/quantizer.py): the input stem (the
    standardisation and B0's first convolution, before any integer tensor) and the referral
    head (distances computed from dequantized features, ending at the model's outputs); they
    are counted apart and leave the scheme integer.
    """
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in tensors}
    weight_ops = [op for op in ops if op["op_name"] in WEIGHT_OPS and len(op["inputs"]) >= 2]
    integer = [op for op in weight_ops if dtypes.get(op["inputs"][0]) in INTEGER_DTYPES
               and dtypes.get(op["inputs"][1]) in INTEGER_DTYPES]
    hybrid = [op for op in weight_ops if dtypes.get(op["inputs"][0]) == "float32"
              and dtypes.get(op["inputs"][1]) in INTEGER_DTYPES]
    from_integer, requantized = _integer_path(ops, dtypes)
    float_stem, float_branch, fallback = [], [], []
    for op in weight_ops:
        if op in integer:
            continue
        if op["inputs"][0] not in from_integer:
            float_stem.append(op)
        elif not any(output in requantized for output in op["outputs"]):
            float_branch.append(op)
        else:
            fallback.append(op)
    float16_weights = any(
        op["op_name"] == "DEQUANTIZE" and dtypes.get(op["inputs"][0]) == "float16" for op in ops
    )
    # Ops computing in float32, other than the (de)quantize steps at the model's edges.
    float_ops = [op for op in ops if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE")
                 and any(dtypes.get(i) == "float32" for i in op["outputs"])]
    if not weight_ops:
        scheme = "unknown"
    elif integer and not fallback:
        scheme = dtypes[integer[0]["inputs"][0]]
    elif integer:  # some integer, some float: a partial float fallback
        scheme = "mixed"
    elif hybrid:  # the converter leaves small weight tensors (< 1024 values) in float
        scheme = "dynamic-range"
    elif float16_weights:
        scheme = "float16"
    else:
        scheme = "float32"
    if scheme in INTEGER_DTYPES or scheme == "mixed":
        apart = [f"{len(part)} {what}" for part, what in (
            (float_stem, "in the float input stem"), (float_branch, "in float output branches"),
            (fallback, "fallen back to float")) if part]
        description = (f"{scheme}: {len(integer)}/{len(weight_ops)} conv/dense ops on integer "
                       f"tensors" + (f" ({', '.join(apart)})" if apart else "")
                       + f", {len(float_ops)} float ops, {input_dtype} input")
    elif scheme == "dynamic-range":
        description = (f"{scheme}: int8 weights, float activations in {len(hybrid)}/"
                       f"{len(weight_ops)} conv/dense ops, {input_dtype} input")
    else:
        description = f"{scheme}: {len(weight_ops)} conv/dense ops, {input_dtype} input"
    return {
        "scheme": scheme,
        "weight_ops": len(weight_ops),
        "integer_weight_ops": len(integer),
        "float_stem_weight_ops": len(float_stem),
        "float_branch_weight_ops": len(float_branch),
        "fallback_weight_ops": len(fallback),
        "float_ops": len(float_ops),
        "input_dtype": input_dtype,
        "description": description,
    }


def _integer_path(ops: list[dict], dtypes: dict) -> tuple[set, set]:
    """(tensors computed from integer activations, float tensors that flow into a QUANTIZE).

    The op list is in execution order (topological), so one pass each way suffices."""
    produced, from_integer = set(), set()
    for op in ops:
        if any(i in from_integer or (i in produced and dtypes.get(i) in INTEGER_DTYPES)
               for i in op["inputs"]):
            from_integer.update(op["outputs"])
        produced.update(op["outputs"])
    requantized = set()
    for op in reversed(ops):
        if op["op_name"] == "QUANTIZE" or any(o in requantized for o in op["outputs"]):
            requantized.update(i for i in op["inputs"] if dtypes.get(i) == "float32")
    return from_integer, requantized


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _tensor_info(key: str, detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        key=key,
        dtype=np.dtype(detail["dtype"]).name,
        shape=tuple(int(n) for n in detail["shape"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def _name_plain_outputs(details: list[dict]) -> dict[str, dict]:
    """Without a signature, name outputs by shape: [1, C] is probabilities, [1, h, w, 1] maps."""
    named: dict[str, dict] = {}
    maps = 0
    for detail in details:
        rank = len(detail["shape"])
        if rank == 2 and spec.PROBABILITIES_KEY not in named:
            named[spec.PROBABILITIES_KEY] = detail
        elif rank == 4:
            maps += 1
            named[f"{spec.ATTENTION_KEY_PREFIX}{maps}"] = detail
        else:
            named[detail["name"]] = detail
    return named


def _quantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    if not info.quantized:
        return values.astype(info.dtype)
    limits = np.iinfo(info.dtype)
    quantized = np.rint(values / info.scale + info.zero_point)
    return np.clip(quantized, limits.min, limits.max).astype(info.dtype)


def _dequantize(values: np.ndarray, info: TensorInfo) -> np.ndarray:
    if not info.quantized:
        return np.asarray(values, np.float32)
    return ((values.astype(np.float32) - info.zero_point) * info.scale).astype(np.float32)
