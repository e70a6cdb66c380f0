"""The pipeline's shared names and numbers, each spelled once (the device's are in edge/spec.py).

Pure Python, on the trainer floor: the Trainer, the components, the pipeline's config and CLI
and the benchmarks import it without loading TensorFlow.
"""

MODEL_KINDS = ("baseline", "attention", "siamese")

# Every layer the referral head and the consistency check add is named "<prefix>_*"
# (trainer/referral.py, trainer/consistency.py); the int8 Quantizer keeps those layers in float.
REFERRAL_LAYER_PREFIX = "referral"

# The Evaluator's release bar (components/lib/evaluation.py GateConfig), never lowered for a demo.
MIN_MACRO_F1 = 0.90
MIN_PRIORITY_RECALL = 0.90
# A retrain on the same data moves macro F1 about this much from seed noise alone.
MAX_MACRO_F1_REGRESSION = 0.01

# A quantized variant may lose this much macro F1 against the float model (QuantizerConfig).
MAX_F1_DROP = 0.01
# Variant selection: latencies within this share of the fastest are a tie, broken by the
# smaller file (docs/decisions/latency-rounds.md).
LATENCY_MARGIN = 0.10
