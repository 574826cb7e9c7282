"""The agreement filter's math on hand-made probabilities and embeddings (ssl_text/algorithms/agreement.py)."""

import numpy as np

from ssl_text.algorithms.agreement import agreement_rows, knn_vote


def test_agreement_keeps_only_rows_where_classifier_and_vote_agree_most_confident_first_per_class():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55], [0.95, 0.05], [0.3, 0.7]])
    votes = np.array([[0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9], [0.4, 0.6]])
    # agree: rows 0, 1 (class 0), 2, 5 (class 1); rows 3 and 4 disagree. keep 0.5 of 6 rows at prior 0.5/0.5:
    # 2 per class... capped at round(0.5 * 6 * 0.5) = 2: all four agreeing rows
    assert agreement_rows(probs, votes, np.array([0.5, 0.5]), 0.5).tolist() == [0, 1, 2, 5]
    # keep 1/3: round(1/3 * 6 * 0.5) = 1 per class, the most confident (0.9*0.8 > 0.6*0.7; 0.8*0.9 > 0.7*0.6)
    assert agreement_rows(probs, votes, np.array([0.5, 0.5]), 1 / 3).tolist() == [0, 2]
    # the labeled prior sets each class's share: all of class 1's cap, none of class 0
    assert agreement_rows(probs, votes, np.array([0.0, 1.0]), 1 / 3).tolist() == [2, 5]


def test_agreement_with_no_agreeing_row_is_empty():
    probs = np.array([[0.9, 0.1], [0.1, 0.9]])
    votes = probs[:, ::-1]
    assert agreement_rows(probs, votes, np.array([0.5, 0.5]), 1.0).tolist() == []


def test_knn_vote_spreads_labels_along_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    lb = centers + 0.01
    ulb = np.concatenate([c + 0.05 * rng.standard_normal((10, 2)) for c in centers])
    votes = knn_vote(lb, np.array([0, 1, 2]), ulb, num_classes=4)
    assert votes.shape == (30, 4)
    np.testing.assert_allclose(votes.sum(axis=1), 1.0, atol=1e-6)
    assert votes.argmax(axis=1).tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert np.all(votes[:, 3] == 0)  # a class without labels gets no vote


def test_knn_vote_gives_unreached_rows_a_uniform_distribution():
    rng = np.random.default_rng(0)
    lb = np.array([[0.0, 0.0], [0.0, 0.1]])
    far = 100.0 + rng.standard_normal((12, 2))  # 12 > k: the far rows' neighbours are all far, no label reaches them
    votes = knn_vote(lb, np.array([0, 1]), far, num_classes=2)
    np.testing.assert_allclose(votes, 0.5)
