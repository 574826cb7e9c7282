"""FixMatch (Sohn et al., 2020): the argmax of the weak view is the target for the strong
view wherever the weak view's confidence reaches `tau`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.base import LB, ULB_STRONG, ULB_WEAK, LossOutput, TrainState, logits_of
from ssl_text.algorithms.pseudo_label import _check_tau
from ssl_text.losses import confidence_mask, masked_mean


class FixMatch:
    @dataclass
    class Config:
        name: str = "fixmatch"
        tau: float = 0.95
        lambda_u: float = 1.0

        def validate(self, source: str) -> None:
            _check_tau(self.tau, source)

    views = (LB, ULB_WEAK, ULB_STRONG)

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        logits_lb = logits_of(model, batch[LB])  # [B, C]
        loss_lb = F.cross_entropy(logits_lb, batch["lb_labels"])
        with torch.no_grad():
            probs_weak = torch.softmax(logits_of(model, batch[ULB_WEAK]), dim=-1)  # [mu*B, C]
        mask = confidence_mask(probs_weak, cfg.tau)
        pseudo = probs_weak.argmax(dim=-1)
        logits_strong = logits_of(model, batch[ULB_STRONG])  # [mu*B, C]
        loss_ulb = masked_mean(F.cross_entropy(logits_strong, pseudo, reduction="none"), mask)
        return LossOutput(
            total=loss_lb + cfg.lambda_u * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": mask.mean()},
            pseudo_labels=pseudo,
            mask=mask,
        )
