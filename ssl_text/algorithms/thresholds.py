"""Adaptive confidence thresholds, as small stateful estimators used by composition.

`FlexMatchThresholds` (Zhang et al., 2021) and `FreeMatchThresholds` (Wang et al., 2023)
hold the running statistics their algorithm checkpoints, and turn the current predictions
of a batch into a mask. They see already-gathered tensors: under several processes the
algorithm gathers first, so every process updates the same statistics.
"""

from __future__ import annotations

import torch

UNUSED = -1  # FlexMatch: an unlabeled example never predicted above the threshold


def last_occurrence(index: torch.Tensor) -> torch.Tensor:
    """Positions of the last occurrence of every distinct value of `index` [N] (a later
    prediction of the same example in one batch replaces an earlier one)."""
    unique, inverse = torch.unique(index, return_inverse=True)
    positions = torch.arange(len(index), device=index.device)
    last = torch.full((len(unique),), -1, dtype=torch.long, device=index.device)
    return last.scatter_reduce(0, inverse, positions, reduce="amax")


class FlexMatchThresholds:
    """Curriculum pseudo-labeling: class-wise thresholds from the learning status.

    Each unlabeled example (by its stable index) remembers the class it was last predicted
    as with confidence above `tau`, or `UNUSED`. The learning effect of class c is
    sigma_c = #examples remembered as c, normalised to beta_c = sigma_c / max(max_c sigma_c,
    #unused) with the threshold warm-up (or / max_c sigma_c without), and the threshold of
    class c is tau * M(beta_c) with the convex mapping M(x) = x / (2 - x).

    The number of unlabeled examples is the largest index seen so far + 1: the table grows on
    demand. Batches are drawn from a random permutation, so it reaches the pool size within
    the first few batches.
    """

    def __init__(self, num_classes: int, tau: float, warmup: bool = True):
        self.num_classes = num_classes
        self.tau = tau
        self.warmup = warmup
        self.selected = torch.full((0,), UNUSED, dtype=torch.long)  # [N] class id or UNUSED

    def learning_effect(self) -> torch.Tensor:
        """beta_c [C]."""
        used = self.selected[self.selected != UNUSED]
        sigma = torch.bincount(used, minlength=self.num_classes).float()
        denominator = sigma.max()
        if self.warmup:
            denominator = torch.maximum(denominator, (self.selected == UNUSED).sum().float())
        return sigma / denominator if denominator > 0 else torch.zeros_like(sigma)

    def thresholds(self) -> torch.Tensor:
        """tau * beta_c / (2 - beta_c), per class [C]."""
        beta = self.learning_effect()
        return self.tau * beta / (2.0 - beta)

    def mask(self, probs: torch.Tensor) -> torch.Tensor:
        """1.0 where the top probability reaches its class's threshold. probs [B, C] -> [B]."""
        confidence, predicted = probs.max(dim=-1)
        return (confidence >= self.thresholds().to(probs.device)[predicted]).to(probs.dtype)

    @torch.no_grad()
    def update(self, index: torch.Tensor, probs: torch.Tensor) -> None:
        """Record the predictions `probs` [N, C] of the examples `index` [N]."""
        index, probs = index.cpu(), probs.detach().float().cpu()
        if not torch.isfinite(probs).all():  # a skipped non-finite step leaves the statistics as they were
            return
        size = int(index.max()) + 1
        if size > len(self.selected):
            grown = torch.full((size,), UNUSED, dtype=torch.long)
            grown[: len(self.selected)] = self.selected
            self.selected = grown
        keep = last_occurrence(index)
        confidence, predicted = probs[keep].max(dim=-1)
        above = confidence > self.tau
        self.selected[index[keep][above]] = predicted[above]

    def state_dict(self) -> dict:
        return {"selected": self.selected.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.selected = state["selected"].cpu().long()


class FreeMatchThresholds:
    """Self-adaptive thresholds: a global one from the model's confidence, scaled per class.

    tau_t = EMA of the mean top probability (init 1/C), p_t(c) = EMA of the mean probability of
    class c (init 1/C), and the threshold of class c is tau_t * p_t(c) / max_c' p_t(c')
    (MaxNorm). `label_hist` = EMA of the histogram of predicted classes (init 1/C) feeds the
    self-adaptive fairness term. All EMAs use `momentum` (lambda in the paper, 0.999).
    """

    def __init__(self, num_classes: int, momentum: float = 0.999):
        self.num_classes = num_classes
        self.momentum = momentum
        self.global_threshold = torch.tensor(1.0 / num_classes)
        self.class_probs = torch.full((num_classes,), 1.0 / num_classes)
        self.label_hist = torch.full((num_classes,), 1.0 / num_classes)

    def thresholds(self) -> torch.Tensor:
        """tau_t * MaxNorm(p_t), per class [C]."""
        return self.global_threshold * self.class_probs / self.class_probs.max()

    def mask(self, probs: torch.Tensor) -> torch.Tensor:
        """1.0 where the top probability reaches its class's threshold. probs [B, C] -> [B]."""
        confidence, predicted = probs.max(dim=-1)
        return (confidence >= self.thresholds().to(probs.device)[predicted]).to(probs.dtype)

    @torch.no_grad()
    def update(self, probs: torch.Tensor) -> None:
        """One EMA step on the predictions `probs` [N, C] of a (gathered) unlabeled batch."""
        probs = probs.detach().float().cpu()
        if not torch.isfinite(probs).all():  # a skipped non-finite step leaves the statistics as they were
            return
        m = self.momentum
        confidence, predicted = probs.max(dim=-1)
        hist = torch.bincount(predicted, minlength=self.num_classes).float()
        self.global_threshold = m * self.global_threshold + (1 - m) * confidence.mean()
        self.class_probs = m * self.class_probs + (1 - m) * probs.mean(dim=0)
        self.label_hist = m * self.label_hist + (1 - m) * hist / hist.sum()

    def state_dict(self) -> dict:
        return {
            "global_threshold": self.global_threshold.clone(),
            "class_probs": self.class_probs.clone(),
            "label_hist": self.label_hist.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.global_threshold = state["global_threshold"].cpu().float()
        self.class_probs = state["class_probs"].cpu().float()
        self.label_hist = state["label_hist"].cpu().float()
