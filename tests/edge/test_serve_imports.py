"""The web stack stays in the serve extra: only edge/serve/app.py, guard.py, server.py, params.py,
roles.py and the api_*.py route modules import it, and `import edge.cli` (what `cxr-edge
classify` runs) loads none of it."""

import ast
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

EDGE_DIR = Path(__file__).resolve().parents[2] / "edge"
WEB = ("starlette", "uvicorn", "multipart", "python_multipart", "anyio", "h11", "click")
ALLOWED = {"edge/serve/app.py", "edge/serve/guard.py", "edge/serve/server.py",
           "edge/serve/params.py",  # the routes' request parsing
           "edge/serve/roles.py"}  # roles.py: only inside require(), so users.py can use it
ALLOWED_PATTERN = "edge/serve/api_*.py"  # each API module's routes, included by app.py

PROBE = """
import json, sys
from edge import cli
cli._parser().parse_args(["serve", "--model", "m"])  # the serve subcommand's parser is there
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))))
"""


def test_only_the_serve_shell_imports_the_web_stack():
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
                          if m.split(".")[0] in WEB and name not in ALLOWED
                          and not fnmatch.fnmatch(name, ALLOWED_PATTERN)]
    assert offenders == []


def test_importing_the_cli_loads_no_web_module():
    result = subprocess.run([sys.executable, "-c", PROBE, *WEB], capture_output=True, text=True,
                            cwd=EDGE_DIR.parent, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
