"""The cxr-edge TFX pipeline: one `create_pipeline`, wiring only.

ImageExampleGen → StatisticsGen → SchemaGen → ExampleValidator + ImageValidator
  → Trainer (one per model kind) → LatestBlessedModel resolver → Evaluator (F1 gates)
  → Quantizer (TFLite variants gated on the edge interpreter) → EdgePusher → RunReport

With several model kinds, each gets its own Trainer, resolver, Evaluator and Quantizer (ids
suffixed with the kind). Each Evaluator compares its candidate only with the last blessed model
of its own kind: the resolver's channels are filtered by producer (that kind's Trainer and
Evaluator). The first kind listed is the primary one: it is pushed and reported in full; every
kind appears side by side in the report (each Quantizer writes its kind's model_summary.json).
"""

import dataclasses
import os

from tfx import v1 as tfx

from components.edge_pusher import EdgePusher
from components.image_example_gen.component import ImageExampleGen
from components.image_example_gen.ingest import resolve_class_names
from components.image_validator import ImageValidator
from components.lib import code_fingerprint, storage
from components.lib.evaluation import GateConfig, build_eval_config
from components.lib.shift_gate import ShiftGateConfig
from components.quantizer import Quantizer, QuantizerConfig
from components.report import RunReportGen
from edge import spec
from pipelines.configs import PipelineConfig

RUN_FN = "trainer.run.run_fn"


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    class_names = resolve_pipeline_class_names(config)

    example_gen = ImageExampleGen(
        input_base=config.data_root, class_names=class_names, seed=config.seed,
        max_side=config.max_side, quarantine_evidence_dir=quarantine_evidence_dir(config))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.examples)
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    image_validator = ImageValidator(
        examples=example_gen.examples,
        ingest_summary=example_gen.outputs["ingest_summary"],
        class_names=class_names)
    components = [example_gen, statistics_gen, schema_gen, example_validator, image_validator]

    gated = []
    for kind in config.models:
        trainer = tfx.components.Trainer(
            run_fn=RUN_FN,
            examples=example_gen.examples,
            schema=schema_gen.outputs["schema"],
            custom_config=train_custom_config(config, kind, class_names),
        ).with_id("Trainer" + component_suffix(config, kind))
        # Training starts only once the data passed the image checks.
        trainer.add_upstream_node(image_validator)
        model = gated_model(config, kind, class_names, example_gen.examples, trainer,
                            trainer.outputs["model"])
        components += [trainer, *model.components]
        gated.append(model)

    components += delivery(
        config, example_gen.examples, gated,
        ingest_summary=example_gen.outputs["ingest_summary"],
        quarantine=example_gen.outputs["quarantine_report"],
        validation=image_validator.outputs["findings"],
        model_run=gated[0].producer.outputs["model_run"])

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        # None on a remote store: only Kubeflow, which keeps its own, can run that pipeline
        # (the local and Beam runners call config.local_metadata_path() and say why).
        metadata_connection_config=None if storage.is_remote(config.metadata_path) else
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path),
        beam_pipeline_args=list(config.beam_pipeline_args),
    )


@dataclasses.dataclass
class GatedModel:
    """One model kind's candidate and the components that judge and quantize it."""

    kind: str
    producer: object  # the component that made the model (Trainer, or an Importer in tests)
    model: object  # its Model channel
    gates: GateConfig
    resolver: tfx.dsl.Resolver
    evaluator: tfx.components.Evaluator
    quantizer: object

    @property
    def components(self) -> list:
        return [self.resolver, self.evaluator, self.quantizer]


def gated_model(config: PipelineConfig, kind: str, class_names, examples, producer,
                model) -> GatedModel:
    """LatestBlessedModel resolver → Evaluator (gates) → Quantizer for one kind's `model`."""
    suffix = component_suffix(config, kind)
    gates = gate_config(config, class_names, kind)
    # Only this kind's models and blessings: a baseline must never be another kind's model.
    resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model,
                              producer_component_id=producer.id, output_key=model.output_key),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing,
                                       producer_component_id="Evaluator" + suffix,
                                       output_key="blessing"),
    ).with_id("latest_blessed_model_resolver" + suffix)
    evaluator = tfx.components.Evaluator(
        examples=examples,
        model=model,
        baseline_model=resolver.outputs["model"],
        example_splits=["test"],
        eval_config=build_eval_config(gates),
    ).with_id("Evaluator" + suffix)
    quantizer = Quantizer(
        model=model,
        examples=examples,
        model_blessing=evaluator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        gate_config_json=gates.to_json(),
        config_json=quantizer_config(config, class_names).to_json(),
        code_fingerprint=code_fingerprint.module_fingerprint(Quantizer.__module__),
    ).with_id("Quantizer" + suffix)
    return GatedModel(kind, producer, model, gates, resolver, evaluator, quantizer)


def delivery(config: PipelineConfig, examples, gated: list[GatedModel], **report_inputs) -> list:
    """EdgePusher for the first (primary) kind and the run report comparing every kind."""
    primary = gated[0]
    pusher = EdgePusher(
        model_blessing=primary.evaluator.outputs["blessing"],
        quantized_model=primary.quantizer.outputs["quantized_model"],
        push_destination=config.serving_model_dir,
        evaluation=primary.evaluator.outputs["evaluation"],
        examples=examples,
        gate_config=primary.gates,
        synthetic_data=config.synthetic_data,
    )
    report = RunReportGen(
        examples=examples,
        model=primary.model,
        evaluation=primary.evaluator.outputs["evaluation"],
        blessing=primary.evaluator.outputs["blessing"],
        quantized_model=primary.quantizer.outputs["quantized_model"],
        pushed_model=pusher.outputs["pushed_model"],
        # The other kinds, one input each (KFP v2 compiles no union channels; 3 kinds at most).
        **{f"compared_quantized_model_{i}": other.quantizer.outputs["quantized_model"]
           for i, other in enumerate(gated[1:], start=1)},
        synthetic_data=int(config.synthetic_data),
        gate_config_json=primary.gates.to_json(),
        code_fingerprint=code_fingerprint.module_fingerprint(RunReportGen.__module__),
        **report_inputs,
    )
    return [pusher, report]


def quantizer_config(config: PipelineConfig, class_names) -> QuantizerConfig:
    return QuantizerConfig(
        variants=config.quantization_variants,
        max_f1_drop=config.quantization_max_f1_drop,
        objective=config.quantization_objective,
        latency_threads=config.quantization_latency_threads,
        latency_margin=config.quantization_latency_margin,
        max_size_mb=config.quantization_max_size_mb,
        calibration_candidates=config.quantization_calibration_candidates,
        shift_gate=ShiftGateConfig(
            images=config.shift_gate_images,
            min_ok_accuracy=config.shift_gate_min_ok_accuracy,
            min_mild_acceptance=config.shift_gate_min_mild_acceptance,
            min_resolution_acceptance=config.shift_gate_min_resolution_acceptance,
            seed=config.seed),
        class_names=tuple(class_names),
        seed=config.seed,
    )


def resolve_pipeline_class_names(config: PipelineConfig) -> tuple[str, ...]:
    """The configured order, else the ExampleGen's rule (class folders found, sorted).

    Fixed when the pipeline is built, so the Trainer, the gates and the manifest agree."""
    if config.class_names:
        return tuple(config.class_names)
    if os.path.isdir(config.data_root):
        names, _ignored_folders = resolve_class_names(config.data_root)
        return tuple(names)
    # A tree only the workers can read (a bucket): the project's default order.
    return spec.CLASS_NAMES


def quarantine_evidence_dir(config: PipelineConfig) -> str:
    """<pipeline root>/quarantine: a failed ingestion's list of bad files, one folder per run."""
    return os.path.join(config.pipeline_root, "quarantine")


def component_suffix(config: PipelineConfig, kind: str) -> str:
    """"" with one model kind, "_<kind>" with several (Trainer_attention, Evaluator_baseline…)."""
    return "" if len(config.models) == 1 else f"_{kind}"


def gate_config(config: PipelineConfig, class_names, kind: str | None = None) -> GateConfig:
    """The Evaluator gates of one model kind (the primary kind when none is named)."""
    priority = spec.PRIORITY_CLASS if spec.PRIORITY_CLASS in class_names else class_names[0]
    return GateConfig(
        min_macro_f1=config.min_macro_f1,
        min_priority_recall=config.min_priority_recall,
        max_macro_f1_regression=config.max_macro_f1_regression,
        class_names=tuple(class_names),
        priority_class=priority,
        model_kind=kind or config.models[0],
    )


# The Trainer names its code by a Python path (RUN_FN), which reaches most of the project:
# its cache key carries the fingerprint of these packages (components/lib/code_fingerprint.py).
TRAINER_PACKAGES = ("trainer", "edge")


def source_fingerprint(packages: tuple[str, ...] = TRAINER_PACKAGES) -> str:
    return code_fingerprint.source_fingerprint(packages)


def train_custom_config(config: PipelineConfig, kind: str, class_names) -> dict:
    custom = {
        "code_fingerprint": source_fingerprint(),
        "model": kind,
        "class_names": list(class_names),
        "image_size": config.image_size,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "weights": config.weights,
        "seed": config.seed,
    }
    if config.max_train_seconds:
        custom["max_train_seconds"] = config.max_train_seconds
    custom.update(config.train_overrides)
    return custom
