"""Mean teacher (Tarvainen & Valpola, 2017): the student's prediction on the strong view
should match the teacher's on the weak view, where the teacher is an exponential moving
average of the student's weights (the trainer's EMA copy, `trainer.ema_decay`). The
consistency is the squared error between softmax outputs, ramped up along
exp(-5 (1 - t)^2). The teacher gets no gradient; it runs in the student's mode, so it
sees dropout noise as in the paper. With `trainer.evaluate_ema: true` the teacher is
the model that is evaluated and saved. Works per text and per token (NER: the squared error
over the first subword of every word).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.base import LossOutput, TrainState, labeled_loss, logits_of, unlabeled_rows
from ssl_text.algorithms.losses import sigmoid_rampup
from ssl_text.algorithms.pi_model import check_weight_and_rampup
from ssl_text.config.keys import LB, LB_LABELS, ULB_STRONG, ULB_WEAK


class MeanTeacher:
    @dataclass
    class Config:
        name: str = "mean_teacher"
        lambda_u: float = 10.0  # maximum consistency weight
        rampup_steps: int = 100  # sigmoid ramp-up of the weight

        def validate(self, source: str) -> None:
            check_weight_and_rampup(self.lambda_u, self.rampup_steps, source)

    views = (LB, ULB_WEAK, ULB_STRONG)
    requires_ema = True
    token_level = True

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        teacher = state.ema_model
        if teacher is None:
            raise ValueError(
                "mean_teacher needs the trainer's EMA copy of the model as its teacher, but `state.ema_model` "
                "is None; set `trainer.ema_decay` (e.g. 0.999)."
            )
        loss_lb = labeled_loss(logits_of(model, batch[LB]), batch[LB_LABELS])
        teacher.train(model.training)
        with torch.no_grad():
            probs_teacher = torch.softmax(unlabeled_rows(logits_of(teacher, batch[ULB_WEAK]), batch), dim=-1)  # [N, C]
        probs_student = torch.softmax(unlabeled_rows(logits_of(model, batch[ULB_STRONG]), batch), dim=-1)
        loss_ulb = F.mse_loss(probs_student, probs_teacher)
        weight = cfg.lambda_u * sigmoid_rampup(state.step, cfg.rampup_steps)
        return LossOutput(
            total=loss_lb + weight * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": 1.0},
            pseudo_labels=probs_teacher.argmax(dim=-1),
            mask=torch.ones(len(probs_teacher), device=probs_teacher.device),
        )
