"""Temporal ensembling (Laine & Aila, 2017): the target of each unlabeled example is an
exponential moving average of its own past predictions.

Every time example i is in a batch, its prediction z_i (softmax of the strong view: one
stochastic pass, augmentation and dropout, as the paper's single augmented pass) is
compared, by squared error, with the target Z_i / (1 - alpha^t_i), where Z_i is the EMA
of its earlier predictions and t_i the number of times THAT example has been updated (the
startup bias correction, per example). Then Z_i <- alpha Z_i + (1 - alpha) z_i and
t_i <- t_i + 1. Examples never seen before have no target yet and are masked out. The
weight is ramped up along exp(-5 (1 - t)^2).

Z and t are indexed by `ulb_index`, grow on demand to the largest index seen + 1, and live
in `state_dict()`, so a resumed run continues with the same ensemble. Under several
processes the (index, prediction) pairs of all processes are gathered and every process
applies the same update to its full copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.base import LossOutput, TrainState, logits_of
from ssl_text.algorithms.losses import masked_mean, sigmoid_rampup
from ssl_text.algorithms.pi_model import check_weight_and_rampup
from ssl_text.algorithms.thresholds import last_occurrence
from ssl_text.config import ConfigError
from ssl_text.config.keys import LB, LB_LABELS, ULB_INDEX, ULB_STRONG


class TemporalEnsembling:
    @dataclass
    class Config:
        name: str = "temporal_ensembling"
        alpha: float = 0.6  # ensemble momentum
        lambda_u: float = 10.0  # maximum consistency weight
        rampup_steps: int = 100  # sigmoid ramp-up of the weight

        def validate(self, source: str) -> None:
            if not 0.0 < self.alpha < 1.0:
                raise ConfigError(
                    f"{source}: `algorithm.alpha` is {self.alpha}; expected an ensemble momentum in (0, 1), e.g. 0.6."
                )
            check_weight_and_rampup(self.lambda_u, self.rampup_steps, source)

    views = (LB, ULB_STRONG)
    per_example_state = True  # Z and t, one row per unlabeled example: no streamed pool (ssl_text/training/streaming.py)

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        self.ensemble = torch.zeros(0, num_classes)  # Z [N, C]
        self.updates = torch.zeros(0, dtype=torch.long)  # t [N]

    def targets(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bias-corrected targets Z_i / (1 - alpha^t_i) [B, C] and whether each exists [B]."""
        index = index.cpu()
        known = index < len(self.updates)
        t = torch.zeros(len(index), dtype=torch.long)
        z = torch.zeros(len(index), self.num_classes)
        t[known] = self.updates[index[known]]
        z[known] = self.ensemble[index[known]]
        seen = t > 0
        correction = 1.0 - self.config.alpha ** t.clamp_min(1).float()
        return z / correction[:, None], seen.float()

    @torch.no_grad()
    def update(self, index: torch.Tensor, probs: torch.Tensor) -> None:
        """Z_i <- alpha Z_i + (1 - alpha) z_i and t_i += 1 for the examples `index` [N]."""
        index, probs = index.cpu(), probs.detach().float().cpu()
        if not torch.isfinite(probs).all():  # a skipped non-finite step leaves the statistics as they were
            return
        size = int(index.max()) + 1
        if size > len(self.updates):
            grow = size - len(self.updates)
            self.ensemble = torch.cat([self.ensemble, torch.zeros(grow, self.num_classes)])
            self.updates = torch.cat([self.updates, torch.zeros(grow, dtype=torch.long)])
        keep = last_occurrence(index)
        rows = index[keep]
        alpha = self.config.alpha
        self.ensemble[rows] = alpha * self.ensemble[rows] + (1.0 - alpha) * probs[keep]
        self.updates[rows] += 1

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        loss_lb = F.cross_entropy(logits_of(model, batch[LB]), batch[LB_LABELS])
        probs = torch.softmax(logits_of(model, batch[ULB_STRONG]), dim=-1)  # [mu*B, C]
        index = batch[ULB_INDEX]
        targets, seen = self.targets(index)
        targets, seen = targets.to(probs), seen.to(probs)
        loss_ulb = masked_mean(((probs - targets) ** 2).mean(dim=-1), seen)
        gather = state.gather if state.gather is not None else (lambda t: t)
        self.update(gather(index), gather(probs.detach()))
        weight = cfg.lambda_u * sigmoid_rampup(state.step, cfg.rampup_steps)
        predicted = probs.detach().argmax(dim=-1)
        return LossOutput(
            total=loss_lb + weight * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": seen.mean()},
            pseudo_labels=torch.where(seen.bool(), targets.argmax(dim=-1), predicted),
            mask=seen,
        )

    def state_dict(self) -> dict:
        return {"ensemble": self.ensemble.clone(), "updates": self.updates.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.ensemble = state["ensemble"].cpu().float()
        self.updates = state["updates"].cpu().long()
