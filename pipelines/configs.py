"""Pipeline settings: one dataclass, defaults sized for the demo, overridable by environment.

The `tfx` CLI runs a runner script and passes it no flags, so every field can be set with an
environment variable `CXR_<FIELD NAME IN CAPITALS>` (e.g. `CXR_DATA_ROOT=/data/cxr
CXR_IMAGE_SIZE=224 tfx run create ...`). `cxr-pipeline run` sets the same fields from its flags.
A field that feeds a component config has that config's field name, prefixed by the component
where the name alone would be ambiguous (`quantization_latency_margin` is
`QuantizerConfig.latency_margin`, `shift_gate_images` is `ShiftGateConfig.images`).
"""

import dataclasses
import json
import os
import warnings
from pathlib import Path

from components.lib.shift_gate import ShiftGateConfig
from edge import spec
from trainer import constants
from trainer.constants import MODEL_KINDS

PIPELINE_NAME = "cxr-edge"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Renamed fields: the old variable still works, with a warning naming the new one.
RENAMED = {
    "min_covid_recall": "min_priority_recall",
    "max_regression": "max_macro_f1_regression",
    "max_quantized_f1_drop": "quantization_max_f1_drop",
}


@dataclasses.dataclass
class PipelineConfig:
    pipeline_name: str = PIPELINE_NAME
    # Class-folder tree (Kaggle layout or plain <Class>/*).
    data_root: str = str(REPO_ROOT / "demo-run" / "data")
    # Everything a run writes lives under here: artifacts, MLMD store, report, pushed model.
    pipeline_root: str = str(REPO_ROOT / "demo-run" / "pipeline")
    # Where the Pusher writes; default <pipeline_root>/serving.
    serving_dir: str = ""
    # The local/Beam runners' MLMD store (SQLite); default <pipeline_root>/metadata.sqlite. SQLite
    # opens a local file: with a gs:// or s3:// pipeline root, set a local path here.
    metadata_db: str = ""
    # Comma-separated in the environment: "attention" or "baseline,attention,siamese".
    models: tuple[str, ...] = ("attention",)
    class_names: tuple[str, ...] = ()  # empty: the folder names found, sorted
    image_size: int = spec.DEMO_IMAGE_SIZE
    max_side: int = 512  # ingestion caps stored images at this side
    epochs: int = 10
    batch_size: int = 32
    max_train_seconds: float = 0.0  # 0: no time cap
    weights: str = "none"  # none | imagenet | path to a local weights file
    seed: int = 42
    # The Evaluator's gates (components/lib/evaluation.py GateConfig).
    min_macro_f1: float = constants.MIN_MACRO_F1
    min_priority_recall: float = constants.MIN_PRIORITY_RECALL
    max_macro_f1_regression: float = constants.MAX_MACRO_F1_REGRESSION
    # The Quantizer (components/quantizer.py QuantizerConfig).
    quantization_max_f1_drop: float = constants.MAX_F1_DROP
    # Empty: the objective's own set; "fastest" skips dynamic-range, never the fastest on the
    # edge runtime (docs/decisions/default-variant-set.md).
    quantization_variants: tuple[str, ...] = ()
    # Which passing variant ships (components/quantizer.py select_variant): "fastest" median
    # latency on the edge runtime (within the margin, the smaller file) or "smallest"; timed at
    # the device's thread count (4 for a Raspberry Pi 4); size budget in MB, 0 for none.
    quantization_objective: str = "fastest"
    quantization_latency_threads: int = 1
    quantization_latency_margin: float = constants.LATENCY_MARGIN
    quantization_max_size_mb: float = 0.0
    # >1: int8 is converted from this many calibration samples and the one whose answers agree
    # most with float on the eval split ships (each extra sample costs one more conversion).
    quantization_calibration_candidates: int = 1
    # The acquisition-shift gate (components/lib/shift_gate.py) on the float model and every
    # variant: test images it shifts (0: off), and its floors (accuracy 0: the referral's target).
    shift_gate_images: int = ShiftGateConfig.images
    shift_gate_min_ok_accuracy: float = ShiftGateConfig.min_ok_accuracy
    shift_gate_min_mild_acceptance: float = ShiftGateConfig.min_mild_acceptance
    shift_gate_min_resolution_acceptance: float = ShiftGateConfig.min_resolution_acceptance
    synthetic_data: bool = True  # said on the report and in the manifest
    # Beam: DirectRunner, one process per core, unless told otherwise.
    beam_pipeline_args: tuple[str, ...] = (
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=0",  # 0: as many as there are cores
    )
    enable_cache: bool = True
    # Extra Trainer hyperparameters (trainer.config.TrainConfig fields), JSON in the environment.
    train_overrides: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.models = tuple(self.models)
        self.class_names = tuple(self.class_names)
        self.quantization_variants = tuple(self.quantization_variants) or (
            ("float32", "float16", "int8") if self.quantization_objective == "fastest"
            else ("float32", "float16", "dynamic", "int8"))
        self.beam_pipeline_args = tuple(self.beam_pipeline_args)
        unknown = [m for m in self.models if m not in MODEL_KINDS]
        if not self.models or unknown:
            raise ValueError(f"models must be a non-empty subset of {MODEL_KINDS}, "
                             f"got {self.models}")

    @property
    def metadata_path(self) -> str:
        return self.metadata_db or os.path.join(self.pipeline_root, "metadata.sqlite")

    def local_metadata_path(self) -> str:
        """metadata_path, or a clear error when it is remote (for the local and Beam runners;
        Kubeflow keeps its own store)."""
        from components.lib import storage  # loads TensorFlow: not before a command's log is open

        return storage.require_local(
            self.metadata_path, "the MLMD store",
            "SQLite opens a local file; with a remote pipeline root set CXR_METADATA_DB "
            "(metadata_db) to a local path")

    @property
    def serving_model_dir(self) -> str:
        return self.serving_dir or os.path.join(self.pipeline_root, "serving")

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "PipelineConfig":
        """Defaults, then CXR_* variables, then explicit overrides (flags)."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(_variable(field.name))
            if raw is not None and raw != "":
                values[field.name] = _parse(field, raw)
        for old, new in RENAMED.items():
            raw = environ.get(_variable(old))
            if raw is None or raw == "":
                continue
            if new in values:
                raise ValueError(f"{_variable(old)} was renamed {_variable(new)}; "
                                 f"set only {_variable(new)}")
            warnings.warn(f"{_variable(old)} is now {_variable(new)}; please rename it",
                          FutureWarning, stacklevel=2)
            values[new] = _parse(next(f for f in dataclasses.fields(cls) if f.name == new), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _variable(name: str) -> str:
    return "CXR_" + name.upper()


def _parse(field, raw):
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if isinstance(default, bool):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"CXR_{field.name.upper()}: expected true/false, got {raw!r}")
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        # Beam arguments are separated by spaces, lists of names by commas.
        separator = None if field.name == "beam_pipeline_args" else ","
        return tuple(part.strip() for part in raw.split(separator) if part.strip())
    if isinstance(default, dict):
        return json.loads(raw)
    return raw
