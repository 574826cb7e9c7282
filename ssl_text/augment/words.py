"""Words of a text for word-level view operations, and the seeds they draw from a torch generator.

`split_words` cuts a text into alternating separators and words (`\\w+` runs), so that
words can be replaced one by one and `"".join(pieces)` gives the text back with its
punctuation and spacing untouched. Operations that use Python's or NumPy's random numbers
take their seed from the collator's generator (`seed_from`), so a batch is reproducible
from the generator alone (see ssl_text/data/batching.py).
"""

from __future__ import annotations

import re

import torch

_WORD = re.compile(r"(\w+)")


def split_words(text: str) -> list[str]:
    """`[sep, word, sep, word, ..., sep]`: the words are the odd items; `"".join` restores the text."""
    return _WORD.split(text)


def match_case(original: str, new: str) -> str:
    """`new` capitalized like `original` (first letter upper-case, or all upper-case)."""
    if len(original) > 1 and original.isupper():
        return new.upper()
    if original[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def seed_from(generator: torch.Generator) -> int:
    """A 31-bit seed drawn from `generator` (one draw)."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator))
