"""Which skips `make test` expects: tests/allowed_skips.txt, read and matched."""

import re
from pathlib import Path

ALLOWED_SKIPS = Path(__file__).resolve().parent.parent / "allowed_skips.txt"


def allowed_patterns(path: Path = ALLOWED_SKIPS) -> list[re.Pattern]:
    """One regular expression per non-blank line, before its `  # why` comment."""
    lines = (line.split("  #", 1)[0].strip() for line in path.read_text().splitlines())
    return [re.compile(line) for line in lines if line and not line.startswith("#")]


def unexpected(skipped: list[tuple[str, str]], patterns: list[re.Pattern]) -> list[str]:
    """`<test id>: <reason>` of every skip no pattern allows."""
    return [f"{node}: {reason}" for node, reason in skipped
            if not any(pattern.search(f"{node}: {reason}") for pattern in patterns)]
