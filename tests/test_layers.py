"""The floors of the house: imports go down only, and no module imports itself back.

edge (1) → trainer (2) → components (2, may import trainer) → pipelines (3) → benchmarks (4).
Read from the source with `ast`, so a lazy import inside a function counts too.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"edge": 1, "trainer": 2, "components": 3, "pipelines": 4, "benchmarks": 5}
# argparse belongs to the entry points: the CLIs, runner scripts and benchmark workers.
ARGPARSE_ALLOWED = {"edge/cli.py", "edge/latency.py", "edge/serve/options.py", "pipelines/cli.py",
                    "edge/dicom_net/options.py", "edge/commands/dicom.py",
                    "pipelines/kubeflow_v2_runner.py", "components/lib/demo_data.py"}


def _modules():
    for package in FLOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def _imported(tree) -> set[str]:
    """Dotted names imported; `from package import module` counts as the module only."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                names.add(dotted if _is_module(dotted) else node.module)
    return names


def _is_module(dotted: str) -> bool:
    path = ROOT / dotted.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _module_name(path: str) -> str:
    name = path[:-3].replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def test_imports_only_go_down_the_floors():
    upward = []
    for path, tree in _modules():
        floor = FLOORS[path.split("/")[0]]
        for name in _imported(tree):
            top = name.split(".")[0]
            if top in FLOORS and FLOORS[top] > floor:
                upward.append(f"{path} imports {name}")
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_project_modules():
    modules = {_module_name(path): tree for path, tree in _modules()}
    graph = {
        name: {target for target in _imported(tree) if target in modules and target != name}
        for name, tree in modules.items()
    }
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for target in graph[node]:
                if target == start:
                    cycles.append(" → ".join(trail + [start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, trail + [target]))
    assert not cycles, "\n".join(sorted(set(cycles))[:10])


def test_argparse_only_in_entry_points():
    users = {path for path, tree in _modules() if "argparse" in _imported(tree)}
    assert users - ARGPARSE_ALLOWED <= {p for p in users if p.startswith("benchmarks/")}
