"""Batches from a streamed unlabeled corpus: tokenized on the fly, sharded, resumable, flat memory.

`StreamingBatchStream` has the interface of `BatchStream` (`next()` gives the collated
dict, `state_dict()` / `load_state_dict()`, view noise seeded by `(seed, salt, k)` for
batch `k`) over a `datasets.IterableDataset` (see `ssl_text/data/streamed.py`):

- every process shuffles the stream the same way, in a buffer of `buffer_size` rows
  (`IterableDataset.shuffle`), reshuffled each epoch (`set_epoch`);
- process r keeps every `world_size`-th row from offset r (`split_dataset_by_node` with the
  "examples" strategy: the "shards" strategy would hand each process whole files, but a row's
  `index`, its position in the stream, is only the same on every process when each reads
  the stream in the same order). The processes' rows are disjoint and cover the data;
- the rows of a process over the epochs form one endless sequence; batch k is rows
  [k*b, (k+1)*b) of it, tokenized only when drawn.

The state is k alone: a resumed stream skips k*b rows, read but not tokenized, and then
gives exactly the batches of an uninterrupted run. Nothing holds more than the shuffle
buffer and one batch.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Callable, Iterator

import datasets
import numpy as np
import torch
from datasets.distributed import split_dataset_by_node

from ssl_text.augment.collate import IDS, aug_ids_column
from ssl_text.config import ConfigError, RunConfig
from ssl_text.data.batching import BatchStream, batch_generator


class StreamingBatchStream:
    def __init__(
        self,
        dataset: datasets.IterableDataset,
        batch_size: int,
        seed: int,
        collate: Callable[[dict, torch.Generator], dict],
        tokenize: Callable[[dict], dict],
        rank: int = 0,
        world_size: int = 1,
        salt: int = 0,
        buffer_size: int = 10_000,
    ):
        shuffled = dataset.shuffle(generator=np.random.default_rng([seed, salt]), buffer_size=buffer_size)
        self.dataset = split_dataset_by_node(shuffled, rank=rank, world_size=world_size, strategy="examples")
        self.batch_size = batch_size
        self.seed = seed
        self.salt = salt
        self.collate = collate
        self.tokenize = tokenize  # rows (column -> list) -> the same rows with their token ids
        self.batches_drawn = 0
        self._rows: Iterator[dict] | None = None  # positioned at row `batches_drawn * batch_size`

    def _endless_rows(self) -> Iterator[dict]:
        epoch = 0
        while True:
            self.dataset.set_epoch(epoch)
            count = 0
            for row in self.dataset:
                count += 1
                yield row
            if count == 0:
                raise ValueError("cannot stream batches from an empty dataset; check the data spec.")
            epoch += 1

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self._rows is None:
            self._rows = self._endless_rows()
            deque(islice(self._rows, self.batches_drawn * self.batch_size), maxlen=0)  # resume: skip, untokenized
        rows = list(islice(self._rows, self.batch_size))
        batch = self.tokenize({column: [row[column] for row in rows] for column in rows[0]})
        generator = batch_generator(self.seed, self.salt, self.batches_drawn)
        self.batches_drawn += 1
        return self.collate(batch, generator)

    def state_dict(self) -> dict:
        return {"batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        self.batches_drawn = int(state["batches_drawn"])
        self._rows = None


def unlabeled_batches(unlabeled, cfg: RunConfig, task, tokenizer, collate, rank: int, world_size: int):
    """The unlabeled batches of a run: a `BatchStream` over tokenized rows in memory, or a
    `StreamingBatchStream` that tokenizes a streamed corpus with `task.tokenize` as it draws."""
    t = cfg.trainer
    if isinstance(unlabeled, datasets.Dataset):
        return BatchStream(unlabeled, t.lb_batch_size * t.mu, t.seed, collate, rank, world_size, salt=2)
    requested = {c for view in (cfg.views.weak, cfg.views.strong) for c in view.aug_columns}
    aug_columns = sorted(requested & set(unlabeled.column_names))

    def tokenize(rows: dict) -> dict:
        for column in ("text", *aug_columns):
            out = IDS if column == "text" else aug_ids_column(column)
            rows[out] = token_ids(task, tokenizer, rows[column], cfg.data.max_length)
        return rows

    return StreamingBatchStream(
        unlabeled, t.lb_batch_size * t.mu, t.seed, collate, tokenize, rank, world_size, salt=2,
        buffer_size=cfg.data.unlabeled.shuffle_buffer,
    )


def token_ids(task, tokenizer, texts: list[str | None], max_length: int) -> list[list[int] | None]:
    """Token ids of each text; None for a missing one (an `aug_*` text the row lacks: the view keeps the original)."""
    present = [i for i, text in enumerate(texts) if text]
    ids: list[list[int] | None] = [None] * len(texts)
    if present:
        encoded = task.tokenize(tokenizer, [texts[i] for i in present], max_length)["input_ids"]
        for i, row_ids in zip(present, encoded):
            ids[i] = row_ids
    return ids


def check_streamable(algorithm, name: str, unlabeled) -> None:
    """Refuse a streamed corpus for an algorithm that needs the whole pool up front: state for every unlabeled
    example, or kNN votes over all of them (`algorithm.knn_agreement`)."""
    if not isinstance(unlabeled, datasets.IterableDataset):
        return
    if getattr(algorithm, "needs_knn_votes", False):
        raise ConfigError(
            "`algorithm.knn_agreement` votes over the whole unlabeled pool, which a streamed corpus cannot give; set "
            "`data.unlabeled.streaming: false`, or `algorithm.knn_agreement: false`."
        )
    if not getattr(algorithm, "per_example_state", False):
        return
    from ssl_text.algorithms import ALGORITHMS

    streamable = sorted(
        other for other, cls in ALGORITHMS.items()
        if not getattr(cls, "per_example_state", False) and any(view.startswith("ulb") for view in cls.views)
    )
    raise ConfigError(
        f"algorithm `{name}` keeps state for every unlabeled example (keyed by its index), which needs the pool "
        "up front and grows with it, but `data.unlabeled.streaming` is true. Set `data.unlabeled.streaming: false` "
        f"(the pool must then fit in memory), or choose an algorithm without per-example state: {streamable}."
    )
