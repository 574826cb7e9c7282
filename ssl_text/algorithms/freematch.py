"""FreeMatch (Wang et al., 2023): self-adaptive thresholds and a self-adaptive fairness term.

The threshold of class c is tau_t * MaxNorm(p_t)(c): tau_t is an EMA of the mean top
confidence of the weak view (init 1/C), p_t an EMA of the mean class probabilities (init
1/C), both with momentum `momentum` (lambda in the paper) and updated with every batch
(gathered from every process) before its mask is taken. Masked strong views are trained
towards the weak view's argmax, as in FixMatch. The fairness term (weight `lambda_f`)
pushes the histogram-normalised mean prediction of the masked strong views towards the
histogram-normalised p_t, as the paper and USB do. The EMAs are in `state_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.base import LossOutput, TrainState, logits_of
from ssl_text.algorithms.losses import masked_mean
from ssl_text.algorithms.thresholds import FreeMatchThresholds
from ssl_text.config import ConfigError
from ssl_text.config.keys import LB, LB_LABELS, ULB_STRONG, ULB_WEAK


class FreeMatch:
    @dataclass
    class Config:
        name: str = "freematch"
        momentum: float = 0.999  # EMA momentum of the thresholds (lambda in the paper)
        lambda_u: float = 1.0
        lambda_f: float = 0.01  # weight of the self-adaptive fairness term

        def validate(self, source: str) -> None:
            if not 0.0 < self.momentum < 1.0:
                raise ConfigError(
                    f"{source}: `algorithm.momentum` is {self.momentum}; expected an EMA momentum in (0, 1), "
                    "e.g. 0.999."
                )
            for key in ("lambda_u", "lambda_f"):
                if getattr(self, key) < 0:
                    raise ConfigError(f"{source}: `algorithm.{key}` is {getattr(self, key)}; expected a weight >= 0.")

    views = (LB, ULB_WEAK, ULB_STRONG)

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        self.thresholds = FreeMatchThresholds(num_classes, config.momentum)

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        loss_lb = F.cross_entropy(logits_of(model, batch[LB]), batch[LB_LABELS])
        with torch.no_grad():
            probs_weak = torch.softmax(logits_of(model, batch[ULB_WEAK]), dim=-1)  # [mu*B, C]
        gather = state.gather if state.gather is not None else (lambda t: t)
        self.thresholds.update(gather(probs_weak))
        mask = self.thresholds.mask(probs_weak)
        pseudo = probs_weak.argmax(dim=-1)
        logits_strong = logits_of(model, batch[ULB_STRONG])
        loss_ulb = masked_mean(F.cross_entropy(logits_strong, pseudo, reduction="none"), mask)
        loss_fair = fairness_loss(logits_strong, mask, self.thresholds.class_probs, self.thresholds.label_hist)
        return LossOutput(
            total=loss_lb + cfg.lambda_u * loss_ulb + cfg.lambda_f * loss_fair,
            parts={
                "loss_lb": loss_lb.detach(),
                "loss_ulb": loss_ulb.detach(),
                "loss_fairness": loss_fair.detach(),
                "mask_rate": mask.mean(),
                "global_threshold": float(self.thresholds.global_threshold),
            },
            pseudo_labels=pseudo,
            mask=mask,
        )

    def state_dict(self) -> dict:
        return self.thresholds.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.thresholds.load_state_dict(state)


def fairness_loss(
    logits_strong: torch.Tensor, mask: torch.Tensor, class_probs: torch.Tensor, label_hist: torch.Tensor
) -> torch.Tensor:
    """Self-adaptive fairness L_f = -H(SumNorm(p_t / h_t), SumNorm(pbar / hbar)) (FreeMatch eq. 9).

    pbar and hbar are the mean probability and the predicted-class histogram of the masked
    strong views, p_t and h_t the running class probabilities and label histogram; H(a, b) =
    -sum a log b. Zero when no example is masked in.
    """
    selected = logits_strong[mask.bool()]  # [M, C]
    if len(selected) == 0:
        return logits_strong.sum() * 0.0
    probs = torch.softmax(selected, dim=-1)
    hist = torch.bincount(probs.argmax(dim=-1), minlength=probs.shape[-1]).to(probs)
    hist = hist / hist.sum()
    running = class_probs.to(probs) * torch.nan_to_num(1.0 / label_hist.to(probs), posinf=0.0)
    running = running / running.sum()
    batch_mean = probs.mean(dim=0) * torch.nan_to_num(1.0 / hist, posinf=0.0).detach()
    batch_mean = batch_mean / batch_mean.sum()
    return (running * torch.log(batch_mean + 1e-12)).sum()
