"""The import graph of the top-level packages has no cycle (README "Layout").

A node is ``ide`` or a direct child of ``oktoscripts`` (a package such as
``runs`` or a module such as ``roles``); an edge is any import that runs, at
the top of a module or inside a function. Imports for type hints only (under
``if TYPE_CHECKING:``) load nothing and do not count. Django's string
references between apps (``"scripts.ScriptVersion"``) are not imports either:
that is how an app below another may point at its tables.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Edges that close a cycle, tolerated until removed. Empty since issue 14: it
# must stay empty (the test below fails when an edge here is gone, so an entry
# cannot linger after its cycle is broken).
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}
# The engine owns the binding machinery and registry; the functions register
# into it from oktoscripts.bindings, and it reports listener events through a
# hook. It must never import these (docs/architecture.md).
ENGINE_MUST_NOT_IMPORT = {"bindings", "automations", "runs", "scripts", "ide"}
# Only the URL tables reach the IDE (Django needs its views there).
MAY_IMPORT_IDE = {"urls", "routing"}


def _node(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "ide":
        return "ide"
    if parts[0] == "oktoscripts" and len(parts) > 1:
        return parts[1]
    return None


def _type_only(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for n in ast.walk(node))
    return hidden


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        if node.module == "oktoscripts":  # from oktoscripts import permissions
            return [f"oktoscripts.{alias.name}" for alias in node.names]
        return [node.module]
    return []


def _edges() -> Iterator[tuple[str, str, str]]:
    """(importer, imported, file) for every import between two nodes."""
    files = [*ROOT.glob("oktoscripts/**/*.py"), *ROOT.glob("ide/**/*.py")]
    for path in files:
        if "migrations" in path.parts:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = _node(module.removesuffix(".__init__"))
        if source is None:
            continue
        tree = ast.parse(path.read_text(), str(path))
        hidden = _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            for name in _imported(node):
                target = _node(name)
                if target is not None and target != source:
                    yield source, target, str(path.relative_to(ROOT))


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for source, target, _ in _edges():
        graph.setdefault(source, set()).add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_top_level_packages():
    graph = _graph()
    for source, target in KNOWN_CYCLE_EDGES:
        graph.get(source, set()).discard(target)
    assert _cycles(graph) == []


def test_the_known_cycle_edges_still_exist():
    """When one is removed, delete it from KNOWN_CYCLE_EDGES: the list only shrinks."""
    graph = _graph()
    gone = [edge for edge in KNOWN_CYCLE_EDGES if edge[1] not in graph.get(edge[0], set())]
    assert gone == []


def test_only_the_url_tables_import_the_ide():
    importers = {
        (source, path)
        for source, target, path in _edges()
        if target == "ide" and source not in MAY_IMPORT_IDE
    }
    assert importers == set()


def test_the_engine_imports_no_bindings_and_no_host():
    """Also type-only imports count here: the engine names no binding module."""
    files = ROOT.glob("oktoscripts/lua/**/*.py")
    reached = {
        (_node(name), str(path.relative_to(ROOT)))
        for path in files
        for node in ast.walk(ast.parse(path.read_text()))
        for name in _imported(node)
    }
    assert {(n, p) for n, p in reached if n in ENGINE_MUST_NOT_IMPORT} == set()


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
