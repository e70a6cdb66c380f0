"""`cxr-edge export-android`: the pushed model with standard TFLite metadata for Android.

MediaPipe's / LiteRT's ImageClassifier (what Android apps load) needs metadata that says how
to normalise the input and which label each score has; MediaPipe's metadata writer adds it.
It lives in the `android` extra (mediapipe pins absl-py 2.x, which TFX forbids), so it is
imported only here, only when the command runs.

What the export changes, besides attaching the metadata:
- ImageClassifier feeds RGB (depth 3) images; the models take grayscale. A 1x1 convolution
  with Pillow's luma weights (ITU-R 601-2, what edge.imageio uses) is put in front of the
  graph, so the input becomes [1, size, size, 3] and a gray RGB image gives the same input.
- ImageClassifier treats every output as a classification head: only probabilities is kept
  (attention maps and embeddings are dropped from the graph outputs).
- Inputs stay raw 0..255 (the model standardises inside), hence mean 0 and std 1. Only float32
  input tensors are exported (ImageClassifier rejects int8 I/O; the int8 variant with float I/O
  keeps the integer graph).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

from edge import spec
from edge.manifest import load_model_dir


def export_android(model: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Writes the model at `model` (pushed dir or .tflite) with metadata to `out`."""
    loaded = load_model_dir(model)
    runner = loaded.runner
    if runner.input.dtype != "float32":
        raise ValueError(
            f"export-android needs a float32 input tensor; this model takes "
            f"{runner.input.dtype}. Export the int8 variant with float I/O (int8 inside)."
        )
    image_classifier, metadata_writer = _import_metadata_writer()
    buffer = _adapt_for_image_classifier(runner.model_path.read_bytes(), spec.PROBABILITIES_KEY)
    labels = metadata_writer.Labels().add(list(loaded.class_names))
    writer = image_classifier.MetadataWriter.create(
        bytearray(buffer), input_norm_mean=[0.0], input_norm_std=[1.0], labels=labels
    )
    model_with_metadata, _ = writer.populate()
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(model_with_metadata)
    return out_path


def _import_metadata_writer():
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import (
            image_classifier,
            metadata_writer,
        )
    except ModuleNotFoundError as err:
        if not str(err.name or "").startswith("mediapipe.tasks.cc"):
            raise ImportError(
                "export-android needs the android extra: pip install '.[android]'"
            ) from err
        # mediapipe 1.2.2 ships the writer without its compiled version helper; the helper
        # only reports the minimum metadata parser version, "1.0.0" for these fields (the
        # 0.10.21 writer, which has it, produces byte-identical output).
        _install_metadata_version_stand_in()
        from mediapipe.tasks.python.metadata.metadata_writers import (
            image_classifier,
            metadata_writer,
        )
    return image_classifier, metadata_writer


def _install_metadata_version_stand_in() -> None:
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    module = types.ModuleType(name)
    module.GetMinimumMetadataParserVersion = lambda *args, **kwargs: "1.0.0"
    parts = name.split(".")
    for depth in range(3, len(parts)):  # mediapipe.tasks.cc ... .python
        package = ".".join(parts[:depth])
        sys.modules.setdefault(package, types.ModuleType(package))
    sys.modules[name] = module
    sys.modules["mediapipe.tasks.cc.metadata.python"]._pywrap_metadata_version = module


# ITU-R 601-2 luma, as Pillow's convert("L").
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _adapt_for_image_classifier(model_buffer: bytes, output_key: str) -> bytes:
    """Keeps only `output_key` as graph output and puts an RGB-to-gray conv before the input."""
    import flatbuffers
    import numpy as np
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_buffer, 0))
    signatures = model.signatureDefs or []
    signature = next(
        (s for s in signatures if _text(s.signatureKey) == spec.TENSOR_SIGNATURE),
        signatures[0] if signatures else None,
    )
    subgraph = model.subgraphs[signature.subgraphIndex if signature else 0]
    if signature is not None:
        keep = [out for out in signature.outputs if _text(out.name) == output_key]
        if not keep:
            raise ValueError(f"the model's signature has no {output_key!r} output")
        subgraph.outputs = [keep[0].tensorIndex]
        signature.outputs = keep

    # New RGB input -> CONV_2D(1x1, luma weights) -> the old gray input tensor.
    (gray_index,) = subgraph.inputs
    gray = subgraph.tensors[gray_index]
    if gray.type != schema.TensorType.FLOAT32:
        raise ValueError("export-android needs a float32 input tensor")

    def add_buffer(values) -> int:
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(np.asarray(values, np.float32).tobytes(), np.uint8)
        model.buffers.append(buffer)
        return len(model.buffers) - 1

    def add_tensor(name: str, shape, buffer_index: int) -> int:
        tensor = schema.TensorT()
        tensor.name, tensor.type, tensor.buffer = name, schema.TensorType.FLOAT32, buffer_index
        tensor.shape = np.array(shape, np.int32)
        subgraph.tensors.append(tensor)
        return len(subgraph.tensors) - 1

    empty = schema.BufferT()
    model.buffers.append(empty)
    size_h, size_w = int(gray.shape[1]), int(gray.shape[2])
    rgb_index = add_tensor("image_rgb", [1, size_h, size_w, 3], len(model.buffers) - 1)
    weights = add_tensor("rgb_to_gray/weights", [1, 1, 1, 3], add_buffer([LUMA_WEIGHTS]))
    bias = add_tensor("rgb_to_gray/bias", [1], add_buffer([0.0]))
    gray.shapeSignature = None

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CONV_2D
    code.version = 1
    model.operatorCodes.append(code)
    options = schema.Conv2DOptionsT()
    options.padding, options.strideH, options.strideW = schema.Padding.VALID, 1, 1
    options.dilationHFactor = options.dilationWFactor = 1
    options.fusedActivationFunction = schema.ActivationFunctionType.NONE
    conv = schema.OperatorT()
    conv.opcodeIndex = len(model.operatorCodes) - 1
    conv.inputs, conv.outputs = [rgb_index, weights, bias], [gray_index]
    conv.builtinOptionsType, conv.builtinOptions = schema.BuiltinOptions.Conv2DOptions, options
    subgraph.operators.insert(0, conv)
    subgraph.inputs = [rgb_index]
    if signature is not None:
        signature.inputs[0].tensorIndex = rgb_index

    builder = flatbuffers.Builder(len(model_buffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
