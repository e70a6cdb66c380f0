"""What a report is written from: the run's artifact directories, any of them absent."""

import dataclasses

from components.lib.evaluation import GateConfig


@dataclasses.dataclass
class ReportInputs:
    """Directories of the run's artifacts; any may be None."""

    examples_uri: str | None = None
    ingest_summary_uri: str | None = None
    quarantine_uri: str | None = None
    validation_uri: str | None = None
    serving_model_dir: str | None = None
    model_run_uri: str | None = None
    evaluation_uri: str | None = None
    blessed: bool | None = None
    quantized_model_uri: str | None = None
    pushed_model_uri: str | None = None
    # Every model kind's Quantizer output (model_summary.json), for the side-by-side table.
    model_summary_uris: list[str] = dataclasses.field(default_factory=list)
    synthetic_data: bool = False
    pipeline_run_id: str | None = None
    title: str = "cxr-edge run report"
    gate_config: GateConfig = dataclasses.field(default_factory=GateConfig)
