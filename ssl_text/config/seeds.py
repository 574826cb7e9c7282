"""The one seed derivation: the seed of one stream of random draws, from the run's seed and the stream's
coordinates (a salt, a batch number, a step ...), so that every stream is reproducible on its own,
whatever was drawn before it, on any process and after any resume.

It lives in the config layer because every layer derives seeds (the batch streams, the algorithms, the
pipelines, back-translation) and the config layer is the one they may all import.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from typing import Literal

TORCH_SEED_BITS = 47  # what `torch.Generator().manual_seed` takes comfortably; most streams use it
GLOBAL_SEED_BITS = 31  # the global `torch.manual_seed` of a forward pass (dropout) in contrastive evaluation
SHA256_SEED_BITS = 63  # back-translation's Marian sampling


def derive_seed(*parts: int | str, bits: int = TORCH_SEED_BITS, digest: Literal["hash", "sha256"] = "hash") -> int:
    """A seed in [0, 2**bits) that is a function of `parts` only.

    `digest="hash"`: Python's hash of the tuple of integer `parts`, which is the same in every process
    (unlike the hash of a string, which Python salts per process: refused). `digest="sha256"`: the
    first 8 bytes of the SHA-256 of the parts as JSON (strings allowed), the same on every Python.
    Each call site keeps the digest and the width it has always used, so that no trained number moves.
    """
    if not 1 <= bits <= 64:
        raise ValueError(f"bits is {bits}; expected 1..64.")
    mask = (1 << bits) - 1
    if digest == "sha256":
        return int.from_bytes(hashlib.sha256(json.dumps(parts).encode()).digest()[:8], "little") & mask
    if digest != "hash":
        raise ValueError(f"digest is {digest!r}; expected 'hash' or 'sha256'.")
    strings = [p for p in parts if not isinstance(p, numbers.Integral)]
    if strings:
        raise TypeError(
            f"derive_seed(digest='hash') takes integers only, got {strings!r}: Python salts the hash of a string per "
            "process, so the seed would change from run to run; use digest='sha256'."
        )
    return hash(parts) & mask
