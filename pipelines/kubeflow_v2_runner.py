"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines (a JSON spec).

    CXR_DATA_ROOT=gs://bucket/cxr CXR_PIPELINE_ROOT=gs://bucket/runs \
        python pipelines/kubeflow_v2_runner.py --image REGISTRY/cxr-edge:TAG --out cxr-edge.json

Nothing runs here: the spec is submitted with the Kubeflow / Vertex client. The image must hold
this project installed with the `pipeline` extra (the Trainer imports trainer.run.run_fn).
"""

import argparse
import os

from tfx import v1 as tfx

from pipelines.configs import PipelineConfig
from pipelines.pipeline import create_pipeline


def compile_pipeline(config: PipelineConfig, image: str, out: str) -> str:
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(out)), output_filename=os.path.basename(out))
    runner.run(create_pipeline(config), write_out=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="cxr-edge:latest")
    parser.add_argument("--out", default="cxr-edge-kubeflow-v2.json")
    args = parser.parse_args(argv)
    print(compile_pipeline(PipelineConfig.from_env(), args.image, args.out))


if __name__ == "__main__":
    main()
