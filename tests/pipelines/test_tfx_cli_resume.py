"""The user's path through the `tfx` CLI (local engine), and resuming a run killed mid-way.

`tfx pipeline create` + `tfx run create` run pipelines/local_runner.py, configured only through
CXR_* variables (the CLI passes no flags). The first run is killed once the Trainer has
finished; the rerun must reuse everything that finished (CACHED in MLMD) and complete.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.lib import demo_data
from pipelines.configs import REPO_ROOT, PipelineConfig
from pipelines.pipeline import gate_config, resolve_pipeline_class_names
from pipelines.run_summary import latest_run_summary

PIPELINE_NAME = "cxr-cli-test"
UPSTREAM_OF_EVALUATOR = {"ImageExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
                         "ImageValidator", "Trainer"}


@pytest.mark.slow
def test_tfx_cli_run_killed_after_the_trainer_resumes_from_the_cache(tmp_path):
    data_root, pipeline_root = tmp_path / "data", tmp_path / "pipeline"
    demo_data.generate(str(data_root), per_class=6, size=64, seed=1)
    env = dict(os.environ, LOCAL_HOME=str(tmp_path / "tfx_home"),
               CXR_PIPELINE_NAME=PIPELINE_NAME, CXR_DATA_ROOT=str(data_root),
               CXR_PIPELINE_ROOT=str(pipeline_root), CXR_IMAGE_SIZE="32", CXR_EPOCHS="1",
               CXR_QUANTIZATION_VARIANTS="dynamic", CXR_SHIFT_GATE_IMAGES="0",
               CXR_BEAM_PIPELINE_ARGS="--direct_num_workers=1")
    tfx = str(Path(sys.executable).parent / "tfx")
    runner = str(REPO_ROOT / "pipelines" / "local_runner.py")
    subprocess.run([tfx, "pipeline", "create", "--engine", "local", "--pipeline_path", runner],
                   env=env, check=True, timeout=300)
    run = [tfx, "run", "create", "--engine", "local", "--pipeline_name", PIPELINE_NAME]
    metadata = pipeline_root / "metadata.sqlite"

    first = subprocess.Popen(run, env=env, start_new_session=True)
    try:
        _wait_for_complete(metadata, "Trainer", first, timeout_s=900)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    subprocess.run(run, env=env, check=True, timeout=1200)
    config = PipelineConfig.from_env(env)
    summary = latest_run_summary(config.metadata_path,
                                 gate_config(config, resolve_pipeline_class_names(config)))
    states = summary.executions
    assert {name: states.get(name) for name in UPSTREAM_OF_EVALUATOR} == dict.fromkeys(
        UPSTREAM_OF_EVALUATOR, "CACHED"), states
    for name in ("Evaluator", "Quantizer", "EdgePusher", "RunReportGen"):
        assert states.get(name) == "COMPLETE", states
    # One training only, across both runs.
    assert _count_executions(metadata, "Trainer", "COMPLETE") == 1


def _wait_for_complete(metadata: Path, component: str, process, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the first run ended (exit {process.returncode}) before it was killed")
        if metadata.exists() and _count_executions(metadata, component, "COMPLETE"):
            return
        time.sleep(1)
    pytest.fail(f"{component} did not complete within {timeout_s} s")


def _count_executions(metadata: Path, component: str, state: str) -> int:
    # MLMD's own schema: executions attributed to the node context "<pipeline>.<component>".
    states = {"COMPLETE": 3, "CACHED": 5}
    query = """
        SELECT COUNT(*) FROM Execution e
        JOIN Association a ON a.execution_id = e.id
        JOIN Context c ON c.id = a.context_id
        WHERE c.name = ? AND e.last_known_state = ?"""
    try:
        with sqlite3.connect(f"file:{metadata}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(query, (f"{PIPELINE_NAME}.{component}", states[state])).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet, or the writer holds a lock
        return 0
