"""Runs the pipeline with TFX's BeamDagRunner: the DAG itself is a Beam pipeline.

    python pipelines/beam_runner.py
    tfx pipeline create --engine beam --pipeline_path "$PWD/pipelines/beam_runner.py"
    tfx run create --engine beam --pipeline_name cxr-edge

Settings come from the environment (CXR_*; see pipelines/configs.py). For a cluster, point the
components' Beam jobs elsewhere with CXR_BEAM_PIPELINE_ARGS (README: Flink, Spark, Dataflow).
"""

import os

from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

from pipelines import console
from pipelines.configs import PipelineConfig
from pipelines.pipeline import create_pipeline


def run(config: PipelineConfig | None = None):
    config = config or PipelineConfig.from_env()
    config.local_metadata_path()  # fails fast, naming the path, when it is gs:// or s3://
    return BeamDagRunner().run(create_pipeline(config))


if __name__ == "__main__":
    main_config = PipelineConfig.from_env()
    # Library logs to <pipeline root>/pipeline.log; CXR_VERBOSE=1 keeps them on the terminal.
    with console.quiet(console.log_path_for(main_config.pipeline_root),
                       verbose=os.environ.get("CXR_VERBOSE") == "1"):
        run(main_config)
