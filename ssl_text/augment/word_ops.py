"""Random word swap, deletion and crop, and WordNet synonym substitution, through nlpaug.

nlpaug draws from Python's and NumPy's global random state. `NlpaugOp` seeds both from the
collator's generator for the duration of one batch and restores them afterwards, so a batch
is a function of its generator (resume reproduces it) and nothing else sees the reseeding.
Synonyms need two NLTK data packages (WordNet and the English POS tagger); they are looked up
before the first batch, and a missing one stops the run with the command that installs it
(nlpaug itself would try to download it in the middle of training).
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch

from ssl_text.augment.words import seed_from

# NLTK data that WordNet synonyms need: (path for nltk.data.find, package name for the downloader)
SYNONYM_NLTK_DATA = (("corpora/wordnet", "wordnet"), ("taggers/averaged_perceptron_tagger_eng", "averaged_perceptron_tagger_eng"))


class MissingResourceError(RuntimeError):
    """A package or data file that an augmentation needs is not installed."""


@contextmanager
def global_random_seeded(seed: int):
    """Seed `random` and `numpy.random` for the block; restore their previous states afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class NlpaugOp:
    """A nlpaug word augmenter applied to a batch of texts, seeded by the collator's generator."""

    def __init__(self, augmenter):
        self.augmenter = augmenter

    def __call__(self, texts: list[str], generator: torch.Generator) -> list[str]:
        with global_random_seeded(seed_from(generator)):
            out = self.augmenter.augment(list(texts))
        return [new if new else old for old, new in zip(texts, out)]


def _nlpaug_word():
    try:
        import nlpaug.augmenter.word as naw
    except ImportError:
        raise MissingResourceError(
            "word-level view operations need nlpaug; install it with `pip install nlpaug nltk` "
            "(or `pip install -e \".[augment]\"`)."
        ) from None
    return naw


def random_word_op(action: str, prob: float) -> NlpaugOp:
    """nlpaug's RandomWordAug: `swap` adjacent words, `delete` words, or `crop` a contiguous run of
    words; ceil(prob * words) of them per text (at least one)."""
    naw = _nlpaug_word()
    cls = _crop_class(naw) if action == "crop" else naw.RandomWordAug
    return NlpaugOp(cls(action=action, aug_p=prob, aug_min=1, aug_max=None))


def _crop_class(naw):
    class RandomWordCrop(naw.RandomWordAug):
        """nlpaug 1.1.11's crop fails when one word is to go (its start is drawn from `tokens[:-0]`,
        empty) and puts the second word back when the crop starts at the first one (the capitalization
        fix rewrites it). Here the start is uniform over the valid positions and the run is removed whole."""

        def crop(self, data):
            if not data or not data.strip():
                return data
            tokens = self.tokenizer(data)
            count = min(self.generate_aug_cnt(len(tokens)), len(tokens) - 1)
            if count <= 0:
                return data
            start = self.sample(list(range(len(tokens) - count + 1)), 1)[0]
            kept = tokens[:start] + tokens[start + count :]
            if start == 0:
                kept[0] = self.align_capitalization(tokens[0], kept[0])
            return self.reverse_tokenizer(kept)

    return RandomWordCrop


def missing_nltk_data(resources=SYNONYM_NLTK_DATA) -> list[str]:
    """The downloader names of the NLTK data packages in `resources` that are not installed."""
    import nltk

    missing = []
    for path, name in resources:
        try:
            nltk.data.find(path)
        except LookupError:
            missing.append(name)
    return missing


def synonym_op(prob: float) -> NlpaugOp:
    """nlpaug's SynonymAug with WordNet: ceil(prob * words) words per text replaced by a synonym
    of their part of speech."""
    naw = _nlpaug_word()
    try:
        import nltk
    except ImportError:
        raise MissingResourceError("`synonym` needs nltk; install it with `pip install nltk`.") from None
    missing = missing_nltk_data()
    if missing:
        raise MissingResourceError(
            f"`synonym` needs the NLTK data {missing}, which is not installed (searched {nltk.data.path}). "
            f"Install it with `python -m nltk.downloader {' '.join(missing)}` (or point NLTK_DATA at a folder "
            "that has it), or remove `synonym` from the view pipeline."
        )
    return NlpaugOp(naw.SynonymAug(aug_src="wordnet", aug_p=prob, aug_min=1, aug_max=None))
