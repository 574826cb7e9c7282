"""A new mean-pooling head starts as a logistic regression of the labeled texts' sentence embeddings (what SetFit
trains as its head; with a teacher's pseudo-labeled pool, of those texts too), not at random: a random head on unit-norm embeddings gives near-zero logits that a
fine-tuning learning rate moves only slowly (ssl_text/models/mean_pooling.py)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from ssl_text.config.keys import PSEUDO_TARGET
from ssl_text.training.inference import predict_logits

HEAD_C = 1.0  # scikit-learn's default regularisation, which SetFit's head uses too
HEAD_MAX_ITER = 1000


def embed_rows(accelerator, model, rows, batch_size: int, pad_token_id: int, device=None) -> np.ndarray:
    """[N, H] normalised sentence embeddings of encoded `rows` (`input_ids`) from a mean-pooling classifier."""
    return predict_logits(accelerator, model, rows, batch_size, pad_token_id, device, forward=lambda m, b: m.embed(**b))


def fit_head(embeddings: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight [C, H], bias [C]) of a multinomial logistic regression; classes absent from `labels` get a zero
    weight and the lowest bias."""
    present = np.unique(labels)
    clf = LogisticRegression(C=HEAD_C, max_iter=HEAD_MAX_ITER).fit(embeddings, labels)
    weight = np.zeros((num_classes, embeddings.shape[1]), dtype=np.float32)
    bias = np.full(num_classes, -1.0, dtype=np.float32)
    if len(present) == 2:  # scikit-learn fits one weight vector for two classes: logits (-z/2, z/2)
        weight[present] = np.stack([-clf.coef_[0], clf.coef_[0]]) / 2
        bias[present] = np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2
    else:
        weight[present], bias[present] = clf.coef_, clf.intercept_
    if len(present) < num_classes:
        bias[np.setdiff1d(np.arange(num_classes), present)] = bias[present].min() - 1.0
    return weight, bias


def init_head_from_labels(
    accelerator, model, labeled, batch_size: int, pad_token_id: int, num_classes: int, pseudo_labeled=None
) -> None:
    """Set `model`'s head to the logistic regression of the encoded `labeled` rows (`input_ids`, `label`) and of
    the `pseudo_labeled` rows, if given (`input_ids`, `pseudo_target`: a teacher's pool, labeled by its argmax)."""
    embeddings = embed_rows(accelerator, model, labeled, batch_size, pad_token_id)
    labels = np.asarray(labeled["label"])
    if pseudo_labeled is not None:
        embeddings = np.vstack([embeddings, embed_rows(accelerator, model, pseudo_labeled, batch_size, pad_token_id)])
        labels = np.concatenate([labels, np.asarray(pseudo_labeled[PSEUDO_TARGET]).argmax(axis=1)])
    model.set_head(*fit_head(embeddings, labels, num_classes))
