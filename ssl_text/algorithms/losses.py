"""Shared semi-supervised math as plain functions on logits and probabilities.

Shapes: `B` examples, `C` classes. Every function works on any leading shape as long as
the class dimension is last, so the same code serves sequence and token classification.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def confidence_mask(probs: torch.Tensor, tau: float) -> torch.Tensor:
    """1.0 where the top class probability is at least `tau`, else 0.0. probs: [..., C] -> [...]."""
    return (probs.max(dim=-1).values >= tau).to(probs.dtype)


def target_confidence_mask(probs: torch.Tensor, targets: torch.Tensor, tau: float) -> torch.Tensor:
    """1.0 where the probability of the chosen target is at least `tau`. probs [N, C], targets [N] -> [N].
    Equals `confidence_mask` for argmax targets; differs where a decoder (valid BIO) overrode the argmax."""
    return (probs.gather(-1, targets[:, None]).squeeze(-1) >= tau).to(probs.dtype)


def sharpen(probs: torch.Tensor, T: float) -> torch.Tensor:
    """Temperature sharpening p_i^(1/T) / sum_j p_j^(1/T) (MixMatch, UDA). probs: [..., C]."""
    powered = probs.clamp_min(1e-12).pow(1.0 / T)
    return powered / powered.sum(dim=-1, keepdim=True)


def tsa_threshold(schedule: str, step: int, max_steps: int, num_classes: int) -> float:
    """Training-signal annealing threshold eta_t (UDA, Xie et al. 2020, eq. 3).

    Labeled examples whose correct-class probability exceeds eta_t are left out of the
    supervised loss. eta_t rises from 1/C to 1 following the `linear`, `exp` or `log` schedule.
    """
    progress = min(max(step / max(max_steps, 1), 0.0), 1.0)
    if schedule == "linear":
        alpha = progress
    elif schedule == "exp":
        alpha = math.exp((progress - 1.0) * 5.0)
    elif schedule == "log":
        alpha = 1.0 - math.exp(-progress * 5.0)
    else:
        raise ValueError(f"unknown TSA schedule {schedule!r}; expected 'linear', 'exp' or 'log'.")
    return alpha * (1.0 - 1.0 / num_classes) + 1.0 / num_classes


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-sum_c targets_c log softmax(logits)_c, per example. [..., C] -> [...]."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1)


def kl_from_probs(target_probs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) per example. [..., C] -> [...]."""
    target = target_probs.clamp_min(1e-12)
    return (target * (target.log() - F.log_softmax(logits, dim=-1))).sum(dim=-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values * mask` over all entries (FixMatch divides by the full batch, not the mask)."""
    return (values * mask).sum() / max(values.numel(), 1)


def linear_rampup(step: int, rampup_steps: int) -> float:
    """0 -> 1 linearly over `rampup_steps`; 1 when `rampup_steps` is 0."""
    if rampup_steps <= 0:
        return 1.0
    return min(max(step / rampup_steps, 0.0), 1.0)


def sigmoid_rampup(step: int, rampup_steps: int) -> float:
    """exp(-5 (1 - t)^2), the ramp of Laine & Aila (2017); 1 when `rampup_steps` is 0."""
    if rampup_steps <= 0:
        return 1.0
    t = min(max(step / rampup_steps, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020), the mean over all 2N anchors. z1, z2: [N, D] -> scalar.

    Row i of `z1` and row i of `z2` are two views of one example (a positive pair); every other of
    the 2N - 2 embeddings is a negative. Embeddings are L2-normalised, similarities divided by
    `temperature`: loss_i = -log(exp(s(i, pos) / T) / sum_{k != i} exp(s(i, k) / T)).
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)  # [2N, D]
    sim = z @ z.T / temperature  # [2N, 2N]
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, positives)


def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, T: float) -> torch.Tensor:
    """Distillation loss (Hinton et al. 2015; SimCLRv2 eq. 2), per example. [..., C] -> [...].

    -T^2 sum_c p_T(c | x; T) log p_S(c | x; T), where `teacher_probs` are the teacher's
    probabilities at temperature T (softmax(teacher_logits / T)) and p_S = softmax(student_logits / T).
    The T^2 factor keeps the gradient's scale independent of T (the soft gradients shrink as 1/T^2).
    """
    return (T * T) * soft_cross_entropy(student_logits / T, teacher_probs)
