"""A tiny NLTK data folder for tests: a WordNet of a few synsets and a lookup-table POS tagger.

`build_tiny_nltk_data(root)` writes `corpora/wordnet/` in the WordNet database format (data
and index files with byte offsets, lexnames, exception lists) and `taggers/averaged_perceptron_tagger_eng/`
(the tagger's three JSON files, tagging from its word table), which is what nlpaug's WordNet
synonyms read through NLTK. With `root` on `nltk.data.path` the `synonym` operation runs offline.
"""

from __future__ import annotations

import json
from pathlib import Path

SYNONYMS = {  # WordNet POS -> synsets (lemmas)
    "n": [["car", "auto", "automobile"], ["market", "marketplace"], ["team", "squad"]],
    "v": [["rise", "climb", "mount"], ["win", "triumph"]],
    "a": [["quick", "fast", "speedy"]],
    "r": [["sharply", "steeply"]],
}
TAGS = {"The": "DT", "the": "DT", "a": "DT", "car": "NN", "market": "NN", "team": "NN", "rose": "VBD", "won": "VBD",
        "quick": "JJ", "sharply": "RB", "on": "IN", "Monday": "NNP", ".": "."}  # fmt: skip
_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_LEXNAMES = {"a": 0, "r": 2, "n": 3, "v": 4}
_EXCEPTIONS = {"v": "rose rise\nwon win\n"}


def build_tiny_nltk_data(root: str | Path) -> Path:
    root = Path(root)
    wordnet = root / "corpora" / "wordnet"
    wordnet.mkdir(parents=True, exist_ok=True)
    (wordnet / "lexnames").write_text("00\tadj.all\t3\n01\tadj.pert\t3\n02\tadv.all\t4\n03\tnoun.Tops\t1\n04\tverb.body\t2\n")
    (wordnet / "index.sense").write_text("")
    for pos, synsets in SYNONYMS.items():
        lines, offsets = [], []
        for lemmas in synsets:
            offsets.append(sum(len(line.encode()) for line in lines))  # a synset's id is its byte offset
            frames = " 00" if pos == "v" else ""
            words = " ".join(f"{w} 0" for w in lemmas)
            lines.append(f"{offsets[-1]:08d} {_LEXNAMES[pos]:02d} {pos} {len(lemmas):02x} {words} 000{frames} | gloss\n")
        (wordnet / f"data.{_FILES[pos]}").write_text("".join(lines))
        index = sorted((w, off) for lemmas, off in zip(synsets, offsets) for w in lemmas)
        (wordnet / f"index.{_FILES[pos]}").write_text("".join(f"{w} {pos} 1 0 1 0 {off:08d} \n" for w, off in index))
        (wordnet / f"{_FILES[pos]}.exc").write_text(_EXCEPTIONS.get(pos, ""))
    tagger = root / "taggers" / "averaged_perceptron_tagger_eng"
    tagger.mkdir(parents=True, exist_ok=True)
    name = "averaged_perceptron_tagger_eng"
    (tagger / f"{name}.weights.json").write_text(json.dumps({"bias": {"NN": 1.0}}))
    (tagger / f"{name}.tagdict.json").write_text(json.dumps(TAGS))
    (tagger / f"{name}.classes.json").write_text(json.dumps(sorted(set(TAGS.values()))))
    return root
