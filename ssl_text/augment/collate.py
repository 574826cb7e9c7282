"""Turning rows of token ids into the padded view tensors an algorithm asks for."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ssl_text.augment.pipeline import ViewContext, ViewPipeline
from ssl_text.augment.precomputed import IDS, aug_ids_column  # noqa: F401  (ssl_text.augment.collate.aug_ids_column is public)
from ssl_text.augment.registry import view_steps
from ssl_text.config import DataConfig, ViewsConfig
from ssl_text.config.keys import (
    ANALYSIS_LABEL,
    INDEX,
    KNN_VOTE,
    LB_LABELS,
    PSEUDO_TARGET,
    TEXT,
    ULB_INDEX,
    ULB_KNN_VOTES,
    ULB_STRONG,
    ULB_WEAK,
)
from ssl_text.data.batching import pad_ids

VIEW_FIELDS = {ULB_WEAK: "weak", ULB_STRONG: "strong"}  # the view an algorithm asks for -> its ViewsConfig field


def _steps(views: ViewsConfig, name: str):
    return view_steps(getattr(views, VIEW_FIELDS[name]), f"views.{VIEW_FIELDS[name]}")


class TextCollator:
    """Pads labeled rows, and builds the requested weak/strong views of unlabeled rows.

    Each view is a pipeline of registered operations (ssl_text/augment/registry.py). Text-level
    operations need `encode` (texts -> token ids, the task's tokenization) and some need `corpus`
    (the unlabeled dataset: `tfidf_replace` fits on its texts, `back_translation` checks its columns).
    """

    def __init__(self, tokenizer, views: ViewsConfig, requested: tuple[str, ...], *, encode=None, corpus=None):
        self.pad_id = tokenizer.pad_token_id
        context = ViewContext(tokenizer, encode=encode, corpus=corpus)
        self.pipelines = {name: ViewPipeline(_steps(views, name), context) for name in VIEW_FIELDS if name in requested}

    def labeled(self, rows: dict, generator: torch.Generator) -> dict:
        ids, mask = pad_ids(rows[IDS], self.pad_id)
        return {"lb": {IDS: ids, "attention_mask": mask}, LB_LABELS: torch.as_tensor(rows["label"])}

    def unlabeled(self, rows: dict, generator: torch.Generator) -> dict:
        batch: dict = {ULB_INDEX: torch.as_tensor(rows[INDEX])}
        if ANALYSIS_LABEL in rows:
            batch["ulb_analysis_labels"] = torch.as_tensor(rows[ANALYSIS_LABEL])
        if PSEUDO_TARGET in rows:
            batch["ulb_targets"] = torch.tensor(rows[PSEUDO_TARGET], dtype=torch.float)
        if KNN_VOTE in rows:
            batch[ULB_KNN_VOTES] = torch.tensor(rows[KNN_VOTE], dtype=torch.float)
        for name, pipeline in self.pipelines.items():
            ids, mask = pipeline(rows, generator)
            batch[name] = {IDS: ids, "attention_mask": mask}
        return batch


def views_need_text(views: ViewsConfig, requested: tuple[str, ...]) -> bool:
    """Whether a requested view has a text-level step (word operations, paraphrase columns)."""
    return any(step.op.level == TEXT for name in VIEW_FIELDS if name in requested for step in _steps(views, name))


@dataclass
class CollatorContext:
    """What a task's view operations may need beyond the views: text-level steps tokenize with
    `data.max_length` and fit on the `unlabeled` corpus; NER's word operations draw replacement words and
    mentions from the encoded `labeled` rows and their `label_names`."""

    data: DataConfig
    unlabeled: object = None
    labeled: object = None
    label_names: list[str] | None = None


def build_collator(task, tokenizer, cfg, requested: tuple[str, ...], unlabeled, labeled_rows=None, label_names=None):
    """The task's collator (`task.collator`) for the views `requested`, with the run's `CollatorContext`."""
    return task.collator(tokenizer, cfg.views, requested, CollatorContext(cfg.data, unlabeled, labeled_rows, label_names))
