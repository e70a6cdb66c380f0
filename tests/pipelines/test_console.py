"""Quiet by default: the libraries' logs go to the run's log file, the terminal keeps the
pipeline's own lines, Python's errors and one line per component."""

import logging
import os
import subprocess
import sys

from pipelines import console


def _a_noisy_run():
    print("the pipeline's own line")
    os.write(2, b"C++ notice from TensorFlow\n")
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a Beam worker\\n')"],
                   check=True)
    logging.getLogger("absl").info("node Trainer is running.")
    logging.getLogger("absl").info("A cached execution 7 is used.")
    logging.getLogger("absl").info("node Trainer is finished.")
    logging.getLogger("tensorflow").warning("Instructions for updating")
    print("an error of ours", file=sys.stderr)


def test_library_logs_go_to_the_file_and_the_terminal_keeps_ours(tmp_path, capfd):
    log_path = tmp_path / "root" / console.LOG_FILENAME
    with console.quiet(str(log_path)) as path:
        _a_noisy_run()
    shown = capfd.readouterr()
    logged = log_path.read_text()
    assert path == str(log_path)
    assert "the pipeline's own line" in shown.out and "  Trainer cached" in shown.out
    assert "an error of ours" in shown.err
    for library_line in ("C++ notice", "a Beam worker", "Instructions for updating",
                         "node Trainer is running."):
        assert library_line in logged and library_line not in shown.out + shown.err
    # Afterwards, standard error is the terminal again.
    os.write(2, b"after the block\n")
    assert "after the block" in capfd.readouterr().err


def test_verbose_leaves_everything_on_the_terminal(tmp_path, capfd):
    log_path = tmp_path / console.LOG_FILENAME
    with console.quiet(str(log_path), verbose=True) as path:
        _a_noisy_run()
    shown = capfd.readouterr()
    assert path is None and not log_path.exists()
    assert "C++ notice" in shown.err and "a Beam worker" in shown.err


def test_component_lines_time_each_node():
    lines = []
    progress = console.ComponentProgress()
    progress._print = lines.append
    for message in ("node ImageExampleGen is running.", "node ImageExampleGen is finished.",
                    "Component Trainer is running.", "Component Trainer is finished."):
        progress.emit(logging.LogRecord("absl", logging.INFO, __file__, 1, message, None, None))
    assert lines[0] == "  ImageExampleGen ..." and lines[1].startswith("  ImageExampleGen done in")
    assert lines[3].endswith(" s") and lines[2] == "  Trainer ..."


def test_the_log_sits_beside_a_local_root_and_in_the_working_directory_for_a_remote_one():
    assert console.log_path_for("/runs/a") == os.path.join("/runs/a", console.LOG_FILENAME)
    assert console.log_path_for("gs://bucket/runs/a") == os.path.abspath(console.LOG_FILENAME)


def test_the_command_line_loads_tensorflow_only_inside_the_quiet_block():
    # Its start-up notices would otherwise print before the run's log file is open.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, pipelines.cli; print('tensorflow' in sys.modules)"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"
