"""What `cxr-pipeline run` and `demo` tell the user: the exit code and the summary lines, pinned
as pure functions of how the run ended (the end-to-end tests check them on real runs)."""

from pipelines.run_summary import ModelOutcome, RunSummary
from pipelines.runs import EXIT_FAILED, EXIT_NOT_BLESSED, EXIT_OK, exit_code


def _summary(blessed, pushed_dir=None, push_reason=None) -> RunSummary:
    return RunSummary(
        run_id="run-1", metadata_path="/m.sqlite",
        executions={"Trainer": "COMPLETE", "EdgePusher": "COMPLETE"},
        report_html="/r/report.html", pushed_dir=pushed_dir, push_reason=push_reason,
        primary_kind="attention",
        models={"attention": ModelOutcome("attention", blessed, [], "int8" if pushed_dir else None),
                "baseline": ModelOutcome("baseline", False)})


def test_exit_codes_pin_the_three_endings():
    assert EXIT_OK == 0 and EXIT_FAILED == 1 and EXIT_NOT_BLESSED == 3
    assert exit_code(RuntimeError("boom"), _summary(True, "/serving/v1")) == EXIT_FAILED
    assert exit_code(None, None) == EXIT_NOT_BLESSED
    assert exit_code(None, _summary(False)) == EXIT_NOT_BLESSED
    assert exit_code(None, _summary(True)) == EXIT_NOT_BLESSED  # blessed, nothing pushed
    assert exit_code(None, _summary(True, "/serving/v1")) == EXIT_OK


def test_summary_lines_name_every_kind_and_what_was_pushed_and_why():
    text = "\n".join(_summary(True, "/serving/v1", "blessed; int8 is the fastest").lines())
    assert "run-1" in text and "/r/report.html" in text
    assert "model attention: BLESSED, variant int8" in text
    assert "model baseline: NOT blessed" in text
    assert "pushed attention model to /serving/v1: blessed; int8 is the fastest" in text
    refused = "\n".join(_summary(False).lines())
    assert "nothing pushed: the attention model was not blessed" in refused
