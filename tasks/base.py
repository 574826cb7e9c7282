"""The task adapter protocol: everything task-specific between the data, the encoder and the engine.

The engine (the pipelines: train, evaluate/predict, self-train, distill, pretrain; the collators, the
streamed corpus) calls only these attributes and methods, and every adapter implements all of them
(tests/test_task_protocol.py), so a new task is one class here plus a line in `tasks/__init__.py`.
Where tasks differ (one label per text or per word), the adapter does the work; the engine reads
`token_level` only to refuse an algorithm that cannot handle per-token labels and to draw a confusion
matrix (classes per text) for the tasks that have one.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class TaskAdapter(Protocol):
    name: str
    pipeline_tag: str  # the `transformers.pipeline` task the saved model loads in
    select_metric: str  # the validation metric that picks the best model when the config keeps the default
    metrics: tuple[str, ...]  # the validation metrics `score` reports on every split: `trainer.select_metric` names one
    token_level: bool  # one label per token (NER) rather than one per text: the algorithm must be token-level too

    def check_views(self, views) -> None:
        """Refuse view operations the task cannot use (NER: anything that moves words)."""

    def load_data(self, cfg) -> object:
        """Every data slot of `cfg` (`ssl_text.config.DataConfig`) as a `ssl_text.data.text_data.TextData`."""

    def load_tokenizer(self, path: str): ...

    def tokenize(self, tokenizer, texts: list[str], max_length: int) -> dict[str, list]:
        """`{"input_ids": [...]}` of raw texts, as the task feeds them to the model (augmented text, streamed corpora)."""

    def new_masked_lm(self, path: str) -> torch.nn.Module:
        """A masked-LM from scratch for `model.name_or_path: new:<size>` (`ssl-text pretrain`); ConfigError where the task has none."""

    def load_model(self, path: str, label_names: list[str], pooling: str = "auto") -> torch.nn.Module:
        """A model whose `model(**inputs).logits` is `[B, C]` (or `[B, L, C]`); `pooling` is `model.pooling`
        (how a new text-level head reads the encoder; "auto" for a saved model)."""

    def encode(self, ds, tokenizer, data, label_names: list[str], extra_columns=()):
        """Token ids (and aligned labels) for a split, with `datasets.map` so that the work is cached."""

    def load_eval_split(self, spec, data, label_names: list[str], where: str):
        """A labeled evaluation set outside the training config (`ssl-text evaluate --data`), ready for `encode`."""

    def collator(self, tokenizer, views, requested: tuple[str, ...], context=None):
        """An object with `labeled(rows, generator)` and `unlabeled(rows, generator)` building the batch views;
        `context` (`ssl_text.augment.collate.CollatorContext`) carries what view operations need beyond the views."""

    def label_counts(self, labeled, num_labels: int) -> np.ndarray:
        """How often each label occurs in the labeled set (the prior of the collapse check)."""

    def score(self, logits, dataset, label_names: list[str]) -> tuple[dict[str, float], object, object]:
        """(metrics, predictions, references) of one evaluation split from the model's logits."""

    def token_decoder(self, label_names: list[str]) -> Callable | None:
        """For the trainer's algorithms: (probs [B, L, C], positions [B, L]) -> valid label sequences (NER's BIO), or None."""

    def mask_groups(self, label_names: list[str]) -> dict[str, list[int]] | None:
        """Class ids per group whose mask rate the trainer logs (NER: per entity type), or None."""

    def soft_targets(self, logits, rows, temperature: float):
        """Distillation targets from the teacher's logits on encoded `rows`: per row, softmax(logits / T) of its
        one label ([C]) or of each of its words ([W_i, C])."""

    def pseudo_label_pool(self, logits, pool, label_names: list[str], labeling, labeled) -> tuple[np.ndarray, list, dict | None]:
        """Self-training: (rows kept [M], their targets, statistics) from the teacher's logits on the encoded `pool`,
        under `labeling` (tau, hard_labels, balance) and the `labeled` rows' class prior."""

    def predict(self, model, tokenizer, texts: list[str], label_names: list[str], batch_size: int,
                probabilities: Callable[[list[str]], np.ndarray]) -> list[dict]:
        """One record per raw text (`ssl-text predict`); `probabilities(texts)` is the engine's batched
        inference ([N, C] class probabilities) for tasks that predict one label per text."""
