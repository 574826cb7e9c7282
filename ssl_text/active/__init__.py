"""Active learning: query strategies that choose which pool texts to label next (pure math, no models or disk)."""

from __future__ import annotations

from ssl_text.active.strategies import (
    STRATEGIES,
    PoolView,
    Selection,
    Strategy,
    badge_embeddings,
    class_balanced,
    get_strategy,
)

__all__ = ["STRATEGIES", "PoolView", "Selection", "Strategy", "badge_embeddings", "class_balanced", "get_strategy"]
