"""The package layout: imports point downstream along the data flow, with no cycle between modules.

Every `import` in `ablations/` counts, wherever it stands (module level, inside a function, under `TYPE_CHECKING`):
a function-level import hides a cycle from the interpreter, not from the design. Importing `a.b.c` also runs the
`__init__` of `a.b`, so an import reaches the target's packages too (but not the importer's own: those have run).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ablations"

#: The layers, lowest first. A module belongs to the layer of the longest prefix that names it, and imports only from
#: its own layer or lower ones. The engine calls the probes through a hook it is given (`study.worker` wires them in),
#: so `train` is one layer below `probes`.
LAYERS = (
    "ablations",  # the root package itself: __version__ only
    "ablations.files",  # atomic writes and file hashing (policy files in evaluate, results in study)
    "ablations.config",  # RunConfig
    "ablations.envs",
    "ablations.train",
    "ablations.probes",
    "ablations.evaluate",
    "ablations.study",
    "ablations.report",
    "ablations.api",  # the notebook API: names for the report's computations and figures
    "ablations.cli",
)


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def _ancestors(mod: str) -> list[str]:
    parts = mod.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _targets(mod: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package's modules that `node`, standing in module `mod`, imports (packages whose __init__ runs included)."""
    if isinstance(node, ast.Import):
        named = {alias.name for alias in node.names}
    else:
        base = mod.split(".") if _is_package(mod) else mod.split(".")[:-1]
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        named = {source} | {f"{source}.{alias.name}" for alias in node.names}  # `from pkg import submodule`
    reached = set()
    for name in named:
        if name in MODULES:
            reached |= {name, *_ancestors(name)}
    return {t for t in reached if t in MODULES and t != mod and t not in _ancestors(mod)}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[mod] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[mod] |= _targets(mod, node)
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer(mod: str) -> int:
    matches = [i for i, prefix in enumerate(LAYERS) if mod == prefix or mod.startswith(prefix + ".")]
    return max(matches, key=lambda i: len(LAYERS[i]))


def test_the_import_graph_is_read():
    assert "ablations.train.engine" in GRAPH["ablations.study.worker"]
    assert "ablations.probes.checkpoint" in GRAPH["ablations.study.worker"]
    assert not any(t.startswith("ablations.probes") for t in GRAPH["ablations.train.engine"])
    assert "ablations.train.estimators" in GRAPH["ablations.train.loss"]  # `from . import estimators as est`
    assert "ablations.envs.registry" in GRAPH["ablations.evaluate.policy_io"]  # a function-level import counts
    assert "ablations.probes.directions" in GRAPH["ablations.probes.rows"]  # so does one under TYPE_CHECKING
    assert "ablations.study.driver" in GRAPH["ablations.cli.train"]  # a function-level import too
    assert "ablations.report" in GRAPH["ablations.cli.report"]  # the package whose __init__ runs


def test_cycle_detection_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if m != "ablations" and layer(m) == 0]
    assert unplaced == [], f"add these modules' subpackage to LAYERS: {unplaced}"


def test_imports_point_downstream():
    upstream = sorted(f"{a} ({LAYERS[layer(a)]}) imports {b} ({LAYERS[layer(b)]})"
                      for a, targets in GRAPH.items() for b in targets if layer(b) > layer(a))
    assert upstream == []


def test_two_levels_and_every_subpackage_says_what_it_owns():
    assert all(len(m.split(".")) <= 3 for m in MODULES), sorted(m for m in MODULES if len(m.split(".")) > 3)
    for mod, path in MODULES.items():
        if _is_package(mod):
            assert ast.get_docstring(ast.parse(path.read_text())), f"{path} needs a docstring saying what it owns"


@pytest.mark.parametrize("reference", ["ablations.study.worker:train_cohort"])
def test_string_references_resolve(reference):
    """Module paths spelled as strings (the executors' default trainer) name a real function."""
    from ablations.study.executors import DEFAULT_TRAINER

    assert DEFAULT_TRAINER == reference
    module, _, name = reference.partition(":")
    assert callable(getattr(importlib.import_module(module), name))
