"""The task adapter protocol: everything task-specific between the data, the encoder and the engine.

The engine (`ssl_text/pipelines/train.py`, the trainer, the algorithms) calls only these methods, so a
new task is one class here plus a line in `tasks/__init__.py`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class TaskAdapter(Protocol):
    name: str
    pipeline_tag: str  # the `transformers.pipeline` task the saved model loads in
    select_metric: str  # the validation metric that picks the best model when the config keeps the default
    token_level: bool  # one label per token (NER) rather than one per text

    def check_views(self, views) -> None:
        """Refuse view operations the task cannot use (NER: anything that moves words)."""

    def load_data(self, cfg) -> object:
        """Every data slot of `cfg` (`ssl_text.config.DataConfig`) as a `ssl_text.data.text_data.TextData`."""

    def load_tokenizer(self, path: str): ...

    def load_model(self, path: str, label_names: list[str]) -> torch.nn.Module:
        """A model whose `model(**inputs).logits` is `[B, C]` (or `[B, L, C]`)."""

    def encode(self, ds, tokenizer, data, label_names: list[str], extra_columns=()):
        """Token ids (and aligned labels) for a split, with `datasets.map` so that the work is cached."""

    def collator(self, tokenizer, views, requested: tuple[str, ...]):
        """An object with `labeled(rows, generator)` and `unlabeled(rows, generator)` building the batch views."""

    def label_counts(self, labeled, num_labels: int) -> np.ndarray:
        """How often each label occurs in the labeled set (the prior of the collapse check)."""

    def score(self, logits, dataset, label_names: list[str]) -> tuple[dict[str, float], object, object]:
        """(metrics, predictions, references) of one evaluation split from the model's logits."""
