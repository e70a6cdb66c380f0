"""Two model kinds in one pipeline: each Evaluator compares its candidate only with the last
blessed model of its own kind, the run summary names both and the one that was pushed, and the
report puts them side by side.

Gates are set to 0 here (a test setting, never a default) so that both tiny models are blessed
on the first run and a second run has a blessed baseline of each kind to choose from; with an
unfiltered resolver one of the two Evaluators would get the other kind's model."""

import os

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import demo_data
from pipelines import local_runner
from pipelines.configs import PipelineConfig
from pipelines.pipeline import gate_config, resolve_pipeline_class_names
from pipelines.run_summary import latest_run_summary

KINDS = ("baseline", "attention")


@pytest.mark.slow
def test_each_kind_is_gated_against_its_own_last_blessed_model(tmp_path):
    demo_data.generate(str(tmp_path / "data"), per_class=6, size=64, seed=2)
    config = PipelineConfig(
        pipeline_name="cxr-two-models", data_root=str(tmp_path / "data"),
        pipeline_root=str(tmp_path / "pipeline"), models=KINDS, image_size=32, epochs=1,
        min_macro_f1=0.0, min_covid_recall=0.0, max_regression=1.0,
        # No referral head: on 6 images per class its gate (>= 95% of test accepted) cannot be
        # met, and this test is about which baseline each Evaluator gets.
        train_overrides={"referral": False},
        quantization_variants=("float32",), beam_pipeline_args=("--direct_num_workers=1",))
    gates = gate_config(config, resolve_pipeline_class_names(config))

    local_runner.run(config)
    first = latest_run_summary(config.metadata_path, gates)
    assert set(first.models) == set(KINDS) and first.primary_kind == "baseline"
    assert all(first.models[kind].blessed for kind in KINDS), first.lines()

    local_runner.run(config)  # unchanged inputs: trainers cached, evaluators get a baseline
    second = latest_run_summary(config.metadata_path, gates)
    store = _store(config.metadata_path)
    for kind in KINDS:
        trained = _artifacts_of(store, f"Trainer_{kind}", "model", metadata_store_pb2.Event.OUTPUT)
        # What the Evaluator compared against, as it recorded it on its blessing. (Not the
        # input events: MLMD keeps one event per artifact and execution, and the candidate is
        # also an input, under "model", so the "baseline_model" path may not be the one kept.)
        blessings = _artifacts_of(store, f"Evaluator_{kind}", "blessing",
                                  metadata_store_pb2.Event.OUTPUT)
        baseline = {
            int(artifact.custom_properties["baseline_model_id"].int_value)
            for artifact in store.get_artifacts_by_id(sorted(blessings))
            if "baseline_model_id" in artifact.custom_properties}
        assert baseline and baseline <= trained, (kind, baseline, trained)
        regression = [g for g in second.models[kind].gates if g.baseline is not None]
        assert [g.gate for g in regression] == [f"no regression vs last blessed {kind} model"]

    lines = "\n".join(second.lines())
    assert "model baseline: BLESSED" in lines and "model attention: BLESSED" in lines
    assert "pushed baseline model to" in lines or "nothing pushed:" in lines
    with open(second.report_html, encoding="utf-8") as handle:
        page = handle.read()
    assert "Models side by side" in page
    assert "baseline (pushed kind)" in page and "<td>attention</td>" in page
    assert os.path.isfile(second.report_html)


def _store(path):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _artifacts_of(store, component: str, key: str, event_type) -> set[int]:
    """Ids of the artifacts every execution of `component` had under `key` (in or out)."""
    (node,) = [c for c in store.get_contexts_by_type("node") if c.name.endswith("." + component)]
    executions = [e.id for e in store.get_executions_by_context(node.id)]
    return {event.artifact_id for event in store.get_events_by_execution_ids(executions)
            if event.type == event_type and event.path.steps
            and event.path.steps[0].key == key}
