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
MAY_IMPORT_SANDBOX = {f"{NAME}.commands.demo", f"{NAME}.commands.sandbox"}


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
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and in_part(node.module, NAME):
            module = node.module or NAME
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield submodule if submodule in known else module


def in_part(name: str | None, part: str) -> bool:
    return name is not None and (name == part or name.startswith(f"{part}."))


def test_only_the_demo_and_the_sandbox_command_import_the_simulator() -> None:
    simulator = f"{NAME}.sandbox"
    importers = {
        name
        for name, path in modules().items()
        if not in_part(name, simulator)
        and any(in_part(target, simulator) for target in imports(path))
    }
    assert importers <= MAY_IMPORT_SANDBOX


def import_graph(*, top_level_only: bool) -> dict[str, set[str]]:
    """Module -> the package's modules it imports. A package's own `__init__` is left out of
    its children's edges: importing `a.b` runs `a/__init__.py`, which is not a dependency
    the child chose (and the `__init__` files here hold only docstrings and re-exports)."""
    return {
        name: {
            target
            for target in imports(path, top_level_only=top_level_only)
            if target != name and not name.startswith(f"{target}.")
        }
        for name, path in modules().items()
    }


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
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
    return cycles


def test_no_import_cycle_at_module_level() -> None:
    """Modules importing each other at the top would depend on the order of imports."""
    assert cycles_in(import_graph(top_level_only=True)) == []


def test_no_import_cycle_counting_lazy_imports() -> None:
    """A lazy import inside a function is still a dependency: two modules that need each
    other are one part cut in two, whatever the order they load in."""
    assert cycles_in(import_graph(top_level_only=False)) == []


#: how big a room may get: a module a newcomer can read in one sitting, a function on a screen
MODULE_LINES = 400
FUNCTION_LINES = 80


def test_every_module_is_of_a_readable_size() -> None:
    too_long = {
        name: lines
        for name, path in modules().items()
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert too_long == {}


def test_every_function_fits_on_a_screen() -> None:
    too_long = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > FUNCTION_LINES:
                    too_long[f"{name}.{node.name}"] = lines
    assert too_long == {}


def test_the_readme_layout_table_matches_the_tree() -> None:
    """README's "Development" table: one row per folder, naming each of its modules, so a
    newcomer can find a part from its job and a job from the tree."""
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme[readme.index("## Development") :]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith("/`"):
            rows[cells[0].strip("`/")] = cells[2]
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert set(rows) == folders
    for folder, named in rows.items():
        children = {
            path.stem if path.is_file() else f"{path.name}/"
            for path in (PACKAGE / folder).iterdir()
            if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
        }
        missing = {child for child in children if f"`{child}`" not in named}
        assert missing == set(), folder
    top = section[section.index("At the top") :].split("\n\n")[0]
    modules_at_top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert {m for m in modules_at_top if f"`{m}`" not in top} == set()
