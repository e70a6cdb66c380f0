"""Two model kinds gated in one pipeline: each Evaluator compares its candidate only with the
last blessed model of its own kind, the run summary names both and the one that was pushed, and
the report puts them side by side.

create_pipeline's own per-kind wiring (`pipeline.gated_model` for each kind, then
`pipeline.delivery`), run for real by LocalDagRunner twice; the two kinds' models come from
importers, not Trainers (tests/pipelines/test_pipeline_wiring.py pins that create_pipeline feeds
each resolver from its own kind's Trainer and Evaluator, the e2e test runs a Trainer). Both tiny
models pass the gates, so on the second run each resolver has a blessed model of either kind to
choose from; an unfiltered resolver would give one Evaluator the other kind's model.
"""

import json
import os

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from edge import spec
from pipelines import pipeline
from pipelines.configs import PipelineConfig
from pipelines.run_summary import latest_run_summary
from tests.components import evalkit

KINDS = ("baseline", "attention")


@pytest.mark.slow
def test_each_kind_is_gated_against_its_own_last_blessed_model(tmp_path):
    root = str(tmp_path)
    examples = evalkit.write_examples(os.path.join(root, "examples"))
    models = {kind: evalkit.train_tiny_model(examples, os.path.join(root, kind), seed=seed,
                                             epochs=12, with_attention=kind == "attention")
              for seed, kind in enumerate(KINDS)}
    config = PipelineConfig(
        pipeline_name="cxr-two-models", pipeline_root=os.path.join(root, "pipeline"),
        serving_dir=os.path.join(root, "serving"), class_names=spec.CLASS_NAMES, models=KINDS,
        quantization_variants=("float32",), quantization_objective="smallest",
        synthetic_data=True, shift_gate_images=0)  # tiny models; the battery has its own tests

    _run(config, examples, models)
    first = latest_run_summary(config.metadata_path, _gates(config))
    assert set(first.models) == set(KINDS) and first.primary_kind == "baseline"
    assert all(first.models[kind].blessed for kind in KINDS), first.lines()

    _run(config, examples, models)  # the same models: now each has a blessed baseline
    second = latest_run_summary(config.metadata_path, _gates(config))
    store = _store(config.metadata_path)
    for kind in KINDS:
        imported = _artifacts_of(store, f"model_importer_{kind}", "result",
                                 metadata_store_pb2.Event.OUTPUT)
        # What the Evaluator compared against, as it recorded it on its blessing. (Not the
        # input events: MLMD keeps one event per artifact and execution, and the candidate is
        # also an input, under "model", so the "baseline_model" path may not be the one kept.)
        blessings = _artifacts_of(store, f"Evaluator_{kind}", "blessing",
                                  metadata_store_pb2.Event.OUTPUT)
        baseline = {
            int(artifact.custom_properties["baseline_model_id"].int_value)
            for artifact in store.get_artifacts_by_id(sorted(blessings))
            if "baseline_model_id" in artifact.custom_properties}
        assert baseline and baseline <= imported, (kind, baseline, imported)
        regression = [g for g in second.models[kind].gates if g.baseline is not None]
        assert [g.gate for g in regression] == [f"no regression vs last blessed {kind} model"]

    lines = "\n".join(second.lines())
    assert "model baseline: BLESSED" in lines and "model attention: BLESSED" in lines
    assert "pushed baseline model to" in lines or "nothing pushed:" in lines
    with open(second.report_html, encoding="utf-8") as handle:
        page = handle.read()
    assert "Models side by side" in page
    assert "baseline (pushed kind)" in page and "<td>attention</td>" in page


def _run(config: PipelineConfig, examples_dir: str, models: dict) -> None:
    """create_pipeline's wiring after the Trainers, for each kind, fed by importers."""
    examples = tfx.dsl.Importer(
        source_uri=examples_dir, artifact_type=tfx.types.standard_artifacts.Examples,
        properties={"split_names": json.dumps(list(spec.SPLITS))},
    ).with_id("examples_importer")
    components, gated = [examples], []
    for kind in config.models:
        model = tfx.dsl.Importer(
            source_uri=os.path.dirname(models[kind]),
            artifact_type=tfx.types.standard_artifacts.Model).with_id(f"model_importer_{kind}")
        gated.append(pipeline.gated_model(config, kind, config.class_names,
                                          examples.outputs["result"], model,
                                          model.outputs["result"]))
        components += [model, *gated[-1].components]
    components += pipeline.delivery(config, examples.outputs["result"], gated)
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
        components=components,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path)))


def _gates(config):
    return pipeline.gate_config(config, config.class_names)


def _store(path):
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def _artifacts_of(store, component: str, key: str, event_type) -> set[int]:
    """Ids of the artifacts every execution of `component` had under `key` (in or out)."""
    (node,) = [c for c in store.get_contexts_by_type("node") if c.name.endswith("." + component)]
    executions = [e.id for e in store.get_executions_by_context(node.id)]
    return {event.artifact_id for event in store.get_events_by_execution_ids(executions)
            if event.type == event_type and event.path.steps
            and event.path.steps[0].key == key}
