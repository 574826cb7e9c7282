"""A small synthetic NER corpus in CoNLL format, built from the shipped test vocabulary."""

from __future__ import annotations

import random
from pathlib import Path

ENTITIES = {
    "PER": ["president", "minister", "coach", "player", "investor xkq"],  # `xkq`: x ##k ##q, three subwords
    "ORG": ["bank", "senate", "party", "league", "team"],
    "LOC": ["planet", "space", "market"],
}
FILLER = ["the", "a", "new", "report", "says", "after", "today", "this", "week", "big", "on", "in", "of", "and"]


def make_sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """Sentences of (word, tag): four to seven filler words around one or two entity mentions."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        words = [(w, "O") for w in rng.sample(FILLER, rng.randint(4, 7))]
        for _ in range(rng.randint(1, 2)):
            kind = rng.choice(sorted(ENTITIES))
            mention = rng.choice(ENTITIES[kind]).split()
            tagged = [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(mention)]
            at = rng.randrange(len(words) + 1)
            words[at:at] = tagged
        sentences.append(words)
    return sentences


def write_conll(path: Path, sentences: list[list[tuple[str, str]]], docstart: bool = True) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        if docstart:
            f.write("-DOCSTART- -X- -X- O\n\n")
        for sentence in sentences:
            for word, tag in sentence:
                f.write(f"{word} NN O {tag}\n")
            f.write("\n")
    return path
