"""The contract every algorithm follows.

An algorithm is one class with a nested `Config` dataclass, a `views` tuple naming the
batch entries it reads, and `compute_loss(model, batch, state) -> LossOutput`. It never
calls backward or steps an optimizer: the trainer does. Batches hold model inputs per view
(`batch["lb"]`, `batch["ulb_weak"]`, `batch["ulb_strong"]`) and targets beside them
(`batch[LB_LABELS]`); `model(**batch[view]).logits` gives `[B, C]` (or `[B, L, C]`).

Optional attributes the trainer reads: `requires_ema = True` (the trainer keeps an EMA
copy of the weights and passes it as `state.ema_model`; an algorithm whose config decides this
sets it per instance), `needs_knn_votes = True` (the pipeline adds each unlabeled row's kNN vote in the start
model's embedding space as `batch[ULB_KNN_VOTES]`, ssl_text/algorithms/agreement.py), and `state_dict()` /
`load_state_dict()` for algorithms with state, which then lives in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ssl_text.config.keys import ULB_TOKEN_MASK

# View names an algorithm may ask for; the collator builds exactly these.


@dataclass
class LossOutput:
    total: torch.Tensor  # scalar with grad
    parts: dict[str, torch.Tensor | float] = field(default_factory=dict)  # for logging
    pseudo_labels: torch.Tensor | None = None  # [B_ulb], for pseudo-label accuracy logging
    mask: torch.Tensor | None = None  # [B_ulb] in {0, 1}


@dataclass
class TrainState:
    """What an algorithm may know about the run when computing a loss."""

    step: int
    max_steps: int
    num_classes: int
    seed: int = 0  # the run's seed (`trainer.seed`), for algorithms that draw random numbers
    ema_model: Any = None  # the trainer's EMA copy of the model, when trainer.ema_decay is set
    gather: Any = None  # gathers a tensor from every process (identity with one process)
    token_decoder: Any = None  # token-level tasks: (probs [B, L, C], positions [B, L]) -> labels [N]


def logits_of(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**inputs).logits


def target_network(model: torch.nn.Module, state: TrainState, teacher: str, name: str) -> torch.nn.Module:
    """The network whose weak-view predictions become the targets: `"model"`, the model being
    trained; `"ema"`, the trainer's EMA copy of it (slower-moving targets, less confirmation bias),
    run in the model's train/eval mode."""
    if teacher == "model":
        return model
    if state.ema_model is None:
        raise ValueError(
            f"{name} with `algorithm.teacher: ema` takes its targets from the trainer's EMA copy of the model, "
            "but `state.ema_model` is None; set `trainer.ema_decay` (e.g. 0.99)."
        )
    state.ema_model.train(model.training)
    return state.ema_model


# Token-level tasks (NER). Algorithms marked `token_level = True` work on both shapes: one label
# per text (`[B, C]` logits, `[B]` labels) and one label per token (`[B, L, C]` logits, `[B, L]`
# labels with -100 where no label applies, `batch["ulb_token_mask"]` [B, L] marking the
# unlabeled positions that count). The helpers below reduce both to rows of `[N, C]`.


def labeled_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over labeled rows ([B, C] / [B]) or labeled tokens ([B, L, C] / [B, L], -100 ignored)."""
    return F.cross_entropy(logits.flatten(0, -2), labels.flatten(), ignore_index=-100)


def unlabeled_rows(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """[B, C] unchanged; [B, L, C] -> [N, C] at the positions of `batch["ulb_token_mask"]`."""
    if logits.dim() == 2:
        return logits
    return logits[batch[ULB_TOKEN_MASK]]


def hard_pseudo_labels(probs: torch.Tensor, batch: dict, state: TrainState) -> torch.Tensor:
    """Argmax per text ([B, C] -> [B]); per token ([B, L, C] -> [N]), decoded by the task (valid BIO
    sequences for NER) when the trainer has a `token_decoder`."""
    if probs.dim() == 2:
        return probs.argmax(dim=-1)
    positions = batch[ULB_TOKEN_MASK]
    if state.token_decoder is not None:
        return state.token_decoder(probs, positions)
    return probs[positions].argmax(dim=-1)
