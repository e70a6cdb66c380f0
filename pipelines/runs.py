"""Running the pipeline from a command: run it, print what it produced, return the exit code.

Shared by `cxr-pipeline run` (pipelines/cli.py) and `cxr-pipeline demo` (pipelines/demo.py),
so neither imports the other.

Exit codes: 0 the primary model was blessed and pushed; 3 the run completed but it was not
blessed or nothing was pushed; 1 the run failed.
"""

import logging
import sys

from pipelines import console
from pipelines.configs import PipelineConfig

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_BLESSED = 3


def run_and_report(config: PipelineConfig, runner: str, verbose: bool = False) -> int:
    """Runs the pipeline, prints what it produced, returns the exit code. Library logs go to
    <pipeline root>/pipeline.log unless `verbose`."""
    print(f"cxr-pipeline: {runner} run of {config.models} on {config.data_root} "
          f"({'SYNTHETIC' if config.synthetic_data else 'real'} data) → {config.pipeline_root}",
          flush=True)
    log_path = console.log_path_for(config.pipeline_root)
    if not verbose:
        print(f"cxr-pipeline: TensorFlow's, Beam's and TFX's logs go to {log_path} "
              "(--verbose shows them here)", flush=True)
    with console.quiet(log_path, verbose):
        code = _run(config, runner)
    if code == EXIT_FAILED and not verbose:
        print(f"cxr-pipeline: the libraries' log of this run is {log_path}", file=sys.stderr)
    return code


def _run(config: PipelineConfig, runner: str) -> int:
    from pipelines import beam_runner, local_runner
    from pipelines.pipeline import gate_config, resolve_pipeline_class_names
    from pipelines.run_summary import latest_run_summary

    failure = None
    try:
        (beam_runner if runner == "beam" else local_runner).run(config)
    except Exception as error:  # reported with the run's state, then exit 1
        failure = error
        logging.getLogger(__name__).exception("the run failed")  # the traceback, in the log
    gates = gate_config(config, resolve_pipeline_class_names(config))
    try:
        summary = latest_run_summary(config.metadata_path, gates)
    except Exception as error:
        summary = None
        print(f"cxr-pipeline: no run summary ({error})", file=sys.stderr)
    if summary is not None:
        print("\n".join(summary.lines()))
    if failure is not None:
        print(f"cxr-pipeline: the run FAILED: {type(failure).__name__}: {failure}",
              file=sys.stderr)
    return exit_code(failure, summary)


def exit_code(failure: Exception | None, summary) -> int:
    """The command's exit code from how the run ended and its summary (RunSummary or None)."""
    if failure is not None:
        return EXIT_FAILED
    if summary is None or not summary.blessed or not summary.pushed:
        return EXIT_NOT_BLESSED
    return EXIT_OK
