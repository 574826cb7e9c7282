"""Means of logged quantities kept on the device between log steps, so logging costs one host sync per window."""

from __future__ import annotations

import torch


class RunningMeans:
    """Sums and counts per key; `means()` reads them all to the host at once.

    A value is added with the number of items it sums (1 for a per-batch mean), so a ratio such as
    "the share of confident pseudo-labels among the PER tokens" is the pooled ratio over the window,
    and a key whose count stayed 0 (no PER token was seen) is left out of the means. Sums and counts
    stay what they were given (device tensors or Python numbers) until `means()`.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor | float] = {}
        self.counts: dict[str, torch.Tensor | float] = {}

    def add(self, key: str, total: torch.Tensor | float, count: torch.Tensor | float = 1.0) -> None:
        if isinstance(total, torch.Tensor):
            total = total.detach().float()
        self.sums[key] = self.sums.get(key, 0.0) + total
        self.counts[key] = self.counts.get(key, 0.0) + count

    def merge(self, other: RunningMeans) -> None:
        for key in other.sums:
            self.add(key, other.sums[key], other.counts[key])

    def means(self) -> dict[str, float]:
        """The mean of every key seen with a positive count (one device-to-host copy)."""
        if not self.sums:
            return {}
        tensors = [v for v in (*self.sums.values(), *self.counts.values()) if isinstance(v, torch.Tensor)]
        device = tensors[0].device if tensors else None

        def stacked(values) -> torch.Tensor:
            return torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device).reshape(()) for v in values])

        sums, counts = stacked(self.sums.values()), stacked(self.counts.values())
        values, counts = (sums / counts.clamp_min(1e-12)).tolist(), counts.tolist()
        return {k: v for k, v, c in zip(self.sums, values, counts) if c > 0}
