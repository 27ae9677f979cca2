"""The layout shows the pipeline: stage packages that import only earlier stages, no import cycles, small modules.

The import graph is read from the source with ``ast``, so imports inside functions and
under ``TYPE_CHECKING`` count as much as those at the top: a cycle hidden in a function
is still a cycle for the reader. Importing ``a.b.c`` runs ``a.b``'s ``__init__`` first,
so it also counts as importing ``a.b``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import scalesearch

PACKAGE = Path(scalesearch.__file__).resolve().parent
# Every stage imports only the stages before it (and the shared modules: errors, files, limits, device).
STAGES = ["arch", "data", "space", "proxy", "stats", "results", "search", "comparison"]
SHARED = {"errors", "files", "limits", "device", "_version"}


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["scalesearch", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its source, with the packages each import runs."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    # Its own parent packages are already running when a module is imported: not an edge.
    return {m for m in found & known if m != name and not name.startswith(m + ".")}


def graph() -> dict[str, set[str]]:
    names = module_names()
    return {name: imported(name, path, set(names)) for name, path in names.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each a cycle or knot of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_lazy_ones_included():
    assert cycles(graph()) == []


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_each_stage_imports_only_earlier_stages_and_shared_modules():
    wrong = []
    for module, deps in graph().items():
        here = stage(module)
        if here is None:
            continue
        for dep in deps:
            there = stage(dep)
            if there is None:
                if dep.split(".")[1] not in SHARED:
                    wrong.append(f"{module} → {dep}")
            elif STAGES.index(there) > STAGES.index(here):
                wrong.append(f"{module} → {dep}")
    assert wrong == []


def test_shared_modules_import_no_stage():
    edges = graph()
    assert {m: d for m in (f"scalesearch.{s}" for s in SHARED) for d in [edges[m]] if d - {f"scalesearch.{s}" for s in SHARED}} == {}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small(path):
    assert len(path.read_text().splitlines()) <= 400
