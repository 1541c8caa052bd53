"""The package layout shows the design: subpackages by concept, short modules, no import cycles, no UI in the flow.

The import graph is read from the source (every ``import``, at module level
or inside a function, except under ``if TYPE_CHECKING:``), so a lazy import
that closes a cycle is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rtgen

PACKAGE = Path(rtgen.__file__).parent
ROOT_MODULES = {"__init__", "__main__", "errors", "paths", "config", "controls", "encoding"}
MAX_LINES = 450
# The music flow: nothing here may import a UI or its types.
FLOW = ("rtgen.data", "rtgen.nets", "rtgen.engine", "rtgen.live", "rtgen.midi", "rtgen.daemon")
UI = ("rtgen.tui", "rtgen.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "_shipped" not in p.parts}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The rtgen modules ``path`` imports at run time (a ``from package import module`` counts the module)."""
    found: set[str] = set()
    todo = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if _type_checking(node):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rtgen")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rtgen"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known}
        todo.extend(ast.iter_child_nodes(node))
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    found = sources()
    known = set(found)
    return {name: imports_of(path, known) - {name} for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_every_module_lives_in_a_subpackage_named_for_its_concept():
    loose = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ROOT_MODULES)
    assert loose == [], f"modules outside a subpackage: {loose}"


def test_no_module_passes_450_lines():
    long = {name: n for name, p in sources().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_flow_never_imports_a_ui():
    wrong = {
        (name, target)
        for name, targets in graph().items()
        if name.startswith(FLOW)
        for target in targets
        if target.startswith(UI)
    }
    assert wrong == set()


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
