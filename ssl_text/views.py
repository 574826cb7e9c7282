"""On-the-fly views of tokenized text, vectorized over a padded batch of ids."""

from __future__ import annotations

import torch


def token_dropout(
    input_ids: torch.Tensor,  # [B, L]
    attention_mask: torch.Tensor,  # [B, L]
    special_mask: torch.Tensor,  # [B, L] bool, True on [CLS]/[SEP]/padding: never touched
    *,
    mask_token_id: int,
    pad_token_id: int,
    mask_prob: float,
    delete_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a `mask_prob` share of tokens with the mask token and delete a `delete_prob`
    share, keeping the order of the rest. Returns new `(input_ids, attention_mask)`."""
    ids = input_ids.clone()
    editable = ~special_mask
    if mask_prob > 0:
        draw = torch.rand(ids.shape, generator=generator)
        ids[(draw < mask_prob) & editable] = mask_token_id
    if delete_prob <= 0:
        return ids, attention_mask
    draw = torch.rand(ids.shape, generator=generator)
    keep = ~((draw < delete_prob) & editable) & attention_mask.bool()  # [B, L]
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept tokens first, in order
    ids = ids.gather(1, order)
    lengths = keep.sum(dim=1, keepdim=True)  # [B, 1]
    new_mask = (torch.arange(ids.shape[1])[None, :] < lengths).to(attention_mask.dtype)
    ids = ids.masked_fill(new_mask == 0, pad_token_id)
    width = int(lengths.max())
    return ids[:, :width], new_mask[:, :width]
