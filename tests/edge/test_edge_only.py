"""The edge runner never imports TensorFlow: statically, and in a venv without it."""

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.edge.golden import model_path

EDGE_DIR = Path(__file__).resolve().parents[2] / "edge"
FORBIDDEN = ("tensorflow", "tf_keras", "keras", "tfx", "apache_beam", "components", "trainer",
             "pipelines")

# Classify real files through the CLI, then report what got imported.
PROBE = """
import json, sys
from edge import cli
code = cli.main(["classify", "--model", sys.argv[1], *sys.argv[2:], "--format", "json"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras"))
print(json.dumps({"exit": code, "heavy": heavy}), file=sys.stderr)
"""


def test_edge_modules_import_nothing_above_floor_1():
    sources = sorted(EDGE_DIR.rglob("*.py"))
    assert EDGE_DIR / "serve" / "app.py" in sources  # every subpackage, not the top level only
    for source in sources:
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, (
                    f"{source.relative_to(EDGE_DIR)} imports {name}")


@pytest.mark.pipeline_venv
def test_classify_in_the_edge_only_venv_never_imports_tensorflow(planted):
    python = os.environ.get("CXR_EDGE_PYTHON")
    if not python:
        pytest.skip("CXR_EDGE_PYTHON (the edge-only venv's python) is not set")
    folder, _ = planted
    root = EDGE_DIR.parent
    # The venv must not even have TensorFlow installed: then no code path can reach it.
    absent = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is None)"],
        capture_output=True, text=True, check=True,
    )
    assert absent.stdout.strip() == "True", f"{python} has tensorflow installed"
    result = subprocess.run(
        [python, "-X", "importtime", "-c", PROBE, str(model_path("int8")), str(folder)],
        capture_output=True, text=True, cwd=root, timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {"exit": 1, "heavy": []}  # exit 1: the planted bad files
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "ai_edge_litert.interpreter" in imported and "PIL.Image" in imported
    assert not [name for name in imported if name.split(".")[0] == "tensorflow"]
    assert len(json.loads(result.stdout)) > 5
