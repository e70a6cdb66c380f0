"""`cxr-pipeline`: the command line of the pipeline side.

  cxr-pipeline demo-data --out DIR [--per-class N] [--size PX] [--seed S] [--site NAME]
  cxr-pipeline run --data-root DIR --pipeline-root DIR [--runner local|beam]
                   [--model attention [--model baseline ...]] [--image-size PX] [--epochs N]
                   [--serving-dir DIR] [--verbose]
  cxr-pipeline demo [--workdir demo-run] [--verbose]

Exit codes of `run` and `demo`: 0 the model was blessed and pushed; 3 the run completed but the
model was not blessed (a gate failed) or nothing was pushed; 1 the run failed.
"""

import argparse
import sys

from components.lib import demo_data
from pipelines import demo
from pipelines.configs import PipelineConfig
from pipelines.runs import EXIT_FAILED, EXIT_NOT_BLESSED, EXIT_OK, run_and_report  # noqa: F401
from trainer.constants import MODEL_KINDS


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="cxr-pipeline", description="Chest X-ray triage pipeline: data, training, edge push.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    demo_data.add_demo_data_parser(subparsers)
    _add_run_parser(subparsers)
    demo.add_demo_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


def _add_run_parser(subparsers):
    parser = subparsers.add_parser(
        "run", help="run the whole pipeline on a class-folder tree",
        description="Run the whole pipeline. Settings not given here come from CXR_* variables "
                    "(pipelines/configs.py), then the defaults.")
    parser.add_argument("--data-root", required=True,
                        help="class folders (Kaggle layout <Class>/images/* or <Class>/*)")
    parser.add_argument("--pipeline-root", required=True,
                        help="everything the run writes goes here (artifacts, MLMD, report)")
    parser.add_argument("--runner", choices=("local", "beam"), default="beam")
    parser.add_argument("--model", action="append", dest="models",
                        choices=MODEL_KINDS,
                        help="repeat to train several; the first is pushed (default attention)")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--serving-dir", help="where to push (default <pipeline-root>/serving)")
    parser.add_argument("--real-data", action="store_true",
                        help="the data are real X-rays (the report and manifest otherwise say "
                             "synthetic)")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's, Beam's and TFX's logs here, not in "
                             "<pipeline-root>/pipeline.log")
    parser.set_defaults(func=_run_from_args)


def _run_from_args(args):
    config = PipelineConfig.from_env(
        data_root=args.data_root, pipeline_root=args.pipeline_root,
        models=tuple(args.models) if args.models else None, image_size=args.image_size,
        epochs=args.epochs, serving_dir=args.serving_dir,
        synthetic_data=False if args.real_data else None)
    return run_and_report(config, args.runner, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
