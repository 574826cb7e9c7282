"""Pseudo-labels that two views of the embedding space agree on: a classifier's argmax and a kNN label-propagation
vote over the labeled and unlabeled texts (Zhou et al., 2004, as scikit-learn's LabelSpreading). Where both agree
the pseudo-labels are far cleaner than the classifier's confident argmax alone (HAST, Schröder et al., 2023, filters
self-training targets this way). Plain functions on arrays: the recipe's pool stage and any self-training teacher
use them, and FixMatch, UDA and pseudo_label filter their online targets with `vote_agreement` (their
`knn_agreement` option)."""

from __future__ import annotations

import numpy as np
import torch

KNN_NEIGHBORS = 7  # scikit-learn's default k for the knn kernel; the peer LabelSpreading row uses the same
SPREADING_ALPHA = 0.2  # scikit-learn's default clamping factor
SPREADING_MAX_ITER = 30  # scikit-learn's default


def knn_vote(lb_embeddings: np.ndarray, lb_labels: np.ndarray, ulb_embeddings: np.ndarray, num_classes: int) -> np.ndarray:
    """[N_ulb, C] label distributions that labels spread over the kNN graph of all the embeddings give the
    unlabeled rows (rows sum to 1; a row the spreading never reaches is uniform)."""
    # imported here, not at the top: every thresholded algorithm imports this module for vote_agreement
    from sklearn.semi_supervised import LabelSpreading

    x = np.vstack([lb_embeddings, ulb_embeddings])
    y = np.concatenate([np.asarray(lb_labels, dtype=np.int64), np.full(len(ulb_embeddings), -1)])
    k = min(KNN_NEIGHBORS, len(x) - 1)
    spreading = LabelSpreading(kernel="knn", n_neighbors=k, alpha=SPREADING_ALPHA, max_iter=SPREADING_MAX_ITER)
    with np.errstate(divide="ignore", invalid="ignore"):
        spreading.fit(x, y)
    votes = np.zeros((len(ulb_embeddings), num_classes))
    votes[:, spreading.classes_[spreading.classes_ >= 0]] = spreading.label_distributions_[len(lb_embeddings):]
    votes = np.nan_to_num(votes)
    totals = votes.sum(axis=1, keepdims=True)
    return np.where(totals > 0, votes / np.where(totals > 0, totals, 1), 1.0 / num_classes)


def agreement_mask(scores: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """[N] bool: the rows where the classifier's argmax (`scores` [N, C], logits or probabilities) is the vote's."""
    return scores.argmax(axis=1) == votes.argmax(axis=1)


def agreement_rows(probs: np.ndarray, votes: np.ndarray, prior: np.ndarray, keep: float) -> np.ndarray:
    """Rows of the pool to pseudo-label, sorted: those where the classifier's argmax (`probs` [N, C]) and the vote's
    (`votes` [N, C]) agree, the most confident first (the product of both top probabilities), at most
    round(keep * N * prior_c) of class c (`prior` [C], the labeled class shares), so that no class floods the
    pool because it is easy."""
    predicted = probs.argmax(axis=1)
    agree = agreement_mask(probs, votes)
    confidence = probs.max(axis=1) * votes.max(axis=1)
    chosen = []
    for cls, share in enumerate(prior):
        members = np.flatnonzero(agree & (predicted == cls))
        members = members[np.argsort(-confidence[members], kind="stable")]
        chosen.append(members[: int(round(keep * len(probs) * share))])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def vote_agreement(pseudo: torch.Tensor, votes: torch.Tensor) -> torch.Tensor:
    """[N] float mask, 1 where a pseudo-label (`pseudo` [N] class ids) is its row's kNN vote (`votes` [N, C]):
    the online form of `agreement_mask`, multiplied into a confidence mask."""
    return (pseudo == votes.argmax(dim=-1)).to(torch.float)
