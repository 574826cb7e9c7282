"""Batched, length-sorted inference under Accelerate (one process or many)."""

from __future__ import annotations

import numpy as np
import scipy.special
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from ssl_text.data.batching import pad_ids


def predict_logits(
    accelerator: Accelerator | None,
    model: torch.nn.Module,
    dataset,
    batch_size: int,
    pad_token_id: int,
    device=None,
    forward=None,
) -> np.ndarray:
    """Logits for every row of `dataset` (which has `input_ids`), in the dataset's order: [N, C] for
    sequence classification; for token classification a list of N arrays [L_i, C], one per row.
    `forward(model, batch)` replaces `model(**batch).logits`, e.g. to get sentence embeddings [N, H].

    With an `accelerator`, the rows are split across its processes, run under its mixed precision and
    gathered, so every process gets them all. With `accelerator=None`, this process alone runs every row
    on `device`, in the model's own precision (distillation's teacher: the processes share out its shards)."""
    ids = dataset["input_ids"]
    order = np.argsort([-len(x) for x in ids], kind="stable")  # longest first: little padding

    def collate(positions: list[int]) -> dict:
        input_ids, attention_mask = pad_ids([ids[p] for p in positions], pad_token_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "position": torch.tensor(positions)}

    loader = DataLoader(order.tolist(), batch_size=batch_size, collate_fn=collate)
    if accelerator is not None:
        loader = accelerator.prepare_data_loader(loader, device_placement=True)
    forward = forward or (lambda m, inputs: m(**inputs).logits)
    was_training = model.training
    model.eval()
    chunks, positions = [], []
    with torch.no_grad():
        for batch in loader:
            position = batch.pop("position")
            if accelerator is None:
                logits = forward(model, {k: v.to(device) for k, v in batch.items()}).float()
            else:
                with accelerator.autocast():
                    logits = forward(model, batch).float()
                if logits.dim() == 3:  # per token: processes may pad to different widths
                    logits = accelerator.pad_across_processes(logits, dim=1)
                logits, position = accelerator.gather_for_metrics((logits, position))
            chunks.append(logits.cpu())
            positions.append(position.cpu())
    model.train(was_training)
    if chunks and chunks[0].dim() == 3:
        rows: list = [None] * len(ids)
        for chunk, pos in zip(chunks, positions):
            for row, p in zip(chunk.numpy(), pos.tolist()):
                rows[p] = row[: len(ids[p])]
        return rows
    logits = torch.cat(chunks).numpy()
    out = np.empty_like(logits)
    out[torch.cat(positions).numpy()] = logits
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis (`scipy.special.softmax`, as the task adapters use it)."""
    return scipy.special.softmax(logits, axis=-1)
