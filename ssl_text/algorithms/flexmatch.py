"""FlexMatch (Zhang et al., 2021): FixMatch with curriculum pseudo-labeling. Each class gets
its own threshold tau * M(beta_c), where beta_c is the class's normalised learning status
(how many unlabeled examples are currently predicted as c with confidence above tau,
keyed by `ulb_index`, with the paper's threshold warm-up counting the unused examples) and
M(x) = x / (2 - x). Hard to learn classes get lower thresholds, so more of their
pseudo-labels are used. See `ssl_text.algorithms.thresholds.FlexMatchThresholds`.

The mask of a batch uses the learning status before the batch; then the batch's weak-view
predictions, gathered from every process, update it. The per-example table is in
`state_dict()`, so a resumed run continues with the same thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ssl_text.algorithms.base import LossOutput, TrainState, logits_of
from ssl_text.algorithms.losses import masked_mean
from ssl_text.algorithms.pseudo_label import _check_tau
from ssl_text.algorithms.thresholds import FlexMatchThresholds
from ssl_text.config.keys import LB, LB_LABELS, ULB_INDEX, ULB_STRONG, ULB_WEAK


class FlexMatch:
    @dataclass
    class Config:
        name: str = "flexmatch"
        tau: float = 0.95  # the threshold of a fully learned class
        lambda_u: float = 1.0
        warmup: bool = True  # count never-selected examples in the normaliser (threshold warm-up)

        def validate(self, source: str) -> None:
            _check_tau(self.tau, source)

    views = (LB, ULB_WEAK, ULB_STRONG)
    per_example_state = True  # the learning-status table, one entry per unlabeled example: no streamed pool

    def __init__(self, config: Config, num_classes: int):
        self.config = config
        self.num_classes = num_classes
        self.thresholds = FlexMatchThresholds(num_classes, config.tau, config.warmup)

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        cfg = self.config
        loss_lb = F.cross_entropy(logits_of(model, batch[LB]), batch[LB_LABELS])
        with torch.no_grad():
            probs_weak = torch.softmax(logits_of(model, batch[ULB_WEAK]), dim=-1)  # [mu*B, C]
        mask = self.thresholds.mask(probs_weak)
        gather = state.gather if state.gather is not None else (lambda t: t)
        self.thresholds.update(gather(batch[ULB_INDEX]), gather(probs_weak))
        pseudo = probs_weak.argmax(dim=-1)
        logits_strong = logits_of(model, batch[ULB_STRONG])
        loss_ulb = masked_mean(F.cross_entropy(logits_strong, pseudo, reduction="none"), mask)
        return LossOutput(
            total=loss_lb + cfg.lambda_u * loss_ulb,
            parts={"loss_lb": loss_lb.detach(), "loss_ulb": loss_ulb.detach(), "mask_rate": mask.mean()},
            pseudo_labels=pseudo,
            mask=mask,
        )

    def state_dict(self) -> dict:
        return self.thresholds.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.thresholds.load_state_dict(state)
