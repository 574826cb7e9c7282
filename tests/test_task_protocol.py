"""The task adapter protocol (tasks/base.py) lists everything the engine asks of a task, and every registered
adapter implements all of it with the protocol's signatures."""

import ast
import inspect
from pathlib import Path

import pytest

from ssl_text.tasks import TASKS, TaskAdapter, build_task

ROOT = Path(__file__).resolve().parents[1]


def protocol_members() -> tuple[set[str], dict[str, inspect.Signature]]:
    """(attribute names, method name -> signature) declared by `TaskAdapter`."""
    attributes = set(TaskAdapter.__annotations__)
    methods = {name: inspect.signature(value) for name, value in vars(TaskAdapter).items()
               if inspect.isfunction(value) and not name.startswith("_")}
    return attributes, methods


def engine_task_accesses() -> dict[str, set[str]]:
    """Every `<task>.<name>` and `getattr(<task>, "<name>", ...)` in the package outside tasks/ (and in its
    scripts), where <task> is a variable or attribute named `task` or a `build_task(...)` call: name -> the
    files that use it."""

    def is_task(node: ast.AST) -> bool:
        return (
            (isinstance(node, ast.Name) and node.id == "task")
            or (isinstance(node, ast.Attribute) and node.attr == "task" and ast.unparse(node) != "cfg.task")
            or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "build_task")
        )

    used: dict[str, set[str]] = {}
    for root in (ROOT / "ssl_text", ROOT / "scripts"):
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and is_task(node.value):
                    name = node.attr
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                      and len(node.args) >= 2 and is_task(node.args[0]) and isinstance(node.args[1], ast.Constant)):
                    name = node.args[1].value
                else:
                    continue
                used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return used


def test_the_protocol_lists_everything_the_engine_asks_of_a_task():
    attributes, methods = protocol_members()
    used = engine_task_accesses()
    assert {"collator", "encode", "score", "load_model"} <= set(used)  # the scan sees the engine
    missing = {name: sorted(files) for name, files in used.items() if name not in attributes | set(methods)}
    assert not missing, f"the engine uses task members that tasks/base.py does not declare: {missing}"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_adapter_implements_the_whole_protocol(name):
    attributes, methods = protocol_members()
    task = build_task(name)
    assert isinstance(task, TaskAdapter)
    absent = sorted(a for a in attributes | set(methods) if not hasattr(task, a))
    assert not absent, f"task `{name}` lacks {absent}"
    assert task.name == name and isinstance(task.token_level, bool) and task.select_metric in task.metrics
    for method, expected in methods.items():
        got = inspect.signature(getattr(type(task), method))
        assert list(got.parameters) == list(expected.parameters), f"{name}.{method}{got} differs from the protocol's {expected}"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_only_the_protein_task_builds_a_model_from_scratch(name):
    from ssl_text.config import ConfigError

    task = build_task(name)
    if name == "protein":
        assert task.new_masked_lm("new:tiny").config.num_hidden_layers >= 1
    else:
        with pytest.raises(ConfigError, match="exists for `task: protein` only"):
            task.new_masked_lm("new:tiny")
