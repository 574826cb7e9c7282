"""The contract every algorithm follows.

An algorithm is one class with a nested `Config` dataclass, a `views` tuple naming the
batch entries it reads, and `compute_loss(model, batch, state) -> LossOutput`. It never
calls backward or steps an optimizer: the trainer does. Batches hold model inputs per view
(`batch["lb"]`, `batch["ulb_weak"]`, `batch["ulb_strong"]`) and targets beside them
(`batch["lb_labels"]`); `model(**batch[view]).logits` gives `[B, C]` (or `[B, L, C]`).

Optional class attributes the trainer reads: `requires_ema = True` (the trainer keeps an EMA
copy of the weights and passes it as `state.ema_model`), and `state_dict()` /
`load_state_dict()` for algorithms with state, which then lives in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

# View names an algorithm may ask for; the collator builds exactly these.
LB = "lb"
ULB_WEAK = "ulb_weak"
ULB_STRONG = "ulb_strong"
KNOWN_VIEWS = (LB, ULB_WEAK, ULB_STRONG)


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
    ema_model: Any = None  # the trainer's EMA copy of the model, when trainer.ema_decay is set
    gather: Any = None  # gathers a tensor from every process (identity with one process)


def logits_of(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**inputs).logits
