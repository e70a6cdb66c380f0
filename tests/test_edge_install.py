"""`pip install ".[edge]"` into an empty venv: no TensorFlow, and small enough for a Pi."""

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_INSTALLED_MB = 150


@pytest.mark.slow
def test_edge_extra_installs_without_tensorflow_and_stays_small(tmp_path):
    env_dir = tmp_path / "edge-only"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # A copy of the source: building the project must not write into the checkout.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv*", ".wheelhouse", ".git", "demo-run", ".pi-check", "build", "*.egg-info",
        "__pycache__"))
    # --no-compile: the size is what the wheels install; .pyc caches come and go (+~30 MB).
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-compile", "-c", str(REPO / "constraints-edge.txt"), f"{source}[edge]"],
                   check=True, timeout=900)

    installed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], check=True,
                               capture_output=True, text=True).stdout.lower()
    names = {line.split("==")[0] for line in installed.splitlines()}
    assert not {n for n in names if n.startswith(("tensorflow", "tf-", "tf_", "keras", "jax"))}
    assert {"numpy", "pillow", "ai-edge-litert"} <= names

    site_packages = next(env_dir.glob("lib/python3*/site-packages"))
    # What venv seeds before our install (pip, setuptools) is not ours.
    seeded = sum(_size(p) for pattern in ("pip*", "setuptools*", "_distutils_hack", "pkg_resources",
                                          "distutils-precedence.pth", "__pycache__")
                 for p in site_packages.glob(pattern))
    megabytes = (_size(site_packages) - seeded) / 2**20
    assert megabytes < MAX_INSTALLED_MB, f"edge install is {megabytes:.0f} MB"
    # And it runs: the CLI answers without TensorFlow.
    subprocess.run([env_dir / "bin" / "cxr-edge", "--help"], check=True, capture_output=True)
    print(f"edge-only install: {megabytes:.1f} MB ({sys.version_info[:2]})")


def _size(path):
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
