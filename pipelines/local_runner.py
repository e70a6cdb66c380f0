"""Runs the pipeline with TFX's LocalDagRunner (components in this process, in order).

    python pipelines/local_runner.py
    tfx pipeline create --engine local --pipeline_path "$PWD/pipelines/local_runner.py"
    tfx run create --engine local --pipeline_name cxr-edge

Settings come from the environment (CXR_*; see pipelines/configs.py). Beam-based components
still use `beam_pipeline_args` (DirectRunner, one process per core by default).
"""

import os

from tfx import v1 as tfx

from pipelines import console
from pipelines.configs import PipelineConfig
from pipelines.pipeline import create_pipeline


def run(config: PipelineConfig | None = None):
    config = config or PipelineConfig.from_env()
    config.local_metadata_path()  # fails fast, naming the path, when it is gs:// or s3://
    return tfx.orchestration.LocalDagRunner().run(create_pipeline(config))


if __name__ == "__main__":
    main_config = PipelineConfig.from_env()
    # Library logs to <pipeline root>/pipeline.log; CXR_VERBOSE=1 keeps them on the terminal.
    with console.quiet(console.log_path_for(main_config.pipeline_root),
                       verbose=os.environ.get("CXR_VERBOSE") == "1"):
        run(main_config)
