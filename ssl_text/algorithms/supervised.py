"""Labels only: cross-entropy on the labeled batch. The baseline every method must beat."""

from __future__ import annotations

from dataclasses import dataclass

from ssl_text.algorithms.base import LossOutput, TrainState, labeled_loss, logits_of
from ssl_text.config.keys import LB, LB_LABELS


class Supervised:
    @dataclass
    class Config:
        name: str = "supervised"

    views = (LB,)
    token_level = True

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        loss = labeled_loss(logits_of(model, batch[LB]), batch[LB_LABELS])  # [B, C] or [B, L, C] logits
        return LossOutput(total=loss, parts={"loss_lb": loss.detach()})
