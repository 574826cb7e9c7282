"""AdamW parameter groups: no weight decay on biases and norms, and optional layer-wise
learning-rate decay (ELECTRA, BEiT; USB fine-tunes every NLP method with 0.65): a parameter in
encoder layer i of L gets lr * layer_decay ** (L - i), the embeddings lr * layer_decay ** (L + 1),
and everything above the encoder (pooler, classifier head) the full lr."""

from __future__ import annotations

import re

import torch

_LAYER = re.compile(r"\.layers?\.(\d+)\.")


def layer_depth(name: str, num_layers: int) -> int:
    """0 for embeddings, i + 1 for encoder layer i, num_layers + 1 for what sits on top."""
    if "embeddings" in name:
        return 0
    found = _LAYER.search(name)
    return int(found.group(1)) + 1 if found else num_layers + 1


def optimizer_groups(
    model: torch.nn.Module, learning_rate: float, weight_decay: float, layer_decay: float | None = None
) -> list[dict]:
    num_layers = None
    if layer_decay is not None:
        num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if num_layers is None:
            raise ValueError(
                f"`trainer.layer_decay` is {layer_decay}, but {type(model).__name__} has no `config.num_hidden_layers` "
                "to count its layers by; unset `trainer.layer_decay` for this model."
            )
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decays = not (param.ndim < 2 or "norm" in name.lower())
        depth, scale = 0, 1.0
        if num_layers is not None:
            depth = layer_depth(name, num_layers)
            scale = layer_decay ** (num_layers + 1 - depth)
        group = groups.setdefault(
            (depth, decays),
            {"params": [], "weight_decay": weight_decay if decays else 0.0, "lr": learning_rate * scale},
        )
        group["params"].append(param)
    if num_layers is not None and all(depth == num_layers + 1 for depth, _ in groups):
        raise ValueError(
            f"`trainer.layer_decay` is {layer_decay}, but no parameter of {type(model).__name__} is named like an "
            "embedding or an encoder layer (`...embeddings...`, `....layer.<i>.`), so every one would train at the "
            "full rate; unset `trainer.layer_decay` for this model."
        )
    return list(groups.values())
