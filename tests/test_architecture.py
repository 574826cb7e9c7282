"""The import graph of the package: layers import only downwards, and there are no circles.

Layers, bottom to top: config (a leaf), data, augment, algorithms, active, models, tasks, training, hub,
pipelines, cli. Modules in `ssl_text/` itself (the package docstring, `__main__`) and the metric
scripts that `evaluate` loads by path are outside the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["config", "data", "augment", "algorithms", "active", "models", "tasks", "training", "hub", "pipelines", "cli"]


def package_modules() -> dict[str, Path]:
    """Every module of the installed package by dotted name; tasks/ installs as ssl_text.tasks."""
    modules = {}
    for root, prefix in ((ROOT / "ssl_text", "ssl_text"), (ROOT / "tasks", "ssl_text.tasks")):
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([prefix, *parts])] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (at any depth of the file, lazy imports included)."""
    modules = package_modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name and not name.startswith(target + "."):
                    deps.add(target)
                    break
        graph[name] = deps
    return graph


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_circles():
    assert circles(import_graph()) == []


def test_circle_finder_sees_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_import_only_downwards():
    upward = []
    for module, deps in import_graph().items():
        here = layer_of(module)
        for dep in deps:
            there = layer_of(dep)
            if here and there and LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{module} ({here}) imports {dep} ({there})")
            if here and there is None and dep != "ssl_text.metrics":
                upward.append(f"{module} ({here}) imports {dep}, which belongs to no layer")
    assert upward == []


def test_the_walls_the_design_names():
    graph = import_graph()
    forbidden = {
        "algorithms": {"data", "training", "pipelines", "tasks", "cli"},
        "active": {"data", "augment", "algorithms"},  # pure math on arrays
        "data": {"algorithms", "training"},
        "tasks": {"algorithms", "training"},
        "config": set(LAYERS) - {"config"},
    }
    breaches = [
        f"{m} imports {d}"
        for m, deps in graph.items()
        for d in deps
        if layer_of(d) in forbidden.get(layer_of(m), set())
    ]
    assert breaches == []
    outside_cli = [f"{m} imports {d}" for m, deps in graph.items() for d in deps if layer_of(d) == "cli" and layer_of(m) != "cli" and m != "ssl_text.__main__"]
    assert outside_cli == []


def test_nothing_in_the_package_imports_scripts_or_a_top_level_tasks():
    offenders = []
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
            for mod in mods:
                if mod.split(".")[0] in {"scripts", "tasks", "peer_baselines", "moons_lib", "bench_common"}:
                    offenders.append(f"{name} imports {mod}")
    assert offenders == []


def test_tasks_install_inside_the_package_namespace():
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"ssl_text.tasks": "tasks"}
    assert "tasks" not in setuptools["packages"] and "ssl_text.tasks" in setuptools["packages"]
    subpackages = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "ssl_text").rglob("__init__.py")}
    assert subpackages - {"ssl_text.metrics"} <= set(setuptools["packages"])
