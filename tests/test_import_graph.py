"""The package's shape: no import circle among rustlab's modules, arrows that point one way between
its packages (docs/plugins.md, "Layout"), at most about 10 top-level modules, and no module over
~400 lines.

Imports inside functions count too: a lazy import still ties two modules together, and a circle
of them is one refactor away from an ImportError.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rustlab"
MAX_LINES = 400
MAX_TOP_LEVEL = 10  # top-level modules besides __init__ and __main__: the rest live in packages

# Which layer each module belongs to (longest prefix wins), and the layers each may import.
# The core is the settings types, checkpoints, the registry and its hooks, data and tasks.
CORE = ("rustlab.errors", "rustlab.config", "rustlab.checkpoint", "rustlab.device", "rustlab.registry",
        "rustlab.hookspecs", "rustlab.padding", "rustlab.data", "rustlab.tasks")
LAYER_OF = {**{name: "core" for name in CORE}, "rustlab.analysis": "analysis",
            "rustlab.inference": "inference", "rustlab.training": "training", "rustlab.gui": "gui",
            "rustlab.audit": "audit", "rustlab.bench": "bench", "rustlab.cli": "cli",
            "rustlab.cli_output": "cli", "rustlab.__main__": "cli"}
MAY_IMPORT = {
    "core": {"core"},
    "analysis": {"analysis"},
    "inference": {"core", "inference"},  # the predict path never imports the trainer, CLI or GUI
    "training": {"core", "inference", "training"},
    "gui": {"core", "inference", "gui"},
    "audit": {"core", "inference", "training", "audit"},
    "bench": {"core", "inference", "training", "analysis", "bench"},
    "cli": {"core", "inference", "training", "analysis", "gui", "audit", "bench", "cli"},
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _resolve(name: str, mods: dict) -> str | None:
    """The rustlab module ``name`` refers to (``a.b.func`` -> ``a.b``), or None if outside rustlab."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the rustlab modules it imports. The package root and a module's own parent
    packages are left out: importing ``rustlab.x.y`` runs ``rustlab/__init__`` without depending on it."""
    mods = _modules()
    edges = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{node.module}" if node.module else anchor
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                found = _resolve(target, mods)
                if found and found not in (mod, "rustlab") and not mod.startswith(found + "."):
                    edges[mod].add(found)
    return edges


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_lazy_and_relative_imports():
    edges = import_graph()
    assert "rustlab.data.readers" in edges["rustlab.registry"]  # imported inside build_registry
    assert "rustlab.data.records" in edges["rustlab.data.sources"]


def test_rustlab_has_no_import_circle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles in rustlab/: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_over_400_lines():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, (f"modules over {MAX_LINES} lines (split them by job): "
                      + ", ".join(f"{m} ({n})" for m, n in sorted(long.items())))


def layer(module: str) -> str:
    prefixes = [p for p in LAYER_OF if module == p or module.startswith(p + ".")]
    assert prefixes, f"{module} belongs to no layer: add it to LAYER_OF"
    return LAYER_OF[max(prefixes, key=len)]


def test_arrows_between_layers_point_one_way():
    wrong = [f"{mod} -> {dep}" for mod, deps in sorted(import_graph().items()) if mod != "rustlab"
             for dep in sorted(deps) if layer(dep) not in MAY_IMPORT[layer(mod)]]
    assert not wrong, "imports against the layering (tests/test_import_graph.py MAY_IMPORT): " + "; ".join(wrong)


def test_the_layer_check_sees_a_wrong_arrow():
    assert layer("rustlab.inference.tta") == "inference" and layer("rustlab.config") == "core"
    assert "training" not in MAY_IMPORT[layer("rustlab.inference.predictor")]
    assert "inference" not in MAY_IMPORT[layer("rustlab.checkpoint")]


def test_few_top_level_modules():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} top-level modules in rustlab/ (group them in packages): {top}"
