"""What a pipeline command shows: its own lines on the terminal, the libraries' logs in a file.

TensorFlow, Beam and TFX write hundreds of lines a run (C++ notices, deprecations, worker
chatter) on standard error. `quiet(log_path)` sends all of it to `log_path`: file descriptor 2
(C++ logs of this process and of the Beam workers it starts) and Python logging. The terminal
keeps standard output, Python's own errors and tracebacks, and one line as each pipeline
component starts and ends, with its time. `--verbose` leaves everything on the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator

LOG_FILENAME = "pipeline.log"
# TFX's orchestrators log these (absl, INFO) around every node they run.
_STARTED = re.compile(r"^(?:node|Component) (\S+) is running\.$")
_FINISHED = re.compile(r"^(?:node|Component) (\S+) is finished\.$")
_CACHED = re.compile(r"^A cached execution \d+ is used\.$")


class ComponentProgress(logging.Handler):
    """Prints `  Trainer ... done in 197 s` lines from the orchestrator's node messages."""

    def __init__(self, stream=None):
        super().__init__(logging.INFO)
        self.stream = stream or sys.stdout
        self.started: dict[str, float] = {}
        self.cached: set[str] = set()
        self.current: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed library record is not ours to raise
            return
        if started := _STARTED.match(message):
            node = started.group(1)
            self.started[node], self.current = time.monotonic(), node
            self._print(f"  {node} ...")
        elif _CACHED.match(message) and self.current:
            self.cached.add(self.current)
        elif finished := _FINISHED.match(message):
            node = finished.group(1)
            seconds = time.monotonic() - self.started.pop(node, time.monotonic())
            how = "cached" if node in self.cached else f"done in {seconds:.0f} s"
            self._print(f"  {node} {how}")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def log_path_for(pipeline_root: str) -> str:
    """The log file beside the run's artifacts; in the working directory for a remote root."""
    if "://" in pipeline_root:
        return os.path.abspath(LOG_FILENAME)
    return os.path.join(pipeline_root, LOG_FILENAME)


@contextlib.contextmanager
def quiet(log_path: str, verbose: bool = False) -> Iterator[str | None]:
    """Within the block, libraries log to `log_path` (appended) and the terminal shows
    component progress; yields the log's path (None when verbose)."""
    if verbose:
        yield None
        return
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    # Read by TensorFlow when it loads (`cxr-pipeline` sets 2 before it imports TensorFlow),
    # and inherited by the Beam workers started below.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    log = open(log_path, "a", buffering=1, encoding="utf-8")  # closed in the finally below
    sys.stderr.flush()
    terminal_fd = os.dup(2)
    os.dup2(log.fileno(), 2)
    saved_stderr = sys.stderr
    if _writes_to_fd2(saved_stderr):  # else it is a capture (a test's), which keeps working
        sys.stderr = os.fdopen(os.dup(terminal_fd), "w", buffering=1, encoding="utf-8")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    tensorflow = logging.getLogger("tensorflow")  # its own stderr handler, if TF is loaded
    saved_tensorflow = (list(tensorflow.handlers), tensorflow.propagate)
    tensorflow.handlers, tensorflow.propagate = [], True
    file_handler = logging.StreamHandler(log)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    progress = ComponentProgress()
    root.handlers = [file_handler, progress]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield log_path
    finally:
        logging.captureWarnings(False)
        root.handlers, level = saved
        tensorflow.handlers, tensorflow.propagate = saved_tensorflow
        root.setLevel(level)
        if sys.stderr is not saved_stderr:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = saved_stderr
        os.dup2(terminal_fd, 2)
        os.close(terminal_fd)
        log.close()


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False
