"""hotmod's modules import each other without a cycle (at module level).

A cycle makes the import order matter and hides which module owns what; the engine was
split so that none remains (``_now`` builds reloaders, reloaders register in
``_appliers``). Imports inside functions are deferred on purpose and not counted, nor
are ``if TYPE_CHECKING:`` blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hotmod"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _module_level_imports(tree: ast.Module) -> list[ast.ImportFrom]:
    found: list[ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        body = [*node.body, *node.orelse] if isinstance(node, (ast.If, ast.Try)) else [node]
        found += [n for n in body if isinstance(n, ast.ImportFrom) and n.level]
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
            deps |= {f"{target}.{alias.name}" for alias in node.names} & modules.keys()
            if target in modules:
                deps.add(target)
        graph[name] = deps - {name}
    return graph


def test_no_module_level_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)

    assert "hotmod.reloader" in graph["hotmod._now"]  # the scan sees imports
    assert "hotmod._now" not in graph["hotmod.reloader"]
    assert [" -> ".join(cycle) for cycle in cycles] == []
