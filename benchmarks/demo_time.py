"""`make demo` wall time: from a demo log, else the demo's MLMD store, else by running it.

A demo log holds the line `cxr-pipeline demo: finished in X min (exit N)` that
`pipelines/demo.py` prints (the whole command: data, pipeline, edge classify). Without a log,
the latest run recorded in the demo's MLMD store gives the pipeline part only (first execution
created to last execution updated). `--time-demo` runs `cxr-pipeline demo` and times it.
"""

import os
import re
import subprocess
import time

from benchmarks.common import REPO_ROOT, pipeline_python, subprocess_env

FINISHED = re.compile(r"cxr-pipeline demo: finished in ([0-9.]+) min \(exit (-?\d+)\)")


def measure(log: str | None, workdir: str, run_it: bool) -> dict:
    if run_it:
        return _time_demo(workdir)
    if log:
        found = _from_log(log)
        if found:
            return found
    return _from_store(os.path.join(workdir, "pipeline", "metadata.sqlite"), log)


def _from_log(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path, errors="replace") as handle:
        matches = FINISHED.findall(handle.read())
    if not matches:
        return None
    minutes, code = matches[-1]
    return {"source": f"demo log {path} (the demo's own 'finished in' line)",
            "wall_s": round(float(minutes) * 60, 1), "exit_code": int(code),
            "log_modified_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(
                os.path.getmtime(path)))}


def _from_store(metadata_path: str, log: str | None) -> dict:
    if not os.path.isfile(metadata_path):
        return {"source": None, "wall_s": None,
                "note": f"not measured: no demo log{' at ' + log if log else ''} and no "
                        f"{metadata_path}; run `make demo` first, or pass --demo-log or "
                        "--time-demo"}
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    runs = store.get_contexts_by_type("pipeline_run")
    run = max(runs, key=lambda context: context.create_time_since_epoch)
    executions = store.get_executions_by_context(run.id)
    first = min(e.create_time_since_epoch for e in executions)
    last = max(e.last_update_time_since_epoch for e in executions)
    states = {metadata_store_pb2.Execution.State.Name(e.last_known_state) for e in executions}
    return {"source": f"MLMD store {metadata_path}, latest run {run.name}: pipeline part only "
                      "(no data generation, no edge classify)",
            "wall_s": round((last - first) / 1000, 1), "execution_states": sorted(states)}


def _time_demo(workdir: str) -> dict:
    started = time.monotonic()
    code = subprocess.run([pipeline_python(), "-m", "pipelines.cli", "demo", "--workdir",
                           workdir], cwd=REPO_ROOT, env=subprocess_env()).returncode
    return {"source": f"timed here: cxr-pipeline demo --workdir {workdir}",
            "wall_s": round(time.monotonic() - started, 1), "exit_code": code}
