"""Residue-level views of protein sequences, vectorized over a padded batch of token ids.

Plain functions next to `ssl_text.augment.token_views.token_dropout` (which already gives residue masking
and deletion): substitution by BLOSUM62 neighbours and random contiguous cropping. They work
on any tokenizer whose vocabulary holds the 20 standard amino-acid letters as single tokens
(ESM, ProtBERT); other tokens (specials, X, B, Z, U, O, gaps) are never substituted.
"""

from __future__ import annotations

import torch

# BLOSUM62 (Henikoff & Henikoff 1992) in half-bit units, the 20 standard residues, NCBI's order.
BLOSUM62_ORDER = "ARNDCQEGHILKMFPSTWYV"
_BLOSUM62_ROWS = """
 4 -1 -2 -2  0 -1 -1  0 -2 -1 -1 -1 -1 -2 -1  1  0 -3 -2  0
-1  5  0 -2 -3  1  0 -2  0 -3 -2  2 -1 -3 -2 -1 -1 -3 -2 -3
-2  0  6  1 -3  0  0  0  1 -3 -3  0 -2 -3 -2  1  0 -4 -2 -3
-2 -2  1  6 -3  0  2 -1 -1 -3 -4 -1 -3 -3 -1  0 -1 -4 -3 -3
 0 -3 -3 -3  9 -3 -4 -3 -3 -1 -1 -3 -1 -2 -3 -1 -1 -2 -2 -1
-1  1  0  0 -3  5  2 -2  0 -3 -2  1  0 -3 -1  0 -1 -2 -1 -2
-1  0  0  2 -4  2  5 -2  0 -3 -3  1 -2 -3 -1  0 -1 -3 -2 -2
 0 -2  0 -1 -3 -2 -2  6 -2 -4 -4 -2 -3 -3 -2  0 -2 -2 -3 -3
-2  0  1 -1 -3  0  0 -2  8 -3 -3 -1 -2 -1 -2 -1 -2 -2  2 -3
-1 -3 -3 -3 -1 -3 -3 -4 -3  4  2 -3  1  0 -3 -2 -1 -3 -1  3
-1 -2 -3 -4 -1 -2 -3 -4 -3  2  4 -2  2  0 -3 -2 -1 -2 -1  1
-1  2  0 -1 -3  1  1 -2 -1 -3 -2  5 -1 -3 -1  0 -1 -3 -2 -2
-1 -1 -2 -3 -1  0 -2 -3 -2  1  2 -1  5  0 -2 -1 -1 -1 -1  1
-2 -3 -3 -3 -2 -3 -3 -3 -1  0  0 -3  0  6 -4 -2 -2  1  3 -1
-1 -2 -2 -1 -3 -1 -1 -2 -2 -3 -3 -1 -2 -4  7 -1 -1 -4 -3 -2
 1 -1  1  0 -1  0  0  0 -1 -2 -2  0 -1 -2 -1  4  1 -3 -2 -2
 0 -1  0 -1 -1 -1 -1 -2 -2 -1 -1 -1 -1 -2 -1  1  5 -2 -2  0
-3 -3 -4 -4 -2 -2 -3 -2 -2 -3 -2 -3 -1  1 -4 -3 -2 11  2 -3
-2 -2 -2 -3 -2 -1 -2 -3  2 -1 -1 -2 -1  3 -3 -2 -2  2  7 -1
 0 -3 -3 -3 -1 -2 -2 -3 -3  3  1 -2  1 -1 -2 -2  0 -3 -1  4
"""


def blosum62() -> torch.Tensor:
    """The 20 x 20 BLOSUM62 scores, rows and columns in `BLOSUM62_ORDER`."""
    rows = [[int(v) for v in line.split()] for line in _BLOSUM62_ROWS.strip().splitlines()]
    return torch.tensor(rows, dtype=torch.float32)


def substitution_table(vocab: list[str], temperature: float = 1.0) -> torch.Tensor:
    """`[V, V]` probabilities: row `i` is the distribution of the token that replaces token `i`.

    For a standard residue `a`, P(b | a) is proportional to exp(BLOSUM62[a, b] / temperature) over
    the 19 other standard residues (so I -> V, L, M is likely and I -> G, D rare); every other
    token's row is the identity (it is never replaced). `vocab[i]` is the string of token id `i`.
    """
    scores = blosum62()
    index = {aa: i for i, aa in enumerate(BLOSUM62_ORDER)}
    token_of = {tok: i for i, tok in enumerate(vocab) if tok in index}
    missing = [aa for aa in BLOSUM62_ORDER if aa not in token_of]
    if missing:
        raise ValueError(
            f"BLOSUM substitution needs the 20 amino-acid letters as tokens; the vocabulary lacks {missing}. "
            "Use a residue-level protein tokenizer (ESM, ProtBERT) or set blosum_prob to 0."
        )
    table = torch.eye(len(vocab))
    aa_ids = torch.tensor([token_of[aa] for aa in BLOSUM62_ORDER])
    weights = torch.exp(scores / temperature)
    weights.fill_diagonal_(0.0)  # a substitution always changes the residue
    probs = weights / weights.sum(dim=1, keepdim=True)  # [20, 20]
    table[aa_ids] = 0.0
    table[aa_ids.unsqueeze(1), aa_ids.unsqueeze(0)] = probs
    return table


def blosum_substitute(
    input_ids: torch.Tensor,  # [B, L]
    editable: torch.Tensor,  # [B, L] bool, False on specials and padding
    table: torch.Tensor,  # [V, V] from `substitution_table`
    prob: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Replace a `prob` share of the residues by BLOSUM62 neighbours drawn from `table`."""
    substitutable = table.diagonal() < 1.0  # [V] True for the 20 standard residues
    draw = (torch.rand(input_ids.shape, generator=generator) < prob) & editable & substitutable[input_ids]
    if not bool(draw.any()):
        return input_ids
    ids = input_ids.clone()
    ids[draw] = torch.multinomial(table[input_ids[draw]], 1, generator=generator).squeeze(1)
    return ids


def random_crop(
    input_ids: torch.Tensor,  # [B, L]
    attention_mask: torch.Tensor,  # [B, L]
    special_mask: torch.Tensor,  # [B, L] bool, True on <cls>/<eos>/padding
    *,
    prob: float,
    min_fraction: float,
    pad_token_id: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a `prob` share of the sequences to a random contiguous window of their residues.

    The window keeps a uniform share in [min_fraction, 1] of the residues (at least one) at a
    uniform start; a leading special token (<cls>) and a trailing one (<eos>) stay in place.
    Returns new `(input_ids, attention_mask)`, right-padded and trimmed to the longest row.
    """
    batch, width = input_ids.shape
    lengths = attention_mask.sum(dim=1)  # [B] tokens incl. specials
    rows = torch.arange(batch)
    lead = (special_mask[:, 0] & (attention_mask[:, 0] > 0)).long()  # [B] 1 if a <cls> leads
    last = (lengths - 1).clamp(min=0)
    trail = (special_mask[rows, last] & (lengths > lead)).long()  # [B] 1 if an <eos> ends the row
    residues = lengths - lead - trail  # [B]
    crop = (torch.rand(batch, generator=generator) < prob) & (residues > 1)
    fraction = min_fraction + (1.0 - min_fraction) * torch.rand(batch, generator=generator)
    keep = torch.ceil(residues.float() * fraction).long().clamp(min=1)
    keep = torch.minimum(keep, residues)
    start = torch.floor(torch.rand(batch, generator=generator) * (residues - keep + 1).float()).long()
    keep = torch.where(crop, keep, residues)
    start = torch.where(crop, start, torch.zeros_like(start))

    j = torch.arange(width).unsqueeze(0)  # [1, L]
    lead_, keep_, trail_ = lead.unsqueeze(1), keep.unsqueeze(1), trail.unsqueeze(1)
    src = torch.where(
        j < lead_,
        j,
        torch.where(
            j < lead_ + keep_,
            lead_ + start.unsqueeze(1) + (j - lead_),
            (lengths.unsqueeze(1) - trail_) + (j - lead_ - keep_),
        ),
    ).clamp(0, width - 1)
    new_lengths = lead + keep + trail  # [B]
    new_mask = (j < new_lengths.unsqueeze(1)).to(attention_mask.dtype)
    ids = input_ids.gather(1, src).masked_fill(new_mask == 0, pad_token_id)
    new_width = max(int(new_lengths.max()), 1)
    return ids[:, :new_width], new_mask[:, :new_width]


class ResidueVocab:
    """A tokenizer's vocabulary and its BLOSUM62 substitution tables, one per temperature."""

    def __init__(self, tokenizer):
        self.vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self._tables: dict[float, torch.Tensor] = {}

    def table(self, temperature: float) -> torch.Tensor:
        """`substitution_table(vocab, temperature)`; refuses a non-protein (large) vocabulary."""
        if len(self.vocab) > 4096:
            raise ValueError(
                f"the tokenizer has {len(self.vocab)} tokens; BLOSUM substitution needs a residue-level protein "
                "tokenizer (task: protein)."
            )
        if temperature not in self._tables:
            self._tables[temperature] = substitution_table(self.vocab, temperature)
        return self._tables[temperature]
