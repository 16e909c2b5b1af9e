"""The import graph of `tryon` and `catalog`: no cycles, and arrows point the way DESIGN.md says.

Every module under tryon/ and catalog/ is parsed (not imported) and each import statement
anywhere in it, at module level, in a function or under `if TYPE_CHECKING:`, becomes an
edge to the project module it names: `import a.b` names `a.b`; `from a.b import c` names
the module `a.b.c` when there is one, else `a.b` (a name defined in `a/b.py` or
re-exported by `a/b/__init__.py`).

A package `__init__` that re-exports its submodules (`tryon/models/__init__.py` imports
`tryon.models.gmm`) is an edge from the package to the submodule like any other. What is
*not* an edge is Python running a package's `__init__` before any of its submodules: that
happens for every submodule, and the package's own imports complete before the submodule
runs, so it cannot leave a half-initialised module behind. Counting it would make every
re-exporting package a cycle with its submodules. A submodule that imports a name *from*
its own package (`from tryon.models import PretrainedMixin` inside `tryon/models/gmm.py`)
names the package and does count: that one is a real cycle, as the package is still
half-imported when the submodule asks it for the name.

The layering rules are checked on what each module reaches through any chain of imports,
not only on its direct imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tryon", "catalog")


def module_name(path: Path) -> str:
    """'tryon/models/__init__.py' -> 'tryon.models'; 'tryon/pipeline.py' -> 'tryon.pipeline'."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterable[str]:
    """The dotted names each import statement in `tree` names (relative ones resolved):
    `import a.b` gives 'a.b'; `from a import b, c` gives 'a.b' and 'a.c' (`resolve`
    falls back to 'a' where they are not modules)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            yield from (f"{base}.{alias.name}" for alias in node.names)


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module that `name` refers to: itself or its longest module prefix."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (itself excluded)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = {
            resolve(name, modules)
            for name in imported_names(tree, module, path.name == "__init__.py")
        }
        graph[module] = {target for target in targets if target and target != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph has none."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            target = next(stack[-1], None)
            if target is None:  # every import of path[-1] explored: no cycle through it
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if target in on_path:
                return path[path.index(target) :] + [target]
            if target not in done:
                path.append(target)
                on_path.add(target)
                stack.append(iter(sorted(graph[target])))
    return None


def import_chain(graph: dict[str, set[str]], start: str, forbidden: str) -> list[str] | None:
    """A chain of imports from `start` to a module in package `forbidden`, or None."""
    came_from: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        module = queue.pop(0)
        if module == forbidden or module.startswith(forbidden + "."):
            chain = [module]
            while (previous := came_from[chain[-1]]) is not None:
                chain.append(previous)
            return chain[::-1]
        for target in sorted(graph[module]):
            if target not in came_from:
                came_from[target] = module
                queue.append(target)
    return None


GRAPH = import_graph()

LAYERS = [
    pytest.param("tryon.models", forbidden, id=f"tryon.models-{forbidden}")
    for forbidden in ("tryon.train", "tryon.server", "tryon.cli", "tryon.eval")
] + [
    pytest.param("catalog", "tryon.server", id="catalog-tryon.server"),
    pytest.param("tryon.eval", "tryon.train", id="tryon.eval-tryon.train"),
]


def test_the_graph_covers_the_packages_and_sees_imports_at_every_level() -> None:
    assert "tryon.pipeline" in GRAPH and "catalog.cli" in GRAPH
    assert "tryon.models.gmm" in GRAPH["tryon.models"]  # a package re-exporting
    assert "tryon.models.checkpoint" in GRAPH["tryon.models.gmm"]  # module level
    assert "tryon.pipeline" in GRAPH["tryon.cli.evaluation"]  # inside a function


def test_no_import_cycles() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


@pytest.mark.parametrize(("package", "forbidden"), LAYERS)
def test_layers_import_only_downwards(package: str, forbidden: str) -> None:
    chains = [
        chain
        for module in sorted(GRAPH)
        if module == package or module.startswith(package + ".")
        if (chain := import_chain(GRAPH, module, forbidden))
    ]
    assert not chains, f"{package} must not import {forbidden}: " + " -> ".join(chains[0])
