"""TF-IDF-based word replacement, as in UDA (Xie et al. 2020, "Unsupervised Data Augmentation").

Fitted on the unlabeled corpus (`fit_tfidf`): idf(w) = ln(N / df(w)) over N texts, and a
corpus-level tf-idf(w) = idf(w) * sum over texts of count(w) / length. In one text, a word
with a low tf-idf score (frequent everywhere, uninformative: "the", "said") is likely to be
replaced and a word with a high one ("Nasdaq", "quarterback") is kept:

    score_i = count_i / n * idf(w_i);   p_i = min(1, (max_j score_j - score_i) / sum_j (max - score_j) * prob * n)

so the expected number of replaced words is `prob * n`. Replacements are drawn from the corpus
vocabulary with probability proportional to max tf-idf - tf-idf(w): uninformative words again,
so that the replacement does not inject a class-revealing keyword. Words are `\\w+` runs,
matched lower-cased; punctuation and spacing are kept.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ssl_text.augment.words import match_case, split_words


@dataclass
class TfIdfStats:
    words: list[str]  # the corpus vocabulary, lower-cased
    index: dict[str, int]  # word -> position in `words`
    idf: np.ndarray  # [V] ln(N / document frequency)
    replacement_cdf: np.ndarray  # [V] cumulative P(replacement = word), proportional to max tf-idf - tf-idf

    @property
    def unseen_idf(self) -> float:
        """The idf of a word that is not in the corpus: that of a word seen once (the rarest)."""
        return float(self.idf.max())


def fit_tfidf(texts: Iterable[str]) -> TfIdfStats:
    """IDF per word and the replacement distribution, from every text of the unlabeled corpus."""
    doc_freq: Counter = Counter()
    tf_sum: Counter = Counter()
    num_docs = 0
    for text in texts:
        num_docs += 1
        words = [w.lower() for w in split_words(text or "")[1::2]]
        if not words:
            continue
        counts = Counter(words)
        doc_freq.update(counts.keys())
        for word, count in counts.items():
            tf_sum[word] += count / len(words)
    if not doc_freq:
        raise ValueError("tfidf_replace: the unlabeled texts have no words to fit TF-IDF statistics on.")
    words = sorted(doc_freq)
    idf = np.array([math.log(num_docs / doc_freq[w]) for w in words])
    tfidf = idf * np.array([tf_sum[w] for w in words])
    weight = tfidf.max() - tfidf
    if weight.sum() <= 0:  # every word scores the same: draw replacements uniformly
        weight = np.ones_like(weight)
    cdf = np.cumsum(weight / weight.sum())
    cdf[-1] = 1.0
    return TfIdfStats(words, {w: i for i, w in enumerate(words)}, idf, cdf)


def replacement_probs(words: list[str], stats: TfIdfStats, prob: float) -> np.ndarray:
    """[n] probability of replacing each word of one text; their sum is about `prob * n`."""
    keys = [w.lower() for w in words]
    counts = Counter(keys)
    unseen = stats.unseen_idf
    idf = np.array([stats.idf[stats.index[k]] if k in stats.index else unseen for k in keys])
    score = np.array([counts[k] for k in keys]) / len(keys) * idf
    gap = score.max() - score
    if gap.sum() <= 0:  # no word is less informative than another
        return np.full(len(keys), prob)
    return np.minimum(gap / gap.sum() * prob * len(keys), 1.0)


def tfidf_replace(texts: list[str], stats: TfIdfStats, prob: float, rng: np.random.Generator) -> list[str]:
    """Replace uninformative words of each text by uninformative corpus words (UDA's TF-IDF word replacement)."""
    out = []
    for text in texts:
        pieces = split_words(text)
        words = pieces[1::2]
        if not words:
            out.append(text)
            continue
        chosen = np.flatnonzero(rng.random(len(words)) < replacement_probs(words, stats, prob))
        drawn = np.searchsorted(stats.replacement_cdf, rng.random(len(chosen)), side="right")
        for i, j in zip(chosen.tolist(), drawn.tolist()):
            pieces[2 * i + 1] = match_case(words[i], stats.words[min(j, len(stats.words) - 1)])
        out.append("".join(pieces))
    return out
