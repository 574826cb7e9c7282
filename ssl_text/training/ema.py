"""Exponential moving average of model weights (mean-teacher targets, EMA evaluation)."""

from __future__ import annotations

import copy

import torch


@torch.no_grad()
def ema_update(ema_model: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    for ema_p, p in zip(ema_model.parameters(), model.parameters()):
        ema_p.lerp_(p.detach().to(ema_p.dtype), 1.0 - decay)
    for ema_b, b in zip(ema_model.buffers(), model.buffers()):
        ema_b.copy_(b)


class EMA:
    """A frozen copy of a model that trails it; checkpointed with the training state."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay is {decay}; expected a value in (0, 1), e.g. 0.999.")
        self.decay = decay
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)

    def update(self, model: torch.nn.Module) -> None:
        ema_update(self.model, model, self.decay)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
