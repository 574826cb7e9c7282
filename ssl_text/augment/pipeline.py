"""A view pipeline at run time: registered steps built once, applied to every batch of unlabeled rows.

`ViewPipeline(steps, context)` builds each step (`ssl_text.augment.registry.OPS`). Per batch,
the text-level steps turn `rows["text"]` into new texts, which `context.encode` (the task's
tokenization) turns into ids; without text-level steps the rows' precomputed `input_ids` are
used. The ids are padded to `[B, L]` and the token-level steps run in order. Every random
number comes from the batch's generator (see ssl_text/data/batching.py), so resuming a run
reproduces its batches exactly.
"""

from __future__ import annotations

from functools import cached_property
from typing import Callable

import datasets
import torch

from ssl_text.augment.precomputed import IDS, PrecomputedColumns
from ssl_text.augment.registry import Step
from ssl_text.augment.residue_views import ResidueVocab
from ssl_text.augment.word_ops import MissingResourceError
from ssl_text.config import ConfigError
from ssl_text.config.keys import TEXT
from ssl_text.data.batching import pad_ids

TEXT_COLUMN = "text"


class ViewContext:
    """What the operations need from the run: the tokenizer, the task's tokenization, the unlabeled corpus."""

    def __init__(self, tokenizer, encode: Callable[[list[str]], list[list[int]]] | None = None, corpus=None):
        self.tokenizer = tokenizer
        self.encode = encode  # texts -> token ids (with special tokens, truncated); None: no text-level steps
        self.corpus = corpus  # the unlabeled `datasets.Dataset` (texts for fitting, its columns), or None
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))

    @property
    def column_names(self) -> list[str] | None:
        """The unlabeled data's columns; None when unknown (no corpus, or a stream that does not say)."""
        names = getattr(self.corpus, "column_names", None)
        return list(names) if names is not None else None

    def corpus_texts(self, op: str) -> list[str]:
        """Every unlabeled text, to fit on; needs the in-memory dataset (a stream cannot be read twice)."""
        if not isinstance(self.corpus, datasets.Dataset) or TEXT_COLUMN not in self.corpus.column_names:
            raise ValueError(
                f"{op} is fitted on the unlabeled texts, which this collator was built without"
                + (" (the corpus is streamed; load it in memory: data.unlabeled.streaming=false)." if self.corpus is not None else ".")
            )
        return self.corpus[TEXT_COLUMN]

    def special_mask(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, L] True on special tokens and padding: no operation touches them."""
        return torch.isin(ids, self.special_ids) | (mask == 0)

    @cached_property
    def substitution_candidates(self) -> torch.Tensor:
        """[C] every token id but the special ones."""
        every = torch.arange(len(self.tokenizer))
        return every[~torch.isin(every, self.special_ids)]

    @cached_property
    def residues(self) -> ResidueVocab:
        return ResidueVocab(self.tokenizer)


class ViewPipeline:
    """The built steps of one view: text-level operations, the task's tokenization, token-level operations."""

    def __init__(self, steps: list[Step], context: ViewContext):
        self.steps = steps
        self.context = context
        self.text_ops = [_build(s, context) for s in steps if s.op.level == TEXT]
        self.id_ops = [_build(s, context) for s in steps if s.op.level != TEXT]
        retokenizes = any(not isinstance(op, PrecomputedColumns) for op in self.text_ops)
        if retokenizes and context.encode is None:
            step = next(s for s in steps if s.op.level == TEXT and s.op.name != "back_translation")
            raise ConfigError(
                f"`{step.key}` ({step.op.name}) changes the text, but this collator cannot tokenize text; "
                "build it with `ssl_text.augment.collate.build_collator` (as `ssl-text train` does)."
            )

    def __call__(self, rows: dict, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The view of a batch of rows: `(input_ids [B, L], attention_mask [B, L])`."""
        ids, mask = pad_ids(self._sequences(rows, generator), self.context.pad_id)
        return self.apply_ids(ids, mask, generator)

    def apply_ids(self, ids: torch.Tensor, mask: torch.Tensor, generator: torch.Generator):
        for op in self.id_ops:
            ids, mask = op(ids, mask, generator)
        return ids, mask

    def _sequences(self, rows: dict, generator: torch.Generator) -> list[list[int]]:
        if not self.text_ops:
            return rows[IDS]
        ops, choice = self.text_ops, None
        if isinstance(ops[0], PrecomputedColumns):  # always the first step
            choice = ops[0].choose(rows, generator)
            if len(ops) == 1 and (ids := ops[0].ids(rows, choice)) is not None:
                return ids  # the paraphrases were tokenized ahead of time
        if TEXT_COLUMN not in rows:
            raise ConfigError(f"text-level view steps need a `{TEXT_COLUMN}` column in the unlabeled rows; found {sorted(rows)}.")
        texts = list(rows[TEXT_COLUMN])
        if choice is not None:
            texts, ops = ops[0].texts(texts, rows, choice), ops[1:]
        for op in ops:
            texts = op(texts, rows, generator)
        if self.context.encode is None:
            raise ConfigError("a precomputed paraphrase column has no token ids and this collator cannot tokenize text.")
        return self.context.encode(texts)


def _build(step: Step, context: ViewContext):
    try:
        return step.op.build(step.args, context)
    except MissingResourceError as err:
        raise MissingResourceError(f"`{step.key}` ({step.op.name}): {err}") from None
    except (ValueError, OSError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"`{step.key}` ({step.op.name}): {err}") from err
