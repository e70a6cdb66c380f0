"""The same create_pipeline compiles for Kubeflow Pipelines v2 / Vertex (not run)."""

import json

from components.lib import demo_data
from pipelines import kubeflow_v2_runner
from pipelines.configs import PipelineConfig


def test_pipeline_compiles_to_a_kubeflow_v2_spec(tmp_path):
    data_root = tmp_path / "data"
    demo_data.generate(str(data_root), per_class=2, size=64)
    config = PipelineConfig(data_root=str(data_root), pipeline_root=str(tmp_path / "root"),
                            models=("attention", "baseline"))
    out = kubeflow_v2_runner.compile_pipeline(config, "registry.example/cxr-edge:1",
                                              str(tmp_path / "spec.json"))
    with open(out) as handle:
        spec = json.load(handle)
    pipeline_spec = spec.get("pipelineSpec", spec)
    tasks = set(pipeline_spec["root"]["dag"]["tasks"])
    expected = {"ImageExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
                "ImageValidator", "Trainer_attention", "Evaluator_attention",
                "Quantizer_attention", "Trainer_baseline", "Evaluator_baseline",
                "Quantizer_baseline", "EdgePusher", "RunReportGen"}
    assert expected <= tasks, sorted(tasks)
    images = {executor["container"]["image"]
              for executor in pipeline_spec["deploymentSpec"]["executors"].values()
              if "container" in executor}
    assert images == {"registry.example/cxr-edge:1"}
