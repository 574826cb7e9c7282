"""Pseudo-label (Lee, 2013): confident argmax predictions on unlabeled text become hard
targets, with the unlabeled weight ramped up linearly over `rampup_steps`. Works per text and
per token (NER: decoded valid-BIO tag sequences). With `knn_agreement` a text's target also needs its kNN
vote in the start model's embedding space to agree (ssl_text/algorithms/agreement.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.agreement import vote_agreement
from ssl_text.algorithms.base import LossOutput, TrainState, hard_pseudo_labels, labeled_loss, logits_of, unlabeled_rows
from ssl_text.algorithms.losses import linear_rampup, masked_mean, target_confidence_mask
from ssl_text.config import ConfigError
from ssl_text.config.keys import LB, LB_LABELS, ULB_KNN_VOTES, ULB_WEAK


class PseudoLabel:
    @dataclass
    class Config:
        name: str = "pseudo_label"
        tau: float = 0.95
        lambda_u: float = 1.0
        rampup_steps: int = 100
        knn_agreement: bool = False  # targets only where the kNN vote of the start model's embeddings agrees (HAST)

        def validate(self, source: str) -> None:
            _check_tau(self.tau, source)

    views = (LB, ULB_WEAK)
    token_level = True

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        self.needs_knn_votes = config.knn_agreement

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        loss_lb = labeled_loss(logits_of(model, batch[LB]), batch[LB_LABELS])
        logits_full = logits_of(model, batch[ULB_WEAK])  # [mu*B, C] or [mu*B, L, C]
        pseudo = hard_pseudo_labels(torch.softmax(logits_full.detach(), dim=-1), batch, state)  # [N]
        logits_ulb = unlabeled_rows(logits_full, batch)  # [N, C]
        mask = target_confidence_mask(torch.softmax(logits_ulb.detach(), dim=-1), pseudo, cfg.tau)
        if cfg.knn_agreement:
            mask = mask * vote_agreement(pseudo, batch[ULB_KNN_VOTES])
        loss_ulb = masked_mean(F.cross_entropy(logits_ulb, pseudo, reduction="none"), mask)
        weight = cfg.lambda_u * linear_rampup(state.step, cfg.rampup_steps)
        return LossOutput(
            total=loss_lb + weight * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": mask.mean()},
            pseudo_labels=pseudo,
            mask=mask,
        )


def _check_tau(tau: float, source: str) -> None:
    if not 0.0 < tau < 1.0:
        raise ConfigError(
            f"{source}: `algorithm.tau` is {tau}; expected a confidence threshold in (0, 1), e.g. 0.95."
        )


def check_dist_align_momentum(momentum: float | None, source: str) -> None:
    if momentum is not None and not 0.0 < momentum < 1.0:
        raise ConfigError(
            f"{source}: `algorithm.dist_align_momentum` is {momentum}; expected an EMA momentum in (0, 1), "
            "e.g. 0.99, or null to turn distribution alignment off."
        )
