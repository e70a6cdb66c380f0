import hashlib
import subprocess
import sys
from pathlib import Path

from edge import spec


def _digest_tree(root):
    files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_demo_data_command_is_deterministic(tmp_path):
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-m", "pipelines.cli", "demo-data", "--out",
                        str(tmp_path / name), "--per-class", "50", "--size", "128"], check=True)
    first, second = _digest_tree(tmp_path / "a"), _digest_tree(tmp_path / "b")
    assert len(first) == 2 * 50 * len(spec.CLASS_NAMES)  # each image and its finding mask
    assert sum("/masks/" in path for path in first) == 50 * len(spec.CLASS_NAMES)
    assert first == second
    assert {path.split("/")[0] for path in first} == set(spec.CLASS_NAMES)
