"""Seeded, resumable, process-sharded batch streams and padding collation.

A `BatchStream` walks an endless sequence of per-epoch permutations. Batch `k` of process
`r` holds positions `[k*G + r*b, k*G + (r+1)*b)` of that sequence (`b` the per-process
batch, `G = b * world_size`), so the stream's whole state is `k`: resuming restores it and
produces exactly the batches an uninterrupted run would have seen. Random view noise is
drawn from a generator seeded by `(seed, salt, k)` for the same reason.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from ssl_text.config.seeds import derive_seed


def pad_ids(sequences: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence. Returns (input_ids [B, L], attention_mask [B, L]).

    The same tensors as `tokenizer.pad(..., padding_side="right")` (tests/test_data.py), but kept: it also pads
    labels (-100) and word indices (-1), needs no tokenizer, and always pads right, as CLS pooling and the crop views assume."""
    rows = [torch.as_tensor(seq, dtype=torch.long) for seq in sequences]
    ids = pad_sequence(rows, batch_first=True, padding_value=pad_token_id)
    lengths = torch.tensor([len(row) for row in rows])
    return ids, (torch.arange(ids.shape[1]) < lengths[:, None]).long()


def batch_generator(seed: int, salt: int, k: int) -> torch.Generator:
    """The generator of batch `k`'s random view noise: a function of (seed, salt, k) only, so resumable."""
    return torch.Generator().manual_seed(derive_seed(seed, salt, k))


class BatchStream:
    def __init__(
        self,
        dataset,
        batch_size: int,
        seed: int,
        collate: Callable[[dict, torch.Generator], dict],
        rank: int = 0,
        world_size: int = 1,
        salt: int = 0,
    ):
        if len(dataset) == 0:
            raise ValueError("cannot stream batches from an empty dataset; check the data spec.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.collate = collate
        self.rank = rank
        self.world_size = world_size
        self.salt = salt
        self.batches_drawn = 0
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            rng = np.random.default_rng([self.seed, self.salt, epoch])
            self._perms[epoch] = rng.permutation(len(self.dataset))
        return self._perms[epoch]

    def indices(self, k: int) -> list[int]:
        n = len(self.dataset)
        start = k * self.batch_size * self.world_size + self.rank * self.batch_size
        return [int(self._perm(p // n)[p % n]) for p in range(start, start + self.batch_size)]

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        k = self.batches_drawn
        rows = self.dataset[self.indices(k)]
        generator = batch_generator(self.seed, self.salt, k)
        self.batches_drawn += 1
        return self.collate(rows, generator)

    def state_dict(self) -> dict:
        return {"batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        self.batches_drawn = int(state["batches_drawn"])
