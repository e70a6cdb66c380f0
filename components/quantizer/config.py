"""QuantizerConfig: which variants, the gate's tolerance, calibration, latency and selection."""

import dataclasses
import json

from components.lib.shift_gate import ShiftGateConfig
from components.quantizer.recipes import ALL_VARIANTS, FLOAT_LAYERS
from edge import spec
from trainer import constants

# fastest: the lowest median latency on the edge runtime wins (a faster model is the point of
# quantizing for a low-cost device); smallest: the smallest file wins (storage-bound devices).
OBJECTIVES = ("fastest", "smallest")


@dataclasses.dataclass(frozen=True)
class QuantizerConfig:
    variants: tuple[str, ...] = ("float32", "float16", "dynamic", "int8")
    max_f1_drop: float = constants.MAX_F1_DROP
    # int8 calibration images, split evenly over classes (docs/decisions/quantization.md).
    representative_examples: int = 300
    # Each tensor's int8 range: the mean over this many slices of the sample of each slice's
    # min and max (1: the converter's whole-sample min/max, which one outlier image sets).
    calibration_batches: int = 10
    # >1: int8 is converted once per calibration sample (seeds seed..seed+N-1) and the one
    # closest to float on the eval split ships (calibration.most_faithful_calibration).
    calibration_candidates: int = 1
    float_layers: tuple[str, ...] = FLOAT_LAYERS  # kept float32 in the int8 variants
    # Which passing variant ships (select_variant). Latencies within latency_margin (relative)
    # of the fastest count as a tie, broken by the smaller file: that close is run-to-run noise.
    objective: str = "fastest"
    latency_margin: float = constants.LATENCY_MARGIN
    max_size_mb: float = 0.0  # size budget in 10^6 bytes; 0: none
    # Latency as the device will see it: its thread count, each variant in a fresh process,
    # warmup untimed runs, then the median of latency_runs, in latency_rounds interleaved rounds
    # of which the least disturbed counts (docs/decisions/quantization.md).
    latency_threads: int = 1
    latency_warmup: int = 5
    latency_runs: int = 30
    latency_rounds: int = 5
    max_test_examples: int | None = None
    # The acquisition-shift gate (components/lib/shift_gate.py): the float model and each variant.
    shift_gate: ShiftGateConfig = ShiftGateConfig()
    class_names: tuple[str, ...] = spec.CLASS_NAMES
    qat_epochs: int = 2
    qat_learning_rate: float = 1e-4
    qat_max_train_examples: int = 2000
    # A model the Evaluator did not bless is not converted (it will never ship).
    skip_unblessed: bool = True
    fail_if_none_pass: bool = True
    seed: int = 0

    def __post_init__(self):
        unknown = set(self.variants) - set(ALL_VARIANTS)
        if unknown or not self.variants:
            raise ValueError(f"unknown variants {sorted(unknown)}; choose from {ALL_VARIANTS}")
        if not 0.0 <= self.max_f1_drop <= 1.0:
            raise ValueError(f"max_f1_drop must lie in [0, 1], got {self.max_f1_drop}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.latency_margin < 0 or self.max_size_mb < 0:
            raise ValueError("latency_margin and max_size_mb must not be negative")
        if min(self.calibration_candidates, self.calibration_batches) < 1:
            raise ValueError("calibration_candidates and calibration_batches must be >= 1")
        if min(self.latency_threads, self.latency_runs, self.latency_rounds) < 1 or \
                self.latency_warmup < 0:
            raise ValueError("latency_threads, latency_runs and latency_rounds must be >= 1, "
                             "latency_warmup >= 0")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "QuantizerConfig":
        values = json.loads(text or "{}")
        for key in ("variants", "class_names", "float_layers"):
            if key in values:
                values[key] = tuple(values[key])
        if isinstance(values.get("shift_gate"), dict):
            gate = values["shift_gate"] | {"families": tuple(values["shift_gate"].get(
                "families", ()))}
            values["shift_gate"] = ShiftGateConfig(**gate)
        return cls(**values)
