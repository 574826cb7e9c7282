"""On-the-fly views of tokenized text, vectorized over a padded batch of ids."""

from __future__ import annotations

import math
from functools import lru_cache

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


def span_mask(
    input_ids: torch.Tensor,  # [B, L]
    special_mask: torch.Tensor,  # [B, L] bool, True on [CLS]/[SEP]/padding: never touched
    *,
    mask_token_id: int,
    prob: float,
    mean_length: float,
    max_length: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Mask contiguous spans that cover about a `prob` share of the tokens (SpanBERT-style).

    A span starts at each editable position with probability `span_start_prob(...)` and has a
    geometric length of mean `mean_length`, clipped to `max_length`, so that a token away from
    the sequence start is covered with probability `prob`. Spans skip special tokens and padding.
    """
    if prob <= 0:
        return input_ids
    batch, width = input_ids.shape
    editable = ~special_mask
    success = 1.0 / mean_length  # geometric on {1, 2, ...}: P(length > k) = (1 - success)^k
    start_prob = span_start_prob(prob, mean_length, max_length)
    starts = (torch.rand(input_ids.shape, generator=generator) < start_prob) & editable  # [B, L]
    lengths = torch.zeros(input_ids.shape, dtype=torch.long)
    count = int(starts.sum())
    if count == 0:
        return input_ids
    if success >= 1.0:
        lengths[starts] = 1
    else:
        u = 1.0 - torch.rand(count, generator=generator)  # (0, 1]
        lengths[starts] = (1 + torch.floor(torch.log(u) / math.log1p(-success))).long().clamp(max=max_length)
    position = torch.arange(width).expand(batch, width)  # [B, L]
    reach = torch.cummax(torch.where(starts, position + lengths, 0), dim=1).values  # end of the last span started
    return input_ids.masked_fill((position < reach) & editable, mask_token_id)


@lru_cache(maxsize=64)
def span_start_prob(prob: float, mean_length: float, max_length: int) -> float:
    """The start probability q at which spans cover a `prob` share of the tokens.

    A token is left uncovered when no span that starts d = 0, 1, ... tokens before it reaches
    it: P(uncovered) = prod_d (1 - q P(length > d)), with P(length > d) = (1 - 1/mean_length)^d
    for d < max_length and 0 beyond. That is increasing in q, so q is found by bisection.
    """
    reach = [(1.0 - 1.0 / mean_length) ** d for d in range(max_length)]

    def coverage(q: float) -> float:
        return 1.0 - math.prod(1.0 - q * r for r in reach)

    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if coverage(mid) < prob else (low, mid)
    return (low + high) / 2


def token_substitute(
    input_ids: torch.Tensor,  # [B, L]
    special_mask: torch.Tensor,  # [B, L] bool, True on [CLS]/[SEP]/padding: never touched
    *,
    candidates: torch.Tensor,  # [C] token ids to draw from (the vocabulary without special tokens)
    prob: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Replace a `prob` share of the tokens by tokens drawn uniformly from `candidates`."""
    if prob <= 0:
        return input_ids
    chosen = (torch.rand(input_ids.shape, generator=generator) < prob) & ~special_mask  # [B, L]
    count = int(chosen.sum())
    if count == 0:
        return input_ids
    ids = input_ids.clone()
    ids[chosen] = candidates[torch.randint(len(candidates), (count,), generator=generator)]
    return ids
