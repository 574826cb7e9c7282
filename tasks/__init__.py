"""Task adapters: the small piece of task-specific code between the encoder and the engine."""

from __future__ import annotations

from tasks.base import TaskAdapter
from tasks.protein import ProteinClassification
from tasks.text_classification import TextClassification

TASKS: dict[str, type] = {"text_classification": TextClassification, "protein": ProteinClassification}


def build_task(name: str) -> TaskAdapter:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} in `task`; choose one of {sorted(TASKS)}.")
    return TASKS[name]()


__all__ = ["TASKS", "TaskAdapter", "build_task"]
