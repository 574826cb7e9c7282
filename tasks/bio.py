"""Valid BIO sequences: repair of tag strings and constrained Viterbi decoding of token probabilities.

A BIO sequence is valid when every `I-X` follows a `B-X` or an `I-X`. Pseudo-labels made by a
per-token argmax often are not (`O I-PER`, `B-ORG I-LOC`); training on them teaches the
model broken spans. `decode_bio` picks, per sentence, the most probable valid sequence.
"""

from __future__ import annotations

import torch


def entity_of(tag: str) -> str | None:
    return None if tag == "O" else tag[2:]


def repair_bio(tags: list[str]) -> list[str]:
    """Turn every `I-X` that does not continue an `X` entity into `B-X` (the conlleval reading)."""
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and entity_of(previous) != entity_of(tag):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def bio_constraints(label_names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(may_start [C] bool, may_follow [C_prev, C] bool) for the tags in `label_names`."""
    n = len(label_names)
    may_start = torch.tensor([not name.startswith("I-") for name in label_names])
    may_follow = torch.ones(n, n, dtype=torch.bool)
    for j, tag in enumerate(label_names):
        if tag.startswith("I-"):
            for i, prev in enumerate(label_names):
                may_follow[i, j] = prev != "O" and entity_of(prev) == entity_of(tag)
    return may_start, may_follow


def viterbi(
    log_probs: torch.Tensor,  # [B, W, C]
    lengths: torch.Tensor,  # [B], 1 <= lengths <= W
    may_start: torch.Tensor,  # [C] bool
    may_follow: torch.Tensor,  # [C, C] bool
) -> torch.Tensor:
    """The most probable tag sequence of each row that obeys the constraints. Returns [B, W]
    (positions at or after a row's length repeat its last tag)."""
    b, w, c = log_probs.shape
    forbid = torch.finfo(log_probs.dtype).min / 4
    start = torch.where(may_start.to(log_probs.device), 0.0, forbid)
    follow = torch.where(may_follow.to(log_probs.device), 0.0, forbid)  # [C_prev, C]
    score = log_probs[:, 0] + start  # [B, C]
    identity = torch.arange(c, device=log_probs.device).expand(b, c)
    back = []
    for t in range(1, w):
        best, arg = (score[:, :, None] + follow[None]).max(dim=1)  # over the previous tag: [B, C]
        active = (t < lengths)[:, None]  # [B, 1]
        score = torch.where(active, best + log_probs[:, t], score)
        back.append(torch.where(active, arg, identity))
    path = torch.empty(b, w, dtype=torch.long, device=log_probs.device)
    last = score.argmax(dim=-1)  # [B]
    for t in range(w - 1, 0, -1):
        path[:, t] = last
        last = back[t - 1].gather(1, last[:, None]).squeeze(1)
    path[:, 0] = last
    return path


def decode_bio(
    probs: torch.Tensor,  # [B, L, C]
    positions: torch.Tensor,  # [B, L] bool: the first subword of each word
    may_start: torch.Tensor,
    may_follow: torch.Tensor,
) -> torch.Tensor:
    """Valid BIO tags for the word positions, decoded per sentence. Returns [N] in the order of
    `probs[positions]` (row by row, left to right)."""
    lengths = positions.sum(dim=1)  # [B]
    width = int(lengths.max()) if lengths.numel() else 0
    if width == 0:
        return torch.empty(0, dtype=torch.long, device=probs.device)
    order = torch.argsort((~positions).to(torch.int8), dim=1, stable=True)  # word positions first, in order
    packed = probs.gather(1, order[:, :width, None].expand(-1, -1, probs.shape[-1]))  # [B, W, C]
    log_probs = packed.float().clamp_min(1e-12).log()
    path = viterbi(log_probs, lengths.clamp_min(1), may_start, may_follow)  # [B, W]
    valid = torch.arange(width, device=probs.device)[None, :] < lengths[:, None]
    return path[valid]


def entity_groups(label_names: list[str]) -> dict[str, list[int]]:
    """Tag ids per entity type (`PER`: [B-PER, I-PER]), plus `O`; for per-type logging."""
    groups: dict[str, list[int]] = {}
    for i, tag in enumerate(label_names):
        groups.setdefault(entity_of(tag) or "O", []).append(i)
    return groups
