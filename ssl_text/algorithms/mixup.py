"""Mixup for any model: input-level for float inputs, hidden-state level for Transformers.

`mix(a, b, lam)` interpolates two tensors, `mixup_lambda(alpha, generator)` draws the
coefficient from Beta(alpha, alpha) with a seeded generator (never the global RNG, so a
resumed run draws the same coefficients).

`forward_mixed(model, inputs_a, inputs_b, lam, layer)` returns the logits of the model on
the mixture of two input batches, mixed at `layer`:

* A Hugging Face encoder (its `base_model` has `.embeddings` and `.encoder.layer`, as BERT,
  RoBERTa, MiniLM and ELECTRA do) is mixed on hidden states, as in TMix/MixText (Chen et
  al., 2020): both batches run through the embeddings and layers `[0, layer)` with their own
  attention masks, their hidden states are interpolated, and the remaining layers run on the
  mixture under the OR of the two masks (padded to the same length); the model's own pooler
  and classification head follow. `layer=0` mixes the embedding output, `layer=L` (the
  number of layers) the last hidden states. The mixing is done by temporary hooks inside one
  ordinary `model(...)` call, so the call goes through a DistributedDataParallel wrapper
  (gradients stay synchronised across processes) and any head of the model works.
* Any other model (e.g. the two-moons MLP) is mixed on its inputs: `layer` must be 0, and
  every floating-point input tensor is interpolated (input-level mixup).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ssl_text.config.keys import IDS, MASK

Inputs = dict[str, torch.Tensor]


def mixup_lambda(alpha: float, generator: torch.Generator) -> float:
    """lambda ~ Beta(alpha, alpha), drawn from `generator` (a seeded torch.Generator)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mix(a: torch.Tensor, b: torch.Tensor, lam: float) -> torch.Tensor:
    """lam * a + (1 - lam) * b."""
    return lam * a + (1.0 - lam) * b


def pad_inputs(inputs: Inputs, length: int, pad_token_id: int) -> Inputs:
    """Right-pad every [B, L] tensor to `length` (ids with the pad token, everything else with 0)."""
    out = {}
    for key, value in inputs.items():
        if value.ndim >= 2 and value.shape[1] < length and not value.is_floating_point():
            fill = pad_token_id if key == IDS else 0
            value = F.pad(value, (0, length - value.shape[1]), value=fill)
        out[key] = value
    return out


def concat_inputs(batches: list[Inputs], pad_token_id: int = 0) -> Inputs:
    """Concatenate input dicts along the batch, padding token tensors to the longest one."""
    token_tensors = [v for b in batches for v in b.values() if v.ndim >= 2 and not v.is_floating_point()]
    length = max((v.shape[1] for v in token_tensors), default=0)
    padded = [pad_inputs(b, length, pad_token_id) for b in batches]
    return {key: torch.cat([b[key] for b in padded]) for key in padded[0]}


def take(inputs: Inputs, index: torch.Tensor) -> Inputs:
    """The rows `index` of every input tensor."""
    return {key: value[index] for key, value in inputs.items()}


def forward_mixed(model: torch.nn.Module, inputs_a: Inputs, inputs_b: Inputs, lam: float, layer: int) -> torch.Tensor:
    """Logits [B, C] of `model` on `lam * a + (1 - lam) * b`, mixed at `layer` (see the module docstring)."""
    net = getattr(model, "module", model)  # under DistributedDataParallel: the wrapped model
    encoder = _encoder_of(net)
    if encoder is None:
        if layer != 0:
            raise ValueError(
                f"mixup at layer {layer} needs a Transformer encoder (`base_model.embeddings` and "
                f"`base_model.encoder.layer`); {type(net).__name__} has neither, so only input-level "
                "mixup works for it: set `algorithm.mix_layer=0`."
            )
        return _forward_input_mix(model, inputs_a, inputs_b, lam)
    return _forward_hidden_mix(model, net, encoder, inputs_a, inputs_b, lam, layer)


def _encoder_of(net: torch.nn.Module):
    base = getattr(net, "base_model", None)
    encoder = getattr(base, "encoder", None)
    if base is None or not hasattr(base, "embeddings") or not hasattr(encoder, "layer"):
        return None
    return base


def _forward_input_mix(model: torch.nn.Module, inputs_a: Inputs, inputs_b: Inputs, lam: float) -> torch.Tensor:
    mixed = {}
    for key, a in inputs_a.items():
        b = inputs_b[key]
        if a.is_floating_point():
            mixed[key] = mix(a, b, lam)
        elif torch.equal(a, b):
            mixed[key] = a
        else:
            raise ValueError(
                f"input-level mixup interpolates float inputs, but `{key}` holds {a.dtype} values that differ "
                "between the two batches; token ids need hidden-state mixup (a Transformer encoder)."
            )
    return model(**mixed).logits


def _forward_hidden_mix(model, net, base, inputs_a: Inputs, inputs_b: Inputs, lam: float, layer: int) -> torch.Tensor:
    from transformers.masking_utils import create_bidirectional_mask

    layers = base.encoder.layer
    if not 0 <= layer <= len(layers):
        raise ValueError(
            f"mixup layer {layer} is outside the encoder, which has {len(layers)} layers; "
            f"set `algorithm.mix_layer` between 0 (embeddings) and {len(layers)} (last hidden states)."
        )
    pad_id = getattr(net.config, "pad_token_id", None) or 0
    n = next(iter(inputs_a.values())).shape[0]
    both = concat_inputs([inputs_a, inputs_b], pad_id)  # [2B, L]: each half keeps its own mask below `layer`
    joint_mask = (both[MASK][:n].bool() | both[MASK][n:].bool()).to(both[MASK].dtype)  # [B, L]
    mixed: dict = {}

    def mix_hidden(hidden: torch.Tensor) -> torch.Tensor:  # [2B, L, H] -> [B, L, H]
        out = mix(hidden[:n], hidden[n:], lam)
        mixed["mask"] = create_bidirectional_mask(config=base.config, inputs_embeds=out, attention_mask=joint_mask)
        return out

    def before_layer(module, args, kwargs):  # layers [layer, L): mix once, then attend under the joint mask
        hidden = args[0] if "mask" in mixed else mix_hidden(args[0])
        if "attention_mask" in kwargs:
            kwargs["attention_mask"] = mixed["mask"]
            return (hidden, *args[1:]), kwargs
        return (hidden, mixed["mask"], *args[2:]), kwargs

    def after_last_layer(module, args, output):  # layer == L: mix the last hidden states
        if isinstance(output, tuple):
            return (mix_hidden(output[0]), *output[1:])
        return mix_hidden(output)

    if layer < len(layers):
        handles = [block.register_forward_pre_hook(before_layer, with_kwargs=True) for block in layers[layer:]]
    else:
        handles = [layers[-1].register_forward_hook(after_last_layer)]
    try:
        return model(**both).logits
    finally:
        for handle in handles:
            handle.remove()
