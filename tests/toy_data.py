"""A small synthetic 4-topic corpus and its vocabulary, for tests with tiny random models."""

from __future__ import annotations

import csv
import random
from pathlib import Path

TOPICS = {
    "sports": ["match", "goal", "team", "coach", "league", "season", "player", "score"],
    "business": ["market", "stock", "profit", "bank", "shares", "investor", "revenue", "trade"],
    "science": ["space", "research", "planet", "software", "computer", "robot", "physics", "genome"],
    "politics": ["election", "minister", "vote", "senate", "president", "policy", "party", "treaty"],
}
FILLER = ["the", "a", "new", "report", "says", "after", "today", "this", "week", "big", "on", "in", "of", "and"]


def make_texts(n: int, seed: int, noise: float = 0.0) -> list[tuple[str, str]]:
    """(topic, text) pairs: two topic words among filler; `noise` is the share of swapped topic words."""
    rng = random.Random(seed)
    names = sorted(TOPICS)
    rows = []
    for i in range(n):
        topic = names[i % len(names)]
        words = rng.sample(FILLER, 5)
        for _ in range(2):
            source = rng.choice(names) if rng.random() < noise else topic
            words.insert(rng.randrange(len(words) + 1), rng.choice(TOPICS[source]))
        rows.append((topic, " ".join(words) + "."))
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]], header: bool = True) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(["label", "text"])
        writer.writerows(rows)
    return path


def vocabulary() -> list[str]:
    words = sorted({w for ws in TOPICS.values() for w in ws} | set(FILLER))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + list(".,!?;:'\"-()") + words + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    tokens += list("abcdefghijklmnopqrstuvwxyz0123456789")
    return list(dict.fromkeys(tokens))  # a duplicate line would give ids beyond len(tokenizer)
