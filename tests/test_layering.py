"""Dependencies between scope3lib's packages go one way (docs/design.md, Layout): no package imports, through
any chain of others, a package that imports it. Read from the source, no database needed."""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "scope3lib"


def _unit(module: str) -> str:
    """The package (or top-level module) of scope3lib that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imported(path: Path, package: str) -> set[str]:
    """The scope3lib modules ``path`` (a module of ``package``) imports, relative imports resolved."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.update([module] if node.module else [f"{module}.{a.name}" for a in node.names])
    return {m for m in out if m.startswith("scope3lib.")}


def package_graph() -> dict[str, set[str]]:
    """Which packages of scope3lib each one imports."""
    graph: dict[str, set[str]] = {}
    for path in LIB.rglob("*.py"):
        module = ".".join(path.relative_to(LIB.parent).with_suffix("").parts)
        package = module.removesuffix(".__init__") if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        graph.setdefault(_unit(module), set()).update(
            u for u in map(_unit, _imported(path, package)) if u != _unit(module))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle as the path from a package back to itself (one per package found on one)."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest name
                walk([*path, nxt])

    for start in sorted(graph):
        walk([start])
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "d": {"a"}}) == []


def test_packages_import_one_way() -> None:
    graph = package_graph()
    assert {"accounting", "api", "ledger", "pact", "suppliers"} <= graph.keys()
    assert "accounting" in graph["api"]  # the walk sees relative imports
    assert cycles(graph) == [], "packages import each other in a circle"
