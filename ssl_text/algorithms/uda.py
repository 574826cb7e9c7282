"""UDA (Xie et al., 2020): KL consistency between the sharpened weak-view prediction and
the strong view, on confident examples only, plus training-signal annealing (TSA) that
drops labeled examples the model already predicts above a rising threshold. With
`dist_align_momentum` set, the weak view's probabilities are aligned to the labeled class prior
(ssl_text/algorithms/distribution_alignment.py) before the mask and the sharpening. With `teacher: ema` the
weak view goes through the trainer's EMA copy of the model (`trainer.ema_decay` must be set). With
`knn_agreement` a text's target also needs its kNN vote in the start model's embedding space to agree
(ssl_text/algorithms/agreement.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ssl_text.algorithms.agreement import vote_agreement
from ssl_text.algorithms.base import LossOutput, TrainState, logits_of, target_network
from ssl_text.algorithms.distribution_alignment import DistributionAlignment
from ssl_text.algorithms.losses import (
    confidence_mask,
    kl_from_probs,
    masked_mean,
    sharpen,
    tsa_threshold,
)
from ssl_text.algorithms.pseudo_label import _check_tau, check_dist_align_momentum
from ssl_text.config.keys import LB, LB_LABELS, ULB_KNN_VOTES, ULB_STRONG, ULB_WEAK


class UDA:
    @dataclass
    class Config:
        name: str = "uda"
        tau: float = 0.8  # confidence mask on the weak view
        T: float = 0.4  # sharpening temperature of the target
        lambda_u: float = 1.0
        tsa: Literal["none", "linear", "exp", "log"] = "none"
        dist_align_momentum: float | None = None  # EMA momentum of distribution alignment; None: off
        teacher: Literal["model", "ema"] = "model"  # who labels the weak view: the model or its EMA copy
        knn_agreement: bool = False  # targets only where the kNN vote of the start model's embeddings agrees (HAST)

        def validate(self, source: str) -> None:
            _check_tau(self.tau, source)
            check_dist_align_momentum(self.dist_align_momentum, source)

    views = (LB, ULB_WEAK, ULB_STRONG)

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        self.requires_ema = config.teacher == "ema"
        self.needs_knn_votes = config.knn_agreement
        momentum = config.dist_align_momentum
        self.align = DistributionAlignment(num_classes, momentum) if momentum is not None else None

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        logits_lb = logits_of(model, batch[LB])  # [B, C]
        labels = batch[LB_LABELS]
        ce = F.cross_entropy(logits_lb, labels, reduction="none")  # [B]
        if cfg.tsa == "none":
            loss_lb, tsa_keep = ce.mean(), torch.ones_like(ce)
        else:
            eta = tsa_threshold(cfg.tsa, state.step, state.max_steps, self.num_classes)
            correct_prob = torch.softmax(logits_lb.detach(), dim=-1).gather(1, labels[:, None])[:, 0]
            tsa_keep = (correct_prob <= eta).to(ce.dtype)
            loss_lb = (ce * tsa_keep).sum() / tsa_keep.sum().clamp_min(1.0)
        with torch.no_grad():
            teacher = target_network(model, state, cfg.teacher, "uda")
            probs_weak = torch.softmax(logits_of(teacher, batch[ULB_WEAK]), dim=-1)  # [mu*B, C]
            if self.align is not None:
                self.align.update(labels, probs_weak, state.gather)
                probs_weak = self.align(probs_weak)
        mask = confidence_mask(probs_weak, cfg.tau)
        if cfg.knn_agreement:
            mask = mask * vote_agreement(probs_weak.argmax(dim=-1), batch[ULB_KNN_VOTES])
        targets = sharpen(probs_weak, cfg.T)
        logits_strong = logits_of(model, batch[ULB_STRONG])
        loss_ulb = masked_mean(kl_from_probs(targets, logits_strong), mask)
        return LossOutput(
            total=loss_lb + cfg.lambda_u * loss_ulb,
            parts={
                "loss_lb": loss_lb.detach(),
                "loss_ulb": loss_ulb.detach(),
                "mask_rate": mask.mean(),
                "tsa_keep_rate": tsa_keep.mean(),
            },
            pseudo_labels=probs_weak.argmax(dim=-1),
            mask=mask,
        )

    def state_dict(self) -> dict:
        return self.align.state_dict() if self.align is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.align is not None:
            self.align.load_state_dict(state)
