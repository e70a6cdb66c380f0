"""The Quantizer TFX component: quantize_and_select on the Trainer's model, and the model kind's
model_summary.json for the report."""

from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components.quantizer.artifacts import QuantizedModel, write_skipped
from components.quantizer.config import QuantizerConfig
from components.quantizer.quantize import quantize_and_select


@tfx.dsl.components.component
def Quantizer(  # TFX component names are classes
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
    quantized_model: tfx.dsl.components.OutputArtifact[QuantizedModel],
    model_blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing] = None,
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation] = None,
    config_json: tfx.dsl.components.Parameter[str] = "{}",
    gate_config_json: tfx.dsl.components.Parameter[str] = "{}",
    code_fingerprint: tfx.dsl.components.Parameter[str] = "",
):
    """TFX component around `quantize_and_select` (config: QuantizerConfig as JSON).
    code_fingerprint: `code_fingerprint.module_fingerprint` of this package; unused, there so
    changed code misses TFX's cache.

    Also writes this model kind's `model_summary.json` (components/lib/model_summary.py) so the
    report can compare kinds side by side, blessed or not."""
    from tfx.utils import path_utils

    from components.lib import model_summary
    from components.lib.evaluation import GateConfig

    del code_fingerprint
    config = QuantizerConfig.from_json(config_json)
    gates = GateConfig.from_json(gate_config_json)
    serving_dir = path_utils.serving_model_path(model.uri)
    # The kind the pipeline wired this Quantizer for; else what the Trainer recorded.
    kind = gates.model_kind or model_summary.model_kind(serving_dir)
    quantized_model.set_string_custom_property("model_kind", kind)
    blessed = _is_blessed(model_blessing) if model_blessing is not None else None

    def write_summary(variants, note=""):
        model_summary.write_model_summary(quantized_model.uri, model_summary.summarize(
            kind, blessed, evaluation.uri if evaluation is not None else None, gates, variants,
            note))

    if model_blessing is not None and config.skip_unblessed and not blessed:
        write_skipped(quantized_model.uri, "the Evaluator did not bless the model")
        quantized_model.set_string_custom_property("selected_variant", "")
        write_summary(None, "not blessed: not converted")
        return
    table = quantize_and_select(serving_dir, examples.uri, quantized_model.uri, config)
    quantized_model.set_string_custom_property("selected_variant", table["selected"] or "")
    quantized_model.set_string_custom_property("selected_file", table["selected_file"] or "")
    write_summary(table)



def _is_blessed(blessing) -> bool:
    return bool(blessing.get_int_custom_property("blessed"))

