"""create_pipeline's wiring, read from the compiled IR (nothing runs): each model kind's
Evaluator is compared only with a blessed model of its own kind."""

import os

from tfx.dsl.compiler import compiler

from components.lib import demo_data
from edge import spec
from pipelines.configs import PipelineConfig
from pipelines.pipeline import create_pipeline


def test_each_kind_resolves_its_baseline_from_its_own_trainer_and_evaluator(tmp_path):
    demo_data.generate(str(tmp_path / "data"), per_class=2, size=64)
    config = PipelineConfig(data_root=str(tmp_path / "data"), pipeline_root=str(tmp_path / "r"),
                            models=("attention", "baseline"))
    ir = compiler.Compiler().compile(create_pipeline(config))
    nodes = {node.pipeline_node.node_info.id: node.pipeline_node for node in ir.nodes}
    for kind in config.models:
        resolver = nodes[f"latest_blessed_model_resolver_{kind}"]
        # The strategy reads hidden inputs, each queried by its producer node's MLMD context.
        queried = {
            (channel.artifact_query.type.name, channel.output_key): {
                query.name.field_value.string_value
                for query in channel.context_queries if query.type.name == "node"}
            for spec in resolver.inputs.inputs.values() for channel in spec.channels
        }
        assert queried == {
            ("Model", "model"): {f"cxr-edge.Trainer_{kind}"},
            ("ModelBlessing", "blessing"): {f"cxr-edge.Evaluator_{kind}"},
        }, queried
        evaluator = nodes[f"Evaluator_{kind}"]
        baseline = evaluator.inputs.inputs["baseline_model"].channels
        assert {c.producer_node_query.id for c in baseline} == {
            f"latest_blessed_model_resolver_{kind}"}
    # The report sees every kind's Quantizer output, the primary one first.
    report_inputs = nodes["RunReportGen"].inputs.inputs
    assert {c.producer_node_query.id for c in report_inputs["quantized_model"].channels} == {
        "Quantizer_attention"}
    assert {c.producer_node_query.id
            for c in report_inputs["compared_quantized_model_1"].channels} == {
        "Quantizer_baseline"}


def test_trainer_cache_key_carries_the_fingerprint_of_its_code(tmp_path, monkeypatch):
    # run_fn is a Python path, so only a property can tell TFX's cache that the code changed.
    import shutil

    from pipelines import pipeline

    config = PipelineConfig(data_root=str(tmp_path), pipeline_root=str(tmp_path / "r"))
    custom = pipeline.train_custom_config(config, "attention", ("a", "b"))
    assert custom["code_fingerprint"] == pipeline.source_fingerprint()
    assert len(custom["code_fingerprint"]) == 16

    # A copy of the edge package (importable from tmp_path): one changed byte, a new key.
    shutil.copytree(os.path.dirname(spec.__file__), tmp_path / "edgecopy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(tmp_path))
    before = pipeline.source_fingerprint(("edgecopy",))
    assert pipeline.source_fingerprint(("edgecopy",)) == before
    with open(tmp_path / "edgecopy" / "spec.py", "a") as handle:
        handle.write("# changed\n")
    assert pipeline.source_fingerprint(("edgecopy",)) != before


def test_every_component_of_ours_carries_the_fingerprint_of_the_code_it_runs(tmp_path):
    # TFX keys its cache on properties, not on the code behind an executor's Python path.
    from components.lib import code_fingerprint

    demo_data.generate(str(tmp_path / "data"), per_class=2, size=64)
    config = PipelineConfig(data_root=str(tmp_path / "data"), pipeline_root=str(tmp_path / "r"))
    ir = compiler.Compiler().compile(create_pipeline(config))
    nodes = {node.pipeline_node.node_info.id: node.pipeline_node for node in ir.nodes}
    expected = {
        "ImageExampleGen": "components.image_example_gen.executor",
        "ImageValidator": "components.image_validator",
        "Quantizer": "components.quantizer",
        "EdgePusher": "components.edge_pusher",
        "RunReportGen": "components.report",
    }
    for node_id, module in expected.items():
        parameters = nodes[node_id].parameters.parameters
        value = parameters["code_fingerprint"].field_value.string_value
        assert value == code_fingerprint.module_fingerprint(module), node_id
    eval_config = nodes["Evaluator"].parameters.parameters["eval_config"].field_value.string_value
    assert code_fingerprint.module_fingerprint("components.lib.tfma_metrics") in eval_config
