"""Knowledge distillation (Hinton et al., 2015), the student's loss of SimCLRv2's third stage (Chen et al., 2020).

A teacher labels the unlabeled data once (`ssl-text distill`, `ssl_text/pipelines/distill.py`): its
probabilities at temperature T travel with each unlabeled example (`batch["ulb_targets"]` [mu*B, C],
from the pool's `pseudo_target` column). The student minimises

    (1 - alpha) * CE(labeled) + alpha * T^2 * mean_x [ -sum_y p_T(y | x; T) log p_S(y | x; T) ]

(`ssl_text.algorithms.losses.kd_loss`; SimCLRv2 eq. 2 plus its optional labeled term). alpha = 1 (the
default) is pure distillation, as in SimCLRv2; the labeled forward pass is then skipped. The
student sees the `weak` view of each unlabeled text by default (`view: strong` adds the
strong view's noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ssl_text.algorithms.base import LossOutput, TrainState, labeled_loss, logits_of, unlabeled_rows
from ssl_text.algorithms.losses import kd_loss
from ssl_text.config import ConfigError
from ssl_text.config.keys import LB, LB_LABELS, ULB_STRONG, ULB_WEAK


class Distill:
    @dataclass
    class Config:
        name: str = "distill"
        temperature: float = 1.0  # must be the temperature the teacher's targets were made at
        alpha: float = 1.0  # weight of the distillation loss; the labeled cross-entropy gets 1 - alpha
        view: Literal["weak", "strong"] = "weak"  # the view of the unlabeled text the student sees

        def validate(self, source: str) -> None:
            if self.temperature <= 0:
                raise ConfigError(f"{source}: `algorithm.temperature` is {self.temperature}; expected a positive value, e.g. 1.")
            if not 0.0 <= self.alpha <= 1.0:
                raise ConfigError(f"{source}: `algorithm.alpha` is {self.alpha}; expected a weight in [0, 1].")

    views = (LB, ULB_WEAK)
    token_level = True  # NER: per-word soft targets (the first subword of each word)
    collapse_advice = (
        "The targets are the teacher's cached predictions, so this is the teacher's own class balance on the "
        "pool; lower `algorithm.alpha` to let the labels anchor the student, or distill from a better teacher."
    )

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        self.view = ULB_STRONG if config.view == "strong" else ULB_WEAK
        self.views = (LB, self.view)

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        targets = batch.get("ulb_targets")
        if targets is None:
            raise ValueError(
                "distill trains on teacher targets, but the unlabeled batch has none (no `pseudo_target` column "
                "in the unlabeled data); run it through `ssl-text distill`, which labels the data with the teacher first."
            )
        if targets.shape[-1] != self.num_classes:
            raise ValueError(
                f"the unlabeled `pseudo_target` vectors have {targets.shape[-1]} entries but the task has "
                f"{self.num_classes} classes; distill from a teacher trained on the same classes."
            )
        logits_ulb = unlabeled_rows(logits_of(model, batch[self.view]), batch)  # [mu*B, C], or [N, C] per word
        weight = (targets.sum(dim=-1) > 0).to(logits_ulb.dtype)  # per word: 0 for a word the teacher never saw
        kd = kd_loss(logits_ulb, targets.to(logits_ulb.dtype), cfg.temperature)
        loss_kd = (kd * weight).sum() / weight.sum().clamp_min(1)
        parts = {"loss_kd": loss_kd.detach(), "mask_rate": weight.mean()}
        total = cfg.alpha * loss_kd
        if cfg.alpha < 1.0:
            loss_lb = labeled_loss(logits_of(model, batch[LB]), batch[LB_LABELS])
            total = total + (1.0 - cfg.alpha) * loss_lb
            parts["loss_lb"] = loss_lb.detach()
        with torch.no_grad():
            parts["teacher_agreement"] = (logits_ulb.argmax(-1) == targets.argmax(-1)).float().mean()
        return LossOutput(
            total=total,
            parts=parts,
            pseudo_labels=targets.argmax(dim=-1),
            mask=weight,
        )
