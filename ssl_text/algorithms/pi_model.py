"""Pi-model (Laine & Aila, 2017): two stochastic passes over each unlabeled example should
agree. The squared error between the softmax outputs of the weak and the strong view (each
with its own dropout noise) is added with a weight ramped up along exp(-5 (1 - t)^2).

For the paper's single-augmentation variant, make the two views the same
(`views.strong` equal to `views.weak`): the passes then differ by dropout only. As in the
paper, the gradient flows through both passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.base import LossOutput, TrainState, logits_of
from ssl_text.algorithms.losses import sigmoid_rampup
from ssl_text.config import ConfigError
from ssl_text.config.keys import LB, LB_LABELS, ULB_STRONG, ULB_WEAK


class PiModel:
    @dataclass
    class Config:
        name: str = "pi_model"
        lambda_u: float = 10.0  # maximum consistency weight
        rampup_steps: int = 100  # sigmoid ramp-up of the weight

        def validate(self, source: str) -> None:
            check_weight_and_rampup(self.lambda_u, self.rampup_steps, source)

    views = (LB, ULB_WEAK, ULB_STRONG)

    @property
    def collapse_advice(self) -> str:
        """What the trainer's collapse warning suggests: pi_model has no tau; every unlabeled text is a target."""
        cfg = self.config
        return (
            f"pi_model makes every unlabeled text agree with itself at weight lambda_u={cfg.lambda_u}, and one class "
            f"for everything agrees perfectly: lower `algorithm.lambda_u` (e.g. 1) or lengthen `algorithm.rampup_steps` "
            f"(now {cfg.rampup_steps}), or use `ssl-text recipe`, which keeps its pseudo-labels in the labeled class "
            "shares."
        )

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        loss_lb = F.cross_entropy(logits_of(model, batch[LB]), batch[LB_LABELS])
        probs_weak = torch.softmax(logits_of(model, batch[ULB_WEAK]), dim=-1)  # [mu*B, C]
        probs_strong = torch.softmax(logits_of(model, batch[ULB_STRONG]), dim=-1)
        loss_ulb = F.mse_loss(probs_strong, probs_weak)
        weight = cfg.lambda_u * sigmoid_rampup(state.step, cfg.rampup_steps)
        mask = torch.ones(len(probs_weak), device=probs_weak.device)
        return LossOutput(
            total=loss_lb + weight * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": 1.0},
            pseudo_labels=probs_weak.detach().argmax(dim=-1),
            mask=mask,
        )


def check_weight_and_rampup(lambda_u: float, rampup_steps: int, source: str) -> None:
    if lambda_u < 0:
        raise ConfigError(f"{source}: `algorithm.lambda_u` is {lambda_u}; expected a weight >= 0, e.g. 10.")
    if rampup_steps < 0:
        raise ConfigError(
            f"{source}: `algorithm.rampup_steps` is {rampup_steps}; expected a number of steps >= 0 (0: no ramp-up)."
        )
