"""Which class shares the recipe's pseudo-labels should keep, measured on finished recipe runs whose pool has hidden
labels (the benchmarks' and the quickstart's): the pseudo-label accuracy of the pool stage's agreement rows when the
shares are the labeled ones (the recipe's default), three estimates from the labeled and unlabeled data, and the
pool's true shares (an oracle). Reads only the run's warm start and its config, never the test set.

    python scripts/pool_prior.py runs/quickstart/seed_0/recipe [more recipe run folders]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from bench_common import offline

offline()
EM_ITERATIONS = 100  # Saerens et al. (2002) converge in a few tens of iterations on 4 classes
EM_TOLERANCE = 1e-6


def em_prior(probs: np.ndarray, train_prior: np.ndarray) -> np.ndarray:
    """The pool's class prior re-estimated by EM from a classifier trained under `train_prior` (Saerens et al.,
    2002)."""
    prior = train_prior.copy()
    for _ in range(EM_ITERATIONS):
        adjusted = probs * (prior / train_prior)
        new = (adjusted / adjusted.sum(axis=1, keepdims=True)).mean(axis=0)
        if np.abs(new - prior).max() < EM_TOLERANCE:
            return new
        prior = new
    return prior


def check(run: str) -> None:
    from sentence_transformers import SentenceTransformer

    from ssl_text.algorithms.agreement import agreement_mask, agreement_rows, knn_vote
    from ssl_text.config.keys import ANALYSIS_LABEL
    from ssl_text.pipelines.recipe import EMBED_BATCH_SIZE, WARM_START
    from ssl_text.pipelines.unlabeled_pool import load_teacher_pool
    from ssl_text.training.head_init import fit_head
    from ssl_text.training.inference import softmax
    from ssl_text.training.run_config import load_config

    if not (Path(run) / "config.yaml").is_file() or not (Path(run) / WARM_START / "modules.json").is_file():
        sys.exit(f"{run}: not an `ssl-text recipe` output_dir with a finished warm start (config.yaml and "
                 f"{WARM_START}/); give one such as runs/quickstart/seed_0/recipe after "
                 "`python scripts/quickstart.py`.")
    cfg = load_config(f"{run}/config.yaml", [])
    data = load_teacher_pool(cfg, "the pool check")
    if ANALYSIS_LABEL not in data.unlabeled.column_names:
        sys.exit(f"{run}: its pool has no hidden labels to score pseudo-labels against; use a run whose unlabeled "
                 "texts come from the labeled file (data.sampling.rest_as_unlabeled: true), as the benchmarks' do.")
    encoder = SentenceTransformer(f"{run}/{WARM_START}", device="cpu")
    encoder.max_seq_length = cfg.data.max_length

    def embed(texts) -> np.ndarray:
        return encoder.encode(list(texts), batch_size=EMBED_BATCH_SIZE, normalize_embeddings=True,
                              show_progress_bar=False)

    num_classes = len(data.label_names)
    lb_labels = np.asarray(data.labeled["label"])
    lb, ulb = embed(data.labeled["text"]), embed(data.unlabeled["text"])
    truth = np.asarray(data.unlabeled[ANALYSIS_LABEL])
    weight, bias = fit_head(lb, lb_labels, num_classes)
    probs = softmax(ulb @ weight.T + bias)
    votes = knn_vote(lb, lb_labels, ulb, num_classes)
    labeled = np.bincount(lb_labels, minlength=num_classes) / len(lb_labels)
    agree = agreement_mask(probs, votes)
    shares = {
        "labeled shares (default)": labeled,
        "EM re-estimate": em_prior(probs, labeled),
        "agreeing rows' shares": np.bincount(probs.argmax(axis=1)[agree], minlength=num_classes) / agree.sum(),
        "mean predicted probability": probs.mean(axis=0),
        "pool's true shares (oracle)": np.bincount(truth, minlength=num_classes) / len(truth),
    }
    print(f"{run}: classes {data.label_names}")
    for name, prior in shares.items():
        rows = agreement_rows(probs, votes, prior, cfg.recipe.keep)
        accuracy = (probs[rows].argmax(axis=1) == truth[rows]).mean()
        print(f"  {name:<28} shares {np.round(prior, 3)}: {len(rows)} kept, "
              f"pseudo-label accuracy {100 * accuracy:.1f}%")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for folder in sys.argv[1:]:
        check(folder)
