"""Means of logged quantities kept on the device between log steps, so logging costs one host sync per window."""

from __future__ import annotations

import torch


class RunningMeans:
    """Sums and counts per key; `means()` reads them all to the host at once.

    A value is added with the number of items it sums (1 for a per-batch mean), so a ratio such as
    "the share of confident pseudo-labels among the PER tokens" is the pooled ratio over the window,
    and a key whose count stayed 0 (no PER token was seen) is left out of the means.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}

    def add(self, key: str, total: torch.Tensor | float, count: torch.Tensor | float = 1.0) -> None:
        device = total.device if isinstance(total, torch.Tensor) else None
        total = torch.as_tensor(total, dtype=torch.float32, device=device).detach().float()
        count = torch.as_tensor(count, dtype=torch.float32, device=total.device).detach().float()
        self.sums[key] = self.sums[key] + total if key in self.sums else total
        self.counts[key] = self.counts[key] + count if key in self.counts else count

    def merge(self, other: RunningMeans) -> None:
        for key in other.sums:
            self.add(key, other.sums[key], other.counts[key])

    def means(self) -> dict[str, float]:
        """The mean of every key seen with a positive count (one device-to-host copy)."""
        if not self.sums:
            return {}
        keys = list(self.sums)
        device = self.sums[keys[0]].device
        sums = torch.stack([self.sums[k].to(device).reshape(()) for k in keys])
        counts = torch.stack([self.counts[k].to(device).reshape(()) for k in keys])
        values, counts = (sums / counts.clamp_min(1e-12)).tolist(), counts.tolist()
        return {k: v for k, v, c in zip(keys, values, counts) if c > 0}

    def __bool__(self) -> bool:
        return bool(self.sums)
