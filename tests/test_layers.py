"""Imports point downward only: notebook -> asyncio -> pure core (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rtlab"
# What each part of rtlab may import from rtlab, and what the pure core may not touch at all.
ALLOWED = {
    "core": {"core"},
    "aio": {"core", "aio"},
    "notebook": {"core", "aio", "notebook"},
    "checks": {"core", "aio", "notebook", "bench", "checks"},
    "bench": {"core", "aio", "bench"},
}
NO_IO = {"asyncio", "socket", "ssl", "threading", "selectors", "websockets", "subprocess"}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_downward(layer):
    for path in (PACKAGE / layer).glob("*.py"):
        for name in imports(path):
            parts = name.split(".")
            if parts[0] == "rtlab" and len(parts) > 1:
                assert parts[1] in ALLOWED[layer], f"{path.name} imports {name}"


def test_pure_core_does_no_io():
    for path in (PACKAGE / "core").glob("*.py"):
        used = {name.split(".")[0] for name in imports(path)}
        assert not used & NO_IO, f"{path.name} imports {used & NO_IO}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str) -> set[str]:
    """The rtlab modules ``name`` imports anywhere: top level, in functions, for typing."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..core import y
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    found.add(submodule)
                elif base in MODULES:
                    found.add(base)
    found.discard(name)
    return found


def test_no_import_cycle_anywhere():
    """Every import is followed, within a layer too; a cycle is reported as its path."""
    graph = {name: imported_modules(name) for name in MODULES}
    assert graph["rtlab.cli"] >= {"rtlab.aio.server", "rtlab.handout"}  # the walk sees imports
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_ruff_is_clean():
    root = PACKAGE.parent
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=root, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
