"""Suite-wide hooks only (shared helpers live in tests/support/).

An unexpected skip fails `make test`: with CXR_STRICT_SKIPS=1 (tools/run_tests.sh sets it)
every skipped test's reason must match a line of tests/allowed_skips.txt, which says why that
skip is expected in the venv it happens in; anything else is a missing package or tool that CI
would otherwise never notice.
"""

import os

import pytest

from tests.support.skips import allowed_patterns, unexpected

_skipped: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        _skipped.append((report.nodeid, str(report.longrepr[2])))


def pytest_collectreport(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        _skipped.append((report.nodeid, str(report.longrepr[2])))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CXR_STRICT_SKIPS") != "1" or not _skipped:
        return
    surprises = unexpected(_skipped, allowed_patterns())
    if surprises:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["unexpected skips (not in tests/allowed_skips.txt):", *surprises]
        if reporter:
            reporter.ensure_newline()
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
