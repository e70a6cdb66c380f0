"""Fingerprints of this project's own code, for TFX's cache keys.

TFX caches a component by its inputs, its properties and the Python path of its executor, not
by the code behind that path: over an existing pipeline root, a fixed executor, a changed
ingestion order or a new metric would reuse what the old code wrote (the bench once quantized
and reported a model trained on code three commits old). So each component of ours carries the
fingerprint of the code it runs as a property, and changed code re-runs it and what follows.

`module_fingerprint` follows a module's imports of this project's packages (at any depth, inside
functions too), so a component re-runs when code it can execute changes and not otherwise;
`source_fingerprint` hashes whole packages (the Trainer's run_fn, which reaches most of them).
"""

import ast
import glob
import hashlib
import importlib.util
import os

PROJECT_PACKAGES = ("components", "edge", "pipelines", "trainer")
DIGITS = 16


def source_fingerprint(packages: tuple[str, ...]) -> str:
    """sha256 over the packages' .py files (relative path and bytes), first 16 hex digits."""
    digest = hashlib.sha256()
    for package in packages:
        root = importlib.util.find_spec(package).submodule_search_locations[0]
        for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
            digest.update(f"{package}/{os.path.relpath(path, root)}\n".encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:DIGITS]


def module_fingerprint(*modules: str, packages: tuple[str, ...] = PROJECT_PACKAGES) -> str:
    """sha256 over the files of `modules` and of every project module they import."""
    digest = hashlib.sha256()
    for name, path in sorted(import_closure(modules, packages).items()):
        digest.update(f"{name}\n".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:DIGITS]


def import_closure(modules, packages: tuple[str, ...] = PROJECT_PACKAGES) -> dict[str, str]:
    """{module name: source file} of `modules`, their packages' __init__ files and, transitively,
    every module of `packages` they import."""
    found: dict[str, str] = {}
    pending = list(modules)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = _source(name, packages)
        if path is None:
            continue
        found[name] = path
        parent = name.rpartition(".")[0]
        pending.extend([parent] if parent else [])
        pending.extend(_project_imports(name, path, packages))
    return found


def _source(name: str, packages: tuple[str, ...]) -> str | None:
    """The module's .py file, found from its package's folder; nothing is imported (finding a
    dotted name through importlib would import its parents: TensorFlow, for most of ours)."""
    top, _, rest = name.partition(".")
    if top not in packages:
        return None
    found = importlib.util.find_spec(top)  # a top-level name is located, not imported
    if found is None or not found.submodule_search_locations:
        return None
    stem = os.path.join(found.submodule_search_locations[0], *filter(None, rest.split(".")))
    for path in (stem + ".py", os.path.join(stem, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def _project_imports(name: str, path: str, packages: tuple[str, ...]) -> list[str]:
    """Modules `path` imports, as absolute names; `from package import name` may name a
    submodule, so both the package and package.name are candidates (non-modules drop out)."""
    with open(path, "rb") as handle:
        tree = ast.parse(handle.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.append(base)
            out.extend(f"{base}.{alias.name}" for alias in node.names)
    return [module for module in out if module.split(".")[0] in packages]
