"""Noisy Student (Xie et al., 2020), the student's loss of one self-training round.

Self-training is a procedure over whole runs (`ssl_text.pipelines.self_training.self_train`,
`ssl-text self-train`): a teacher labels the unlabeled pool once, then a student learns
from the labels and the teacher's targets under noise. This is that student's loss:
cross-entropy on the labeled batch plus lambda_u times the soft cross-entropy of the strong
view (augmentation and dropout: the noise) against the teacher's target carried with each
unlabeled example (`batch["ulb_targets"]` [mu*B, C], from the pool's `pseudo_target`
column; one-hot for hard labels). The pool was already filtered by confidence, so every
example counts. Per token (NER) the targets are those of each word's first subword
(`[N, C]`); a word the teacher was not confident about has an all-zero target and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssl_text.algorithms.base import LossOutput, TrainState, labeled_loss, logits_of, unlabeled_rows
from ssl_text.algorithms.losses import soft_cross_entropy
from ssl_text.config import ConfigError
from ssl_text.config.keys import LB, LB_LABELS, ULB_STRONG


class NoisyStudent:
    @dataclass
    class Config:
        name: str = "noisy_student"
        lambda_u: float = 1.0

        def validate(self, source: str) -> None:
            if self.lambda_u < 0:
                raise ConfigError(f"{source}: `algorithm.lambda_u` is {self.lambda_u}; expected a weight >= 0, e.g. 1.")

    views = (LB, ULB_STRONG)
    token_level = True
    collapse_advice = (
        "The targets come from the teacher's labeling of the pool: balance them (`ssl-text self-train --balance`) "
        "or raise `--tau`."
    )

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        targets = batch.get("ulb_targets")
        if targets is None:
            raise ValueError(
                "noisy_student trains on teacher targets, but the unlabeled batch has none (no `pseudo_target` "
                "column in the unlabeled data); run it through `ssl-text self-train`, which labels the pool first."
            )
        if targets.shape[-1] != self.num_classes:
            raise ValueError(
                f"the unlabeled `pseudo_target` vectors have {targets.shape[-1]} entries but the task has "
                f"{self.num_classes} classes; label the pool with a teacher trained on the same classes."
            )
        loss_lb = labeled_loss(logits_of(model, batch[LB]), batch[LB_LABELS])
        logits_strong = unlabeled_rows(logits_of(model, batch[ULB_STRONG]), batch)  # [mu*B, C] or [N, C]
        weight = (targets.sum(dim=-1) > 0).to(logits_strong.dtype)  # all ones per text; per word, 0 where skipped
        loss_ulb = (soft_cross_entropy(logits_strong, targets.to(logits_strong.dtype)) * weight).sum() / weight.sum().clamp_min(1)
        return LossOutput(
            total=loss_lb + self.config.lambda_u * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": weight.mean()},
            pseudo_labels=targets.argmax(dim=-1),
            mask=weight,
        )
