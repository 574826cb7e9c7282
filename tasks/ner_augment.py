"""NER-safe word operations: they change a tagged sentence and return tags that still fit it.

* `substitute_o_words`: words tagged `O` are replaced, each with probability `prob`, by a word
  drawn from a vocabulary of `O` words; entity words and the word count stay as they are.
* `swap_mentions`: each entity mention is replaced, with probability `prob`, by another mention
  of the same type drawn from a bank (`mention_bank`); the tags of the new mention are `B-X`
  followed by `I-X`, so the sentence stays a valid BIO sequence even when the length changes.

Both take a `random.Random`, so a seeded generator gives the same sentence every time (the
collators seed it per batch, which keeps `--resume` exact). Token masking, the third NER-safe
operation, works on subword ids in `tasks/ner.py` (masking, never deletion).
"""

from __future__ import annotations

import random

from ssl_text.tasks.bio import entity_of


def mentions(tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, stop, type) of each entity mention; an `I-X` that continues nothing starts a mention."""
    spans: list[tuple[int, int, str]] = []
    start, kind = None, None
    for i, tag in enumerate([*tags, "O"]):
        continues = tag.startswith("I-") and start is not None and entity_of(tag) == kind
        if start is not None and not continues:
            spans.append((start, i, kind))
            start = None
        if tag != "O" and not continues:
            start, kind = i, entity_of(tag)
    return spans


def mention_bank(sentences: list[list[str]], tags: list[list[str]]) -> dict[str, list[tuple[str, ...]]]:
    """Entity type -> the distinct mentions (word tuples) of that type, in order of appearance."""
    bank: dict[str, dict[tuple[str, ...], None]] = {}
    for words, sentence_tags in zip(sentences, tags):
        for start, stop, kind in mentions(sentence_tags):
            bank.setdefault(kind, {})[tuple(words[start:stop])] = None
    return {kind: list(found) for kind, found in bank.items()}


def o_vocabulary(sentences: list[list[str]], tags: list[list[str]]) -> list[str]:
    """The distinct words tagged `O`, in order of appearance."""
    return list(dict.fromkeys(w for words, t in zip(sentences, tags) for w, tag in zip(words, t) if tag == "O"))


def substitute_o_words(
    words: list[str], tags: list[str], vocabulary: list[str], prob: float, rng: random.Random
) -> tuple[list[str], list[str]]:
    if not vocabulary or prob <= 0:
        return list(words), list(tags)
    out = [rng.choice(vocabulary) if tag == "O" and rng.random() < prob else word for word, tag in zip(words, tags)]
    return out, list(tags)


def swap_mentions(
    words: list[str], tags: list[str], bank: dict[str, list[tuple[str, ...]]], prob: float, rng: random.Random
) -> tuple[list[str], list[str], list[int | None]]:
    """Returns (words, tags, origin): `origin[j]` is the index of new word j in `words`, None for a word
    of a swapped-in mention."""
    new_words, new_tags, origin, position = [], [], [], 0
    for start, stop, kind in mentions(tags) if prob > 0 else []:
        new_words += words[position:start]
        new_tags += tags[position:start]
        origin += range(position, start)
        if bank.get(kind) and rng.random() < prob:
            mention = list(rng.choice(bank[kind]))
            origin += [None] * len(mention)
        else:
            mention = list(words[start:stop])
            origin += range(start, stop)
        new_words += mention
        new_tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(mention) - 1)
        position = stop
    return new_words + words[position:], new_tags + tags[position:], origin + list(range(position, len(words)))
