"""`cxr-edge export-android`: the pushed model with standard TFLite metadata for Android.

MediaPipe's / LiteRT's ImageClassifier (what Android apps load) needs metadata that says how
to normalise the input and which label each score has; MediaPipe's metadata writer adds it.
It lives in the `android` extra (mediapipe pins absl-py 2.x, which TFX forbids), so it is
imported only here, only when the command runs.

What the export changes, besides attaching the metadata:
- ImageClassifier feeds RGB (depth 3) images; the models take grayscale. A 1x1 convolution
  with Pillow's luma weights (ITU-R 601-2, what edge.imageio uses) is put in front of the
  graph, so the input becomes [1, size, size, 3] and a gray RGB image gives the same input.
- ImageClassifier reads one classification output (with two heads, MediaPipe 1.2.2 paired the
  heads with the wrong tensors), so the out-of-distribution decision is folded into it: a model
  with an `ood_score` gets one more category, spec.ANDROID_REFER_CATEGORY, last. Its score is
  1 and every class score 0 when ood_score > ood_threshold (or is NaN): edge.classifier.decide's
  rule, threshold baked in at export; otherwise it is 0 and the class scores are the model's
  probabilities, unchanged. Attention maps, embeddings and the raw ood_score are dropped from
  the graph outputs.
- The low-confidence rule (top probability < refer_below) is the app's: refer_below goes into
  a JSON file next to the model (<name>.referral.json, referral_record) and into the model
  metadata's description.
- Inputs stay raw 0..255 (the model standardises inside), hence mean 0 and std 1. Only float32
  input tensors are exported (ImageClassifier rejects int8 I/O; the int8 variant with float I/O
  keeps the integer graph).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

from edge import spec
from edge.classifier import Classifier, ClassifierOptions
from edge.manifest import load_model_dir
from edge.site import calibration as calibration_file
from edge.site import screening

MODEL_NAME = "cxr-edge chest X-ray triage"
RESIZE_INSTRUCTION = (
    "give ImageClassifier the image already at input_size x input_size, stretched to a square "
    "and resized with an antialiased bilinear (triangle) filter as Pillow's "
    "resize(BILINEAR) does; MediaPipe's own resize does not antialias"
)


def export_android(model: str | os.PathLike, out: str | os.PathLike, *,
                   ood_threshold: float | None = None,
                   refer_below: float | None = None,
                   site_calibration: str | os.PathLike | None = None) -> Path:
    """Writes the model at `model` (pushed dir or .tflite) with metadata to `out`, and its
    referral record (referral_record) to referral_path(out). Thresholds: the manifest's
    unless given, as for `cxr-edge classify`; a site calibration (for this model only) adds
    its screening rule and its local referral thresholds."""
    options = ClassifierOptions(refer_below=refer_below, ood_threshold=ood_threshold)
    classifier = Classifier(load_model_dir(model), options)
    calibration = None
    if site_calibration is not None:
        calibration = calibration_file.for_model(calibration_file.load(site_calibration),
                                                 classifier.model_sha256,
                                                 classifier.class_names)
        classifier.options = calibration_file.referral_options(options, calibration)
    runner = classifier.model.runner
    if runner.input.dtype != "float32":
        raise ValueError(
            f"export-android needs a float32 input tensor; this model takes "
            f"{runner.input.dtype}. Export the int8 variant with float I/O (int8 inside)."
        )
    class_names = list(classifier.class_names)
    with_ood = classifier.has_ood_score
    if with_ood and spec.ANDROID_REFER_CATEGORY in class_names:
        raise ValueError(f"a class is named {spec.ANDROID_REFER_CATEGORY!r}, the referral "
                         "category export-android adds")
    unstable_below = (classifier.unstable_below
                      if with_ood and classifier.has_consistency_check else None)
    record = referral_record(class_names, with_ood, classifier.ood_threshold,
                             classifier.refer_below, classifier.input_size, unstable_below)
    record["screen"] = None if calibration is None else screen_rule(calibration)
    metadata_writer = _import_metadata_writer()
    buffer = _adapt_for_image_classifier(
        runner.model_path.read_bytes(), spec.PROBABILITIES_KEY,
        ood_threshold=classifier.ood_threshold if with_ood else None,
        unstable_below=unstable_below,
    )
    writer = metadata_writer.MetadataWriter.create(bytearray(buffer))
    writer.add_general_info(MODEL_NAME, json.dumps(record, sort_keys=True))
    writer.add_image_input([0.0], [1.0])  # raw 0..255: the model standardises inside
    writer.add_classification_output(
        metadata_writer.Labels().add(record["categories"]),
        description=record["rule"],
    )
    model_with_metadata, _ = writer.populate()
    # Importing mediapipe leaves this frame referenced until exit; the writer must not wait
    # there (its __del__ removes a temporary folder and fails once `os` is torn down).
    del writer
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(model_with_metadata)
    record = {"model_file": out_path.name,
              "model_sha256": hashlib.sha256(model_with_metadata).hexdigest(), **record}
    referral_path(out_path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return out_path


def screen_rule(calibration) -> dict:
    """The site's screening decision as the app applies it to the class scores."""
    if calibration.score == screening.SCORE_ABNORMAL:
        normal = screening.normal_class(calibration.class_names)
        formula = f"1 - score({normal!r})"
    else:
        formula = f"score({calibration.score!r})"
    return {"score": calibration.score, "threshold": calibration.threshold,
            "positive_classes": list(calibration.positive_classes),
            "calibration_id": calibration.id, "calibrated_for_sha256": calibration.model_sha256,
            "target": calibration.target,
            "rule": f"screen positive when {formula} >= {calibration.threshold:.6g}, "
                    "else negative (a referral still needs a clinician's look)"}


def referral_path(model_out: str | os.PathLike) -> Path:
    """Where the referral record of an Android export goes: cxr.tflite -> cxr.referral.json."""
    path = Path(model_out)
    return path.with_name(path.stem + spec.ANDROID_REFERRAL_SUFFIX)


def referral_record(class_names: list[str], with_ood: bool, ood_threshold: float,
                    refer_below: float, input_size: int,
                    unstable_below: float | None = None) -> dict:
    """What the app needs to reproduce edge.classifier.decide from ImageClassifier's answer."""
    categories = class_names + ([spec.ANDROID_REFER_CATEGORY] if with_ood else [])
    if with_ood:
        unstable = ("" if unstable_below is None else
                    f" or its stability < {unstable_below:g}, i.e. out_of_distribution or "
                    "unstable")
        rule = (
            f"top category {spec.ANDROID_REFER_CATEGORY!r} -> refer (out_of_distribution; "
            f"the model scores it 1 when its OOD score > {ood_threshold:g}{unstable}); "
            f"else top score < {refer_below:g} -> refer (low_confidence); else ok"
        )
    else:
        rule = (f"no OOD score in this model; top score < {refer_below:g} -> refer "
                "(low_confidence); else ok")
    return {
        "format": spec.ANDROID_REFERRAL_FORMAT,
        "categories": categories,
        "class_names": class_names,
        "refer_category": spec.ANDROID_REFER_CATEGORY if with_ood else None,
        "ood_threshold": ood_threshold if with_ood else None,  # baked into the model
        "unstable_below": unstable_below,  # baked into the model; None: no consistency check
        "refer_below": refer_below,  # the app applies it to the top score
        "rule": rule,
        # MediaPipe's own resize has no antialiasing (it changed a third of the decisions on
        # 256 px phantoms for a 64 px model): the app resizes first, as edge.preprocess does.
        "input_size": input_size,
        "resize": RESIZE_INSTRUCTION,
    }


def _import_metadata_writer():
    if importlib.util.find_spec("mediapipe") is None:
        raise ImportError("export-android needs the android extra: pip install '.[android]'")
    if not _module_exists(_METADATA_VERSION_MODULE):
        # mediapipe 1.2.2 ships the writer without its compiled version helper; the helper
        # only reports the minimum metadata parser version, "1.0.0" for these fields (the
        # 0.10.21 writer, which has it, produces byte-identical output).
        _install_metadata_version_stand_in()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    return metadata_writer


_METADATA_VERSION_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def _module_exists(name: str) -> bool:
    if name in sys.modules:  # the stand-in, from an earlier export in this process
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _install_metadata_version_stand_in() -> None:
    name = _METADATA_VERSION_MODULE
    module = types.ModuleType(name)
    module.GetMinimumMetadataParserVersion = lambda *args, **kwargs: "1.0.0"
    parts = name.split(".")
    for depth in range(3, len(parts)):  # mediapipe.tasks.cc ... .python
        package = ".".join(parts[:depth])
        sys.modules.setdefault(package, types.ModuleType(package))
    sys.modules[name] = module
    sys.modules["mediapipe.tasks.cc.metadata.python"]._pywrap_metadata_version = module


# ITU-R 601-2 luma in Pillow's fixed point (convert("L"): (19595 R + 38470 G + 7471 B) / 2**16).
# The weights sum to exactly 1 and every product and partial sum of 8-bit values is exact in
# float32, so a gray RGB image gives the gray input bit for bit. (0.299, 0.587, 0.114) as
# float32 sum to 1 - 6e-8: enough to flip an int8 model's input quantization on some images.
LUMA_WEIGHTS = tuple(weight / 2**16 for weight in (19595, 38470, 7471))


def _adapt_for_image_classifier(model_buffer: bytes, output_key: str,
                                ood_threshold: float | None = None,
                                unstable_below: float | None = None) -> bytes:
    """Keeps only `output_key` as graph output (with the referral category folded in when
    ood_threshold is given) and puts an RGB-to-gray conv before the input."""
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
    if signature is None and ood_threshold is not None:
        raise ValueError("the model has no signature naming its ood_score output")

    def add_buffer(values, dtype=np.float32) -> int:
        buffer = schema.BufferT()
        if values is not None:
            buffer.data = np.frombuffer(np.asarray(values, dtype).tobytes(), np.uint8)
        model.buffers.append(buffer)
        return len(model.buffers) - 1

    def add_tensor(name: str, shape, buffer_index: int | None = None,
                   tensor_type=schema.TensorType.FLOAT32) -> int:
        tensor = schema.TensorT()
        tensor.name, tensor.type = name, tensor_type
        tensor.buffer = add_buffer(None) if buffer_index is None else buffer_index
        tensor.shape = np.array(shape, np.int32)
        subgraph.tensors.append(tensor)
        return len(subgraph.tensors) - 1

    def add_operator(builtin, inputs, outputs, options_type=None, options=None, *, first=False):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        model.operatorCodes.append(code)
        operator = schema.OperatorT()
        operator.opcodeIndex = len(model.operatorCodes) - 1
        operator.inputs, operator.outputs = list(inputs), list(outputs)
        if options is not None:
            operator.builtinOptionsType, operator.builtinOptions = options_type, options
        if first:
            subgraph.operators.insert(0, operator)
        else:
            subgraph.operators.append(operator)

    if signature is not None:
        by_name = {_text(out.name): out for out in signature.outputs}
        if output_key not in by_name:
            raise ValueError(f"the model's signature has no {output_key!r} output")
        keep = by_name[output_key]
        if ood_threshold is not None:
            if spec.OOD_SCORE_KEY not in by_name:
                raise ValueError(f"the model's signature has no {spec.OOD_SCORE_KEY!r} output")
            stability = None
            if unstable_below is not None:
                if spec.STABILITY_KEY not in by_name:
                    raise ValueError(
                        f"the model's signature has no {spec.STABILITY_KEY!r} output")
                stability = (by_name[spec.STABILITY_KEY].tensorIndex, unstable_below)
            keep.tensorIndex = _fold_referral(
                schema, subgraph, keep.tensorIndex, by_name[spec.OOD_SCORE_KEY].tensorIndex,
                ood_threshold, add_buffer, add_tensor, add_operator, stability,
            )
        subgraph.outputs = [keep.tensorIndex]
        signature.outputs = [keep]

    # New RGB input -> CONV_2D(1x1, luma weights) -> the old gray input tensor.
    (gray_index,) = subgraph.inputs
    gray = subgraph.tensors[gray_index]
    if gray.type != schema.TensorType.FLOAT32:
        raise ValueError("export-android needs a float32 input tensor")
    size_h, size_w = int(gray.shape[1]), int(gray.shape[2])
    rgb_index = add_tensor("image_rgb", [1, size_h, size_w, 3])
    weights = add_tensor("rgb_to_gray/weights", [1, 1, 1, 3], add_buffer([LUMA_WEIGHTS]))
    bias = add_tensor("rgb_to_gray/bias", [1], add_buffer([0.0]))
    gray.shapeSignature = None
    options = schema.Conv2DOptionsT()
    options.padding, options.strideH, options.strideW = schema.Padding.VALID, 1, 1
    options.dilationHFactor = options.dilationWFactor = 1
    options.fusedActivationFunction = schema.ActivationFunctionType.NONE
    add_operator(schema.BuiltinOperator.CONV_2D, [rgb_index, weights, bias], [gray_index],
                 schema.BuiltinOptions.Conv2DOptions, options, first=True)
    subgraph.inputs = [rgb_index]
    if signature is not None:
        signature.inputs[0].tensorIndex = rgb_index

    builder = flatbuffers.Builder(len(model_buffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _fold_referral(schema, subgraph, probabilities: int, ood_score: int, ood_threshold: float,
                   add_buffer, add_tensor, add_operator,
                   stability: tuple[int, float] | None = None) -> int:
    """Appends ops computing [probabilities * accept, 1 - accept] ([1, classes + 1]) with
    accept = float(ood_score <= ood_threshold), and with `stability` (tensor, unstable_below)
    also stability >= unstable_below: edge.classifier.decide's OOD and unstable rules (NaN is
    referred), exactly, not a smooth approximation. Returns the new tensor's index."""
    checked = [(probabilities, spec.PROBABILITIES_KEY), (ood_score, spec.OOD_SCORE_KEY)]
    if stability is not None:
        checked.append((stability[0], spec.STABILITY_KEY))
    for index, key in checked:
        if subgraph.tensors[index].type != schema.TensorType.FLOAT32:
            raise ValueError(f"export-android needs a float32 {key} output")
    classes = int(subgraph.tensors[probabilities].shape[-1])
    prefix = "android_referral/"
    # [1] or [1, 1] ood_score against a [1, 1] threshold broadcasts to [1, 1].
    threshold = add_tensor(prefix + "ood_threshold", [1, 1], add_buffer([[ood_threshold]]))
    one = add_tensor(prefix + "one", [1, 1], add_buffer([[1.0]]))
    accepted = add_tensor(prefix + "accepted", [1, 1], tensor_type=schema.TensorType.BOOL)
    accept = add_tensor(prefix + "accept", [1, 1])
    refer = add_tensor(prefix + "refer", [1, 1])
    scaled = add_tensor(prefix + "class_scores", [1, classes])
    scores = add_tensor(prefix + "scores", [1, classes + 1])
    add_operator(schema.BuiltinOperator.LESS_EQUAL, [ood_score, threshold], [accepted])
    if stability is not None:
        floor = add_tensor(prefix + "unstable_below", [1, 1], add_buffer([[stability[1]]]))
        stable = add_tensor(prefix + "stable", [1, 1], tensor_type=schema.TensorType.BOOL)
        both = add_tensor(prefix + "accepted_and_stable", [1, 1],
                          tensor_type=schema.TensorType.BOOL)
        add_operator(schema.BuiltinOperator.GREATER_EQUAL, [stability[0], floor], [stable])
        add_operator(schema.BuiltinOperator.LOGICAL_AND, [accepted, stable], [both])
        accepted = both
    add_operator(schema.BuiltinOperator.CAST, [accepted], [accept])
    add_operator(schema.BuiltinOperator.SUB, [one, accept], [refer],
                 schema.BuiltinOptions.SubOptions, schema.SubOptionsT())
    add_operator(schema.BuiltinOperator.MUL, [probabilities, accept], [scaled],
                 schema.BuiltinOptions.MulOptions, schema.MulOptionsT())
    concat = schema.ConcatenationOptionsT()
    concat.axis = 1
    add_operator(schema.BuiltinOperator.CONCATENATION, [scaled, refer], [scores],
                 schema.BuiltinOptions.ConcatenationOptions, concat)
    return scores


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
