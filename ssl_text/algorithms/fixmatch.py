"""FixMatch (Sohn et al., 2020): the argmax of the weak view is the target for the strong
view wherever the weak view's confidence reaches `tau`. Works per text and per token (NER: the
decoded valid-BIO tag sequence of the weak view is the target of each word's first subword).
With `dist_align_momentum` set, the weak view's probabilities are first aligned to the labeled
class prior (ssl_text/algorithms/distribution_alignment.py), as ReMixMatch and SoftMatch do. With
`teacher: ema` the weak view goes through the trainer's EMA copy of the model instead of the model
itself (`trainer.ema_decay` must be set). With `knn_agreement` a target also needs the kNN vote of the text
in the start model's embedding space (ssl_text/algorithms/agreement.py) to agree with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ssl_text.algorithms.agreement import vote_agreement
from ssl_text.algorithms.base import (
    LossOutput,
    TrainState,
    hard_pseudo_labels,
    labeled_loss,
    logits_of,
    target_network,
    unlabeled_rows,
)
from ssl_text.algorithms.distribution_alignment import DistributionAlignment
from ssl_text.algorithms.losses import masked_mean, target_confidence_mask
from ssl_text.algorithms.pseudo_label import _check_tau, check_dist_align_momentum
from ssl_text.config.keys import LB, LB_LABELS, ULB_KNN_VOTES, ULB_STRONG, ULB_WEAK


class FixMatch:
    @dataclass
    class Config:
        name: str = "fixmatch"
        tau: float = 0.95
        lambda_u: float = 1.0
        dist_align_momentum: float | None = None  # EMA momentum of distribution alignment; None: off
        teacher: Literal["model", "ema"] = "model"  # who labels the weak view: the model or its EMA copy
        knn_agreement: bool = False  # targets only where the kNN vote of the start model's embeddings agrees (HAST)

        def validate(self, source: str) -> None:
            _check_tau(self.tau, source)
            check_dist_align_momentum(self.dist_align_momentum, source)

    views = (LB, ULB_WEAK, ULB_STRONG)
    token_level = True

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        self.requires_ema = config.teacher == "ema"
        self.needs_knn_votes = config.knn_agreement
        momentum = config.dist_align_momentum
        self.align = DistributionAlignment(num_classes, momentum) if momentum is not None else None

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        loss_lb = labeled_loss(logits_of(model, batch[LB]), batch[LB_LABELS])
        with torch.no_grad():
            teacher = target_network(model, state, cfg.teacher, "fixmatch")
            probs_weak = torch.softmax(logits_of(teacher, batch[ULB_WEAK]), dim=-1)  # [mu*B, C] or [mu*B, L, C]
            if self.align is not None:
                self.align.update(batch[LB_LABELS], unlabeled_rows(probs_weak, batch), state.gather)
                probs_weak = self.align(probs_weak)
        pseudo = hard_pseudo_labels(probs_weak, batch, state)  # [N]: one per text, or per word
        mask = target_confidence_mask(unlabeled_rows(probs_weak, batch), pseudo, cfg.tau)
        if cfg.knn_agreement:
            mask = mask * vote_agreement(pseudo, batch[ULB_KNN_VOTES])
        logits_strong = unlabeled_rows(logits_of(model, batch[ULB_STRONG]), batch)  # [N, C]
        loss_ulb = masked_mean(F.cross_entropy(logits_strong, pseudo, reduction="none"), mask)
        return LossOutput(
            total=loss_lb + cfg.lambda_u * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": mask.mean()},
            pseudo_labels=pseudo,
            mask=mask,
        )

    def state_dict(self) -> dict:
        return self.align.state_dict() if self.align is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.align is not None:
            self.align.load_state_dict(state)
