"""The unexpected-skip check of tests/skips.py: an allowed reason passes, any other fails."""

import re

from tests.support import skips


def test_every_allowed_line_is_a_valid_pattern_and_unknown_skips_are_named(tmp_path):
    assert skips.allowed_patterns()  # the real list parses
    listed = tmp_path / "allowed.txt"
    listed.write_text("# a comment\n\ncould not import 'tensorflow'  # the edge venv\n")
    patterns = skips.allowed_patterns(listed)
    assert [p.pattern for p in patterns] == ["could not import 'tensorflow'"]
    skipped = [("tests/edge/test_preprocess.py::test_x", "could not import 'tensorflow': none"),
               ("tests/edge/test_serve_browser.py", "headless Chromium is not installed")]
    assert skips.unexpected(skipped, patterns) == [
        "tests/edge/test_serve_browser.py: headless Chromium is not installed"]
    assert skips.unexpected(skipped, [re.compile(".")]) == []
