"""Task adapters: the small piece of task-specific code between the encoder and the engine."""

from __future__ import annotations

import importlib

from ssl_text.tasks.base import TaskAdapter

# name -> "module:class", imported when a run asks for the task (some pull in heavy dependencies)
TASKS: dict[str, str] = {
    "text_classification": "ssl_text.tasks.text_classification:TextClassification",
    "protein": "ssl_text.tasks.protein:ProteinClassification",
    "ner": "ssl_text.tasks.ner:NamedEntityRecognition",
}


def build_task(name: str) -> TaskAdapter:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} in `task`; choose one of {sorted(TASKS)}.")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)()


__all__ = ["TASKS", "TaskAdapter", "build_task"]
