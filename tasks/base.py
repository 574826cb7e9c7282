"""The task adapter protocol."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class TaskAdapter(Protocol):
    name: str
    pipeline_tag: str

    def load_tokenizer(self, path: str): ...

    def load_model(self, path: str, label_names: list[str]) -> torch.nn.Module:
        """A model whose `model(**inputs).logits` is `[B, C]` (or `[B, L, C]`)."""

    def tokenize(self, tokenizer, texts: list[str], max_length: int) -> dict[str, list]:
        """Token ids per text, for `datasets.map`; the collator pads them."""

    def compute_metrics(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]: ...
