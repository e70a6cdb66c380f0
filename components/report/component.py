"""The RunReportGen TFX component and write_report, which measures, then renders every section."""

import datetime
import os

from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact, standard_artifacts

from components.edge_pusher import read_push_record
from components.lib import artifact_types, storage
from components.lib.evaluation import GateConfig
from components.quantizer import QuantizedModel, read_variants_table
from components.report import sections
from components.report.attention import measure_attention
from components.report.attention_section import attention_section
from components.report.inputs import ReportInputs
from components.report.page import Page
from components.report.shift_section import shift_section
from trainer.summary_file import read_training_summary

REPORT_FILENAME = "report.html"


class RunReport(artifact.Artifact):
    """report.html (self-contained) and the PNG charts it embeds."""

    TYPE_NAME = "cxredge.RunReport"


def write_report(inputs: ReportInputs, out_dir: str) -> str:
    """Writes report.html (and its PNGs) into out_dir; returns the HTML path. What needs a
    model run (attention) is measured first; the sections only render recorded numbers."""
    attention = measure_attention(inputs)
    fileio.makedirs(out_dir)
    page = Page(inputs.title, out_dir)
    if inputs.synthetic_data:
        page.banner(
            "SYNTHETIC DATA. This run used generated phantom images, not patient X-rays. "
            "Its metrics say the pipeline works; they say nothing about clinical accuracy."
        )
    page.paragraph(
        f"Pipeline run: {inputs.pipeline_run_id or 'unknown'} · written "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
    )
    class_names = inputs.gate_config.class_names
    sections.gates_section(page, inputs)
    sections.models_section(page, inputs, class_names)
    sections.data_section(page, inputs, class_names)
    training = read_training_summary(inputs.serving_model_dir)
    sections.training_section(page, training)
    sections.evaluation_section(page, inputs)
    sections.calibration_section(page, inputs)
    sections.referral_section(page, inputs)
    sections.embedding_section(page, inputs, training)
    attention_section(page, attention)
    sections.variants_section(page, inputs)
    shift_section(page, read_variants_table(inputs.quantized_model_uri) or {})
    return storage.write_text(os.path.join(out_dir, REPORT_FILENAME), page.render())


@tfx.dsl.components.component
def RunReportGen(  # TFX component names are classes
    report: tfx.dsl.components.OutputArtifact[RunReport],
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples] = None,
    ingest_summary: tfx.dsl.components.InputArtifact[artifact_types.IngestSummary] = None,
    quarantine: tfx.dsl.components.InputArtifact[artifact_types.QuarantineReport] = None,
    validation: tfx.dsl.components.InputArtifact[artifact_types.ImageValidationFindings] = None,
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model] = None,
    model_run: tfx.dsl.components.InputArtifact[standard_artifacts.ModelRun] = None,
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation] = None,
    blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing] = None,
    quantized_model: tfx.dsl.components.InputArtifact[QuantizedModel] = None,
    pushed_model: tfx.dsl.components.InputArtifact[standard_artifacts.PushedModel] = None,
    # The other model kinds' Quantizer outputs (model_summary.json), compared side by side.
    compared_quantized_model_1: tfx.dsl.components.InputArtifact[QuantizedModel] = None,
    compared_quantized_model_2: tfx.dsl.components.InputArtifact[QuantizedModel] = None,
    synthetic_data: tfx.dsl.components.Parameter[int] = 0,
    gate_config_json: tfx.dsl.components.Parameter[str] = "{}",
    title: tfx.dsl.components.Parameter[str] = "cxr-edge run report",
    code_fingerprint: tfx.dsl.components.Parameter[str] = "",
):
    """TFX component around `write_report` (code_fingerprint: unused, there so changed code
    misses TFX's cache; `code_fingerprint.module_fingerprint` of this package)."""
    del code_fingerprint
    from tfx.utils import path_utils

    def uri(item):
        return item.uri if item is not None else None

    inputs = ReportInputs(
        examples_uri=uri(examples),
        ingest_summary_uri=uri(ingest_summary),
        quarantine_uri=uri(quarantine),
        validation_uri=uri(validation),
        serving_model_dir=path_utils.serving_model_path(model.uri) if model else None,
        model_run_uri=uri(model_run),
        evaluation_uri=uri(evaluation),
        blessed=bool(blessing.get_int_custom_property("blessed")) if blessing else None,
        quantized_model_uri=uri(quantized_model),
        pushed_model_uri=uri(pushed_model),
        model_summary_uris=[item.uri for item in (quantized_model, compared_quantized_model_1,
                                                  compared_quantized_model_2) if item],
        synthetic_data=bool(synthetic_data),
        pipeline_run_id=_run_id(pushed_model, model or examples),
        title=title,
        gate_config=GateConfig.from_json(gate_config_json),
    )
    write_report(inputs, report.uri)


def _run_id(pushed_model, other) -> str | None:
    # Function components are not told the run id: the Pusher (a class component) records it;
    # without a Pusher, the execution id in an input artifact's URI is the next best thing.
    push = read_push_record(pushed_model.uri if pushed_model else None) or {}
    if push.get("pipeline_run_id"):
        return push["pipeline_run_id"]
    return f"execution {os.path.basename(other.uri.rstrip('/'))}" if other else None
