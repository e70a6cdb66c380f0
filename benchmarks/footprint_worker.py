"""Worker: installed size of a requirement set in this interpreter's environment.

    python benchmarks/footprint_worker.py "numpy>=1.24" "Pillow>=10.0" "ai-edge-litert>=2.3.0"

Follows each distribution's own requirements (environment markers evaluated, extras only where
asked) and sums the bytes of the files each installs (its RECORD). Prints JSON. Standard
library only, so it runs in the edge venv as well as the pipeline venv.
"""

import json
import re
import sys
import sysconfig
from importlib import metadata


def main(argv=None):
    requirements = list(sys.argv[1:] if argv is None else argv)
    closure = {}
    missing = []
    queue = [_parse(requirement) for requirement in requirements]
    while queue:
        name, extras = queue.pop()
        key = _normalise(name)
        if key in closure:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        closure[key] = {"name": distribution.metadata["Name"],
                        "version": distribution.version,
                        "bytes": _installed_bytes(distribution)}
        for requirement in distribution.requires or []:
            if _applies(requirement, extras):
                queue.append(_parse(requirement))
    print(json.dumps({
        "python": sys.version.split()[0],
        "prefix": sys.prefix,
        "purelib": sysconfig.get_paths()["purelib"],
        "requirements": requirements,
        "distributions": sorted(closure.values(), key=lambda d: -d["bytes"]),
        "total_bytes": sum(d["bytes"] for d in closure.values()),
        "missing": sorted(set(missing)),
    }))
    return 0


def _installed_bytes(distribution) -> int:
    total = 0
    for file in distribution.files or []:
        try:
            total += file.locate().stat().st_size
        except OSError:
            pass
    return total


def _parse(requirement: str):
    text = requirement.split(";")[0].strip()
    match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(\[([^\]]*)\])?", text)
    if not match:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    extras = {e.strip() for e in (match.group(3) or "").split(",") if e.strip()}
    return match.group(1), extras


def _applies(requirement: str, extras: set) -> bool:
    """Evaluates the marker: python/platform markers by `packaging` when present, extras here."""
    if ";" not in requirement:
        return True
    marker = requirement.split(";", 1)[1].strip()
    extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    if extra and extra.group(1) not in extras:
        return False
    try:
        from packaging.markers import Marker
    except ImportError:
        return extra is not None or "python_version <" not in marker
    environment = {"extra": extra.group(1) if extra else ""}
    return Marker(marker).evaluate(environment)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


if __name__ == "__main__":
    sys.exit(main())
