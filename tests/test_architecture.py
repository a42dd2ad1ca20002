"""Guard rails for the package's shape: who may import what.

Read from the source with `ast`, so they hold for every import, also the lazy ones inside
functions (the hook imports most modules lazily to start fast).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "datachonk_hooks"
NAME = "datachonk_hooks"

#: the only modules that may import the simulator: the demo runs it, and the `sandbox`
#: command serves it (tests import it too, from outside the package)
MAY_IMPORT_SANDBOX = {f"{NAME}.commands.demo", f"{NAME}.cli"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, *, top_level_only: bool = False) -> Iterator[str]:
    """The package's modules that `path` imports (`from x import y` counts y when y is a
    module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    known = modules()
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME):
                    yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == NAME:
                yield from (f"{NAME}.{a.name}" for a in node.names if f"{NAME}.{a.name}" in known)
            elif node.module.startswith(NAME):
                yield node.module


def in_part(name: str, part: str) -> bool:
    return name == part or name.startswith(f"{part}.")


def test_only_the_demo_and_the_sandbox_command_import_the_simulator() -> None:
    simulator = f"{NAME}.sandbox"
    importers = {
        name
        for name, path in modules().items()
        if not in_part(name, simulator)
        and any(in_part(target, simulator) for target in imports(path))
    }
    assert importers <= MAY_IMPORT_SANDBOX


def test_no_import_cycle_at_module_level() -> None:
    """Modules importing each other at the top would depend on the order of imports."""
    graph = {
        name: {t for t in imports(path, top_level_only=True) if t != name}
        for name, path in modules().items()
    }
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for target in graph.get(node, ()):
                if target == start:
                    cycles.append([*trail, start])
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*trail, target]))
    assert cycles == []
