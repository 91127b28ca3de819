"""The package's layout rules (docs/architecture.md): each package imports only packages at or
below its own layer, modules import each other without cycles, and the test harness stays out of
the product."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clv_models"
#: Lowest first: a module may import its own layer and the layers before it, never one after.
LAYERS = ("core", "ingest", "warehouse", "features", "models", "evaluation", "scoring",
          "serving", "pipeline", "bench", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # clv_models itself: the version
        return 0
    return LAYERS.index(parts[1])


def imports(path: Path) -> set[str]:
    """Every clv_models module ``path`` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("clv_models"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("clv_models"):
            for alias in node.names:  # `from clv_models.x import module` imports the module
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if MODULES.get(candidate) else node.module)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {m: imports(p) & set(MODULES) for m, p in MODULES.items()}


def test_every_package_is_a_known_layer():
    assert {m.split(".")[1] for m in MODULES if "." in m} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    above = sorted(m for m in GRAPH[module] if layer(m) > layer(module))
    assert not above, f"{module} (layer {LAYERS[layer(module)]}) imports {above}"


def test_no_import_cycles():
    """Module-level and function-level imports together form a graph without cycles (a
    package's ``__init__`` importing its own modules excepted)."""
    edges = {m: {d for d in deps if not m.startswith(d + ".") and d != m}
             for m, deps in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_the_product_does_not_import_the_test_harness():
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] in {"tests", "scripts"}], module
