"""Distribution alignment (Berthelot et al., ReMixMatch, 2020): rescale each unlabeled prediction
by the ratio of the labeled class prior to the model's running mean prediction on unlabeled data,
then renormalise. A model that under-predicts a class on the pool (AG News: Sci/Tech after 40
labels) has that class's probabilities raised before thresholds and argmaxes see them, so the
pseudo-labels follow the class balance of the labels rather than the model's early bias.

Both priors are EMAs (init uniform) updated from every (gathered) batch: the labeled prior from
the labeled targets (-100 ignored, so token-level tasks use their tag frequencies), the model's
from the mean weak-view probabilities.
"""

from __future__ import annotations

import torch


def align_distribution(probs: torch.Tensor, target: torch.Tensor, running: torch.Tensor) -> torch.Tensor:
    """probs [..., C] * target [C] / running [C], renormalised over the last dimension."""
    scaled = probs * (target / running.clamp_min(1e-12)).to(probs)
    return scaled / scaled.sum(dim=-1, keepdim=True)


class DistributionAlignment:
    def __init__(self, num_classes: int, momentum: float):
        self.num_classes = num_classes
        self.momentum = momentum
        self.lb_prior = torch.full((num_classes,), 1.0 / num_classes)
        self.ulb_prior = torch.full((num_classes,), 1.0 / num_classes)

    @torch.no_grad()
    def update(self, lb_labels: torch.Tensor, ulb_probs: torch.Tensor, gather=None) -> None:
        """One EMA step from labeled targets (any shape, -100 ignored) and unlabeled rows [N, C].

        `gather` (identity by default) collects the per-process sums, which have the same shape on
        every process even when token counts differ.
        """
        labels = lb_labels.detach().flatten()
        labels = labels[labels != -100]
        probs = ulb_probs.detach().float()
        hist = torch.bincount(labels, minlength=self.num_classes).float()  # [C]
        count = torch.tensor([float(len(probs))], device=probs.device)
        stats = torch.cat([hist.to(probs.device), probs.sum(dim=0), count])[None]  # [1, 2C + 1]
        if gather is not None:
            stats = gather(stats)
        stats = stats.sum(dim=0)  # stays on the device: no host sync per step
        hist, prob_sum, count = stats[: self.num_classes], stats[self.num_classes : -1], stats[-1]
        # Nothing seen, or a skipped non-finite step: the priors stay as they were.
        valid = (hist.sum() > 0) & (count > 0) & torch.isfinite(prob_sum).all()
        m = self.momentum
        lb_prior, ulb_prior = self.lb_prior.to(stats.device), self.ulb_prior.to(stats.device)
        self.lb_prior = torch.where(valid, m * lb_prior + (1 - m) * hist / hist.sum().clamp_min(1.0), lb_prior)
        self.ulb_prior = torch.where(valid, m * ulb_prior + (1 - m) * prob_sum / count.clamp_min(1.0), ulb_prior)

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        return align_distribution(probs, self.lb_prior.to(probs.device), self.ulb_prior.to(probs.device))

    def state_dict(self) -> dict:
        return {"lb_prior": self.lb_prior.clone(), "ulb_prior": self.ulb_prior.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.lb_prior = state["lb_prior"].cpu().float()
        self.ulb_prior = state["ulb_prior"].cpu().float()
