"""The package layout shows the design: subpackages by concept, short modules, layers in order, no cycles.

The import graph is read from the source (every ``import``, at module level
or inside a function), so a lazy import that breaks the order or closes a
cycle is caught as well. Imports under ``if TYPE_CHECKING:`` never run, so the
module cycle check leaves them out; the layer order counts them, since a
lower layer that names a higher one's type depends on it all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rtgen

PACKAGE = Path(rtgen.__file__).parent
ROOT_MODULES = {"__init__", "__main__", "errors", "paths", "config", "controls", "encoding", "modes"}
MAX_LINES = 450
# The music flow: nothing here may import a UI or its types.
FLOW = ("rtgen.data", "rtgen.nets", "rtgen.engine", "rtgen.live", "rtgen.midi", "rtgen.daemon")
UI = ("rtgen.tui", "rtgen.cli")
# The layers, highest first: a package imports only packages of lower layers (and its own modules).
# Packages that share a layer are siblings and never import each other: bench and tui (a benchmark
# drives the daemon as a UI would, through its client, not through the TUI), engine and train
# (generation and training meet only in nets' checkpoints), live and data (the engine thread takes
# Notes, not corpora). "root" is the modules directly under rtgen/; rtgen/__main__ runs the command
# line, so it sits with cli.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("bench", "tui"),
    ("evaluate",),
    ("daemon",),
    ("engine", "train"),
    ("nets",),
    ("live", "data"),
    ("midi",),
    ("root",),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "_shipped" not in p.parts}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, known: set[str], *, typing_too: bool = False) -> set[str]:
    """The rtgen modules ``path`` imports at run time (a ``from package import module`` counts the module).

    ``typing_too``: also those imported only for type checkers (under ``if TYPE_CHECKING:``).
    """
    found: set[str] = set()
    todo = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if _type_checking(node) and not typing_too:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rtgen")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rtgen"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known}
        todo.extend(ast.iter_child_nodes(node))
    return {m for m in found if m in known}


def graph(*, typing_too: bool = False) -> dict[str, set[str]]:
    found = sources()
    known = set(found)
    return {name: imports_of(path, known, typing_too=typing_too) - {name} for name, path in found.items()}


def package_of(module: str) -> str:
    """The layer package of a module: ``rtgen.live.player`` -> ``live``; a module directly under rtgen/ ->
    ``root``, except ``rtgen.__main__``, the command line's entry point (``cli``)."""
    parts = module.split(".")
    if module == "rtgen.__main__":
        return "cli"
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "root"


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which layer packages import which, from a module graph; imports within a package are left out."""
    packages: dict[str, set[str]] = {}
    for name, targets in edges.items():
        own = package_of(name)
        packages.setdefault(own, set()).update(package_of(t) for t in targets if package_of(t) != own)
    return packages


def against_the_order(edges: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every module import that does not point to a lower layer (or within its own package)."""
    return sorted(
        f"{name} -> {target}"
        for name, targets in edges.items()
        for target in targets
        if package_of(target) != package_of(name) and RANK[package_of(target)] <= RANK[package_of(name)]
    )


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


def test_the_tui_reaches_the_music_only_through_the_daemon():
    """A UI is a client in another process: it reads the daemon's status and client (``rtgen.daemon``), never
    the engine thread's or the ports' code, which the order alone would let it import."""
    wrong = {
        (name, target)
        for name, targets in graph(typing_too=True).items()
        if package_of(name) == "tui"
        for target in targets
        if package_of(target) in ("live", "midi")
    }
    assert wrong == set()


def test_every_package_has_a_layer():
    assert {package_of(name) for name in sources()} == set(RANK)


def test_layers_point_one_way():
    assert against_the_order(graph(typing_too=True)) == []


def test_no_package_cycle():
    assert cycles(package_graph(graph(typing_too=True))) == []


def test_the_order_check_finds_an_import_upwards_and_between_siblings():
    edges = {
        "rtgen.live.player": {"rtgen.engine.warm", "rtgen.midi.ports", "rtgen.live.voice"},
        "rtgen.engine.warm": {"rtgen.train.loop"},
        "rtgen.data.tokens": {"rtgen.live.voice", "rtgen.encoding"},
        "rtgen.errors": set(),
        "rtgen.__main__": {"rtgen.cli"},
    }
    assert against_the_order(edges) == [
        "rtgen.data.tokens -> rtgen.live.voice",
        "rtgen.engine.warm -> rtgen.train.loop",
        "rtgen.live.player -> rtgen.engine.warm",
    ]
    assert package_graph(edges) == {
        "live": {"engine", "midi"},
        "engine": {"train"},
        "data": {"live", "root"},
        "root": set(),
        "cli": set(),
    }


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
