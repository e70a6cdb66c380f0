"""The DICOM network stack stays in the dicom-net extra: only the SCP and the sender import
pynetdicom, only the report writer imports highdicom, and `import edge.cli` loads neither."""

import ast
import json
import subprocess
import sys
from pathlib import Path

EDGE_DIR = Path(__file__).resolve().parents[2] / "edge"
ALLOWED = {"pynetdicom": {"edge/dicom_net/scp.py", "edge/dicom_net/sender.py"},
           "highdicom": {"edge/dicom_net/reports.py"}}

PROBE = """
import json, sys
from edge import cli
cli._parser().parse_args(["dicom-listen", "--model", "m", "--allow", "X"])
cli._parser().parse_args(["serve", "--model", "m", "--dicom-port", "1"])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & {"pynetdicom", "highdicom"})))
"""


def test_only_the_node_imports_the_dicom_network_stack():
    offenders = []
    for source in sorted(EDGE_DIR.rglob("*.py")):
        name = source.relative_to(EDGE_DIR.parent).as_posix()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            offenders += [f"{name}: {m}" for m in modules
                          if name not in ALLOWED.get(m.split(".")[0], {name})]
    assert offenders == []


def test_importing_the_cli_loads_no_dicom_network_module():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            cwd=EDGE_DIR.parent, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
