"""The library's layers (``harness/__init__.py``): every import of a ``harness`` module, at module level or
inside a function, goes to its own layer or one listed before it; no import cycle; no module over 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness


ROOT = Path(harness.__file__).parent
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_imports(path: Path) -> set[str]:
    """Every ``harness.*`` module ``path`` imports (``from harness.x import y`` counts ``harness.x.y`` when
    that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("harness.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found - {"harness"}


FILES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}
MODULES = set(FILES)


def layer_of(module: str) -> int:
    return harness.LAYERS.index(module.split(".")[1])


def test_every_module_is_in_a_layer():
    loose = [m for m in MODULES if m != "harness" and m.split(".")[1] not in harness.LAYERS]
    assert not loose, f"modules outside the declared layers {harness.LAYERS}: {loose}"


@pytest.mark.parametrize("module", sorted(MODULES - {"harness"}))
def test_imports_go_down_the_layers(module):
    upward = [target for target in harness_imports(FILES[module]) if layer_of(target) > layer_of(module)]
    assert not upward, (f"{module} (layer {module.split('.')[1]}) imports from a later layer: {upward}; "
                        f"the order is {' -> '.join(harness.LAYERS)}")


def test_no_import_cycles():
    graph = {module: {t for t in harness_imports(path) if t in MODULES} for module, path in FILES.items()}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            if target == module or target.startswith(module + "."):
                continue  # a package's own submodules (its __init__ registering them)
            if state.get(target) == 1:
                cycle = trail[trail.index(target):] + [target] if target in trail else [module, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, trail + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_module_over_500_lines():
    long = {m: n for m, p in FILES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"
