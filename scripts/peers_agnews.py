"""Measure the peer baselines of ``peer_baselines`` on AG News, 10 labels per class.

For each seed in ``--seeds`` (default 0 1 2), 10 labeled examples per class are drawn
from ``train_sample5000.csv`` with ``numpy.random.default_rng(seed)`` (per class, in
class order 0..3: ``rng.choice(row indices of that class, size=10, replace=False)``);
the other 4,960 rows form the unlabeled pool (labels dropped). The three peers are
scored on the full 7,600-row ``test.csv``. Pool and test embeddings do not depend on
the seed; they are computed once and cached as .npy files next to ``--out``.

Prints a markdown table (mean ± std over seeds, population std) and writes JSON to ``--out``.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python scripts/peers_agnews.py --out runs/peers_agnews.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
import os
import platform
import re
import sys
import time
import warnings

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from peer_baselines import (  # noqa: E402
    PEER_NAMES,
    embed,
    packaged_minilm_path,
    run_peers,
)

DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, "..", "shared", "data", "ag_news")
N_CLASSES = 4
LABELS_PER_CLASS = 10

# AG News writes many HTML entities without their leading '&' ("it#39;s", " quot;", " amp; ").
_BARE_NUMERIC_ENTITY = re.compile(r"(?<!&)(#\d+;)")
_BARE_NAMED_ENTITY = re.compile(r"(?<![&\w])(quot|amp|lt|gt|nbsp|hellip|apos);")


def clean_text(title: str, description: str) -> str:
    """Join title and description, turn backslashes into spaces and unescape HTML entities."""
    text = f"{title} {description}".replace("\\", " ")
    text = _BARE_NUMERIC_ENTITY.sub(r"&\1", text)
    text = _BARE_NAMED_ENTITY.sub(r"&\1;", text)
    return html.unescape(text)


def load_ag_news(path: str) -> tuple[list[str], np.ndarray]:
    """Read an AG News CSV (no header; label 1-4, title, description) as texts and labels 0..3."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"AG News file {path!r} does not exist; pass the folder that holds it with --data-dir.")
    texts: list[str] = []
    labels: list[int] = []
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if len(row) != 3:
                raise ValueError(f"{path}:{line_no} has {len(row)} fields, expected 3 (label, title, description).")
            label = int(row[0])
            if not 1 <= label <= N_CLASSES:
                raise ValueError(f"{path}:{line_no} has label {row[0]!r}, expected 1..{N_CLASSES}.")
            texts.append(clean_text(row[1], row[2]))
            labels.append(label - 1)
    return texts, np.asarray(labels, dtype=np.int64)


def draw_labeled(train_y: np.ndarray, seed: int) -> np.ndarray:
    """Row indices of the labeled set: LABELS_PER_CLASS per class, classes in order 0..3."""
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(train_y == c), size=LABELS_PER_CLASS, replace=False) for c in range(N_CLASSES)
    ]
    return np.concatenate(picks)


def cached_embeddings(texts: list[str], model_path: str, cache_path: str) -> tuple[np.ndarray, float]:
    """Embed ``texts`` or load them from ``cache_path`` (keyed by a hash of texts and model folder)."""
    digest = hashlib.sha256(("\n".join(texts) + "\0" + os.path.abspath(model_path)).encode()).hexdigest()[:16]
    path = f"{cache_path}.{digest}.npy"
    if os.path.isfile(path):
        emb = np.load(path)
        if emb.shape[0] == len(texts):
            return emb, 0.0
    t0 = time.perf_counter()
    emb = embed(texts, model_path)
    seconds = time.perf_counter() - t0
    np.save(path, emb)
    return emb, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder with train_sample5000.csv and test.csv")
    parser.add_argument("--out", default=os.path.join("runs", "peers_agnews.json"), help="JSON output path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model-path", default=None, help="sentence-transformers folder (default: packaged MiniLM)")
    args = parser.parse_args()

    model_path = args.model_path or packaged_minilm_path()
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)

    train_texts, train_y = load_ag_news(os.path.join(args.data_dir, "train_sample5000.csv"))
    test_texts, test_y = load_ag_news(os.path.join(args.data_dir, "test.csv"))

    # The pool changes with the seed only by which 40 rows are left out, so embed all
    # 5,000 train rows once and slice; embeddings of a text do not depend on its neighbours.
    train_emb, train_embed_s = cached_embeddings(train_texts, model_path, os.path.join(out_dir, "emb_train_sample5000"))
    test_emb, test_embed_s = cached_embeddings(test_texts, model_path, os.path.join(out_dir, "emb_test"))

    per_seed: dict[str, dict[str, dict[str, float]]] = {}
    for seed in args.seeds:
        lb_idx = draw_labeled(train_y, seed)
        ulb_mask = np.ones(len(train_texts), dtype=bool)
        ulb_mask[lb_idx] = False
        ulb_idx = np.flatnonzero(ulb_mask)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = run_peers(
                [train_texts[i] for i in lb_idx],
                train_y[lb_idx],
                [train_texts[i] for i in ulb_idx],
                test_texts,
                test_y,
                model_path,
                seed,
                ulb_emb=train_emb[ulb_idx],
                test_emb=test_emb,
            )
        res["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})  # type: ignore[assignment]
        per_seed[str(seed)] = res
        print(f"seed {seed}: " + ", ".join(f"{p} acc={res[p]['accuracy']:.4f}" for p in PEER_NAMES), flush=True)

    summary: dict[str, dict[str, float]] = {}
    for peer in PEER_NAMES:
        summary[peer] = {}
        for metric in ("accuracy", "macro_f1", "seconds"):
            vals = np.array([per_seed[str(s)][peer][metric] for s in args.seeds])
            summary[peer][f"{metric}_mean"] = float(vals.mean())
            summary[peer][f"{metric}_std"] = float(vals.std())

    lines = [
        f"AG News, {LABELS_PER_CLASS} labels/class, pool {len(train_texts) - N_CLASSES * LABELS_PER_CLASS}, "
        f"test {len(test_texts)}, seeds {args.seeds} (mean ± std)",
        "",
        "| peer | accuracy | macro-F1 | seconds / seed |",
        "|---|---|---|---|",
    ]
    for peer in PEER_NAMES:
        s = summary[peer]
        lines.append(
            f"| {peer} | {100 * s['accuracy_mean']:.2f} ± {100 * s['accuracy_std']:.2f} "
            f"| {100 * s['macro_f1_mean']:.2f} ± {100 * s['macro_f1_std']:.2f} "
            f"| {s['seconds_mean']:.1f} ± {s['seconds_std']:.1f} |"
        )
    lines.append("")
    lines.append(
        f"One-off embedding of the 5,000 train rows: {train_embed_s:.1f} s, of the test set: {test_embed_s:.1f} s "
        "(0.0 = loaded from cache); not included in the per-seed seconds of logistic_regression/label_spreading."
    )
    table = "\n".join(lines)
    print(table)

    import sentence_transformers
    import setfit
    import sklearn
    import torch

    record = {
        "benchmark": "ag_news_10_per_class_peers",
        "data_dir": os.path.abspath(args.data_dir),
        "model_path": model_path,
        "seeds": args.seeds,
        "labels_per_class": LABELS_PER_CLASS,
        "n_pool": len(train_texts) - N_CLASSES * LABELS_PER_CLASS,
        "n_test": len(test_texts),
        "settings": {
            "logistic_regression": {"max_iter": 1000, "C": 1.0},
            "label_spreading": {"kernel": "knn", "n_neighbors": 7, "alpha": 0.2, "max_iter": 30},
            "setfit": {"batch_size": 16, "num_iterations": 20, "num_epochs": 1},
        },
        "embed_seconds": {"train_sample5000": train_embed_s, "test": test_embed_s},
        "per_seed": per_seed,
        "summary": summary,
        "table_markdown": table,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "setfit": setfit.__version__,
            "torch_threads": torch.get_num_threads(),
        },
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
