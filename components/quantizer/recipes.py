"""The TFLite variants the Quantizer can make, and the layers its int8 variants keep in float."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one variant is made: the converter's settings and the model's I/O type.

    Every recipe goes through the same gate (macro F1 within max_f1_drop of float32, plus the
    referral checks when the model has a referral head)."""

    name: str
    description: str
    optimize: bool = False  # tf.lite.Optimize.DEFAULT: quantize weights at least
    weight_type: str | None = None  # "float16": float16 weights, float compute
    integer: bool = False  # full-integer: activations calibrated on representative images
    io_type: str = "float32"  # the input/output tensors' dtype
    qat: bool = False  # converted from a quantization-aware fine-tuned copy (trainer/qat.py)


RECIPES = {recipe.name: recipe for recipe in (
    Recipe("float32", "float32 weights and compute"),
    Recipe("float16", "float16 weights, float32 compute", optimize=True, weight_type="float16"),
    Recipe("dynamic", "int8 weights, float activations (dynamic-range)", optimize=True),
    Recipe("int8", "int8 weights and activations, float32 input stem and I/O",
           optimize=True, integer=True),
    Recipe("int8_io", "int8 weights and activations, int8 input and output tensors",
           optimize=True, integer=True, io_type="int8"),
    Recipe("qat", "quantization-aware fine-tuned, then int8 weights (dynamic-range)",
           optimize=True, qat=True),
)}
ALL_VARIANTS = tuple(RECIPES)
# The int8 variants' float32 layers: the input stem (trainer/models/backbone.py), which int8
# breaks: quantized, it shifts the whole image (docs/decisions/quantization.md).
FLOAT_LAYERS = ("standardise", "gray_to_rgb", "stem_conv")
