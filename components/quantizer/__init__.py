"""Quantizer: the Trainer's SavedModel as TFLite variants, each gated on the edge interpreter.

Converts the `serving_tensor` signature to float32, float16, dynamic-range and full-integer int8
(representative images from the train split; float32 I/O so the device code is the same for
every variant), optionally an int8-I/O variant and a quantization-aware-trained one (QAT,
tensorflow-model-optimization). Every variant is scored on the test split by the same LiteRT
runner the device uses (`edge.runtime.ModelRunner`), one thread, and may lose at most
`max_f1_drop` macro F1 against the float SavedModel scored by TensorFlow on the same images.
Each variant's latency is then timed on the same runtime at the device's thread count, in a
fresh process per variant (`edge.latency`), and `select_variant` picks what ships: by default
the fastest passing variant (within a noise margin, the smaller file), or the smallest.
`variants.json` records the whole table, the numbers behind the choice and why.

Modules, in the order a run uses them:
  recipes        the variants and the layers int8 keeps in float
  config         QuantizerConfig
  conversion     SavedModel -> .tflite per recipe (int8 with float layers, re-calibration)
  calibration    which int8 calibration sample ships (fidelity to float on eval)
  scoring        model outputs (SavedModel, edge runner) and classification scores
  gate           evaluate_variant: the macro F1 drop and the referral checks
  shift_battery  the acquisition-shift gate on float and every passing variant
  timing         latency in a fresh process per variant and round
  selection      select_variant: what ships and why
  quantize       quantize_and_select: the whole run, variants.json
  artifacts      QuantizedModel and the readers of variants.json
  component      the Quantizer TFX component
"""

from components.quantizer.artifacts import (
    VARIANTS_FILENAME,
    QuantizedModel,
    read_variants_table,
    selected_variant,
)
from components.quantizer.calibration import FidelitySet, fidelity
from components.quantizer.component import Quantizer
from components.quantizer.config import OBJECTIVES, QuantizerConfig
from components.quantizer.conversion import convert, convert_calibrations
from components.quantizer.gate import evaluate_variant, training_referral
from components.quantizer.quantize import NoVariantPassed, quantize_and_select
from components.quantizer.recipes import ALL_VARIANTS, FLOAT_LAYERS, RECIPES, Recipe
from components.quantizer.selection import select_variant

__all__ = [
    "ALL_VARIANTS",
    "FLOAT_LAYERS",
    "OBJECTIVES",
    "RECIPES",
    "VARIANTS_FILENAME",
    "FidelitySet",
    "NoVariantPassed",
    "QuantizedModel",
    "Quantizer",
    "QuantizerConfig",
    "Recipe",
    "convert",
    "convert_calibrations",
    "evaluate_variant",
    "fidelity",
    "quantize_and_select",
    "read_variants_table",
    "select_variant",
    "selected_variant",
    "training_referral",
]
