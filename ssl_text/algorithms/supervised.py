"""Labels only: cross-entropy on the labeled batch. The baseline every method must beat."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ssl_text.algorithms.base import LB, LossOutput, TrainState, logits_of


class Supervised:
    @dataclass
    class Config:
        name: str = "supervised"

    views = (LB,)

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        logits = logits_of(model, batch[LB])  # [B, C]
        loss = F.cross_entropy(logits.flatten(0, -2), batch["lb_labels"].flatten(), ignore_index=-100)
        return LossOutput(total=loss, parts={"loss_lb": loss.detach()})
