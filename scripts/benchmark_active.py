"""Active-learning benchmark (issue #19): which texts to label, with a simulated annotator.

    OMP_NUM_THREADS=1 python scripts/benchmark_active.py --dataset agnews|banking77 [--arms random,margin,...]
                                                         [--seeds 0,1,2] [--cold-seeds 0,...,9]
    python scripts/benchmark_active.py --report       # figures (docs/figures/) and markdown tables from the results
    python scripts/benchmark_active.py --ssl --dataset agnews --strategy badge [--budget 40] [--seed 0] [--print-only]

The pool is the dataset's benchmark config's labeled file read whole by the project's loading (AG News
train_sample5000.csv, 5,000 texts; Banking77 train.csv, 10,003), its labels hidden: the annotator reveals the label
of each row a strategy picks. The test set is the config's (AG News test.csv, 7,600; Banking77 test.csv without
the 6 queries that also appear in train.csv, 3,074, as scripts/benchmark_recipe.py writes it).

Encoder: all-MiniLM-L6-v2 (packaged), frozen, sentence-transformers' mean pooling, max_seq_length 64,
L2-normalised; embedded once per dataset and cached in runs/benchmark/active/<dataset>_embeddings.npz. Learner,
refitted from scratch after every round: scikit-learn LogisticRegression(C=100, max_iter=1000) (lbfgs, multinomial;
LEARNER says how C was chosen) on the embeddings of the labeled rows; its probabilities over the pool are what the
strategies read. Each arm starts from nothing: the first batch comes from a cold-start strategy (embedding k-means
for ours, except `random` and `typicality`), the later ones from the arm's strategy, up to the dataset's budgets.
small-text 1.4.1 runs its BreakingTies (started from the same k-means batch as ours) and EmbeddingKMeans through its
PoolBasedActiveLearner with the same learner (SklearnClassifierFactory of the same LogisticRegression) on the same
embeddings and seeds.

Results: runs/benchmark/active/<dataset>.json (per arm and seed: accuracy and macro-F1 on the test set at every
budget, the rows chosen in order, seconds; the cold-start table). Running some arms replaces only theirs.

`--ssl` trains the recommended semi-supervised recipe (`ssl-text recipe`, issue #18) on the rows an arm chose up
to a budget (by default each of the issue's budget points): it writes them as a labeled_rows.jsonl
(data.sampling.rows_from; the rest of the pool unlabeled) under runs/benchmark/active/ssl/<dataset>/
<arm>_seed<k>_<budget>/ and runs `ssl-text recipe` on them (`--print-only` prints the command).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from bench_common import ROOT, RUNS, offline

offline()
OUT = RUNS / "active"
FIGURES = ROOT / "docs" / "figures"
ENCODER = "packaged:all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 64
EMBED_BATCH_SIZE = 64
COLD_START = "kmeans"  # the first batch of every arm of ours but random and typicality (the registry's default)
SEEDS = (0, 1, 2)
COLD_SEEDS = tuple(range(10))  # the cold-start table is cheap: more seeds than the curves


@dataclass(frozen=True)
class Dataset:
    config: str  # the issue #18 benchmark config: data, model and trainer (for --ssl)
    budgets: tuple[int, ...]  # labels after each round
    cold_sizes: tuple[int, ...]  # the cold-start table: labels chosen at once from nothing
    ssl_budgets: tuple[int, ...]  # where the issue trains the semi-supervised recipe


DATASETS = {
    "agnews": Dataset("configs/agnews_benchmark.yaml", (8, 16, 24, 40, 60, 80, 100, 150, 200), (8, 16), (40, 100, 200)),
    "banking77": Dataset("configs/banking77_benchmark.yaml", (77, 154, 231, 385, 578, 770, 1000), (77, 154),
                         (385, 770)),
}


@dataclass(frozen=True)
class Arm:
    cold: str  # the registry strategy (or small-text query strategy) of the first batch
    warm: str  # ... of every later batch
    library: str = "ours"  # or "small-text"


ARMS = {
    "random": Arm("random", "random"),
    "margin": Arm(COLD_START, "margin"),
    "balanced_margin": Arm(COLD_START, "balanced_margin"),
    "badge": Arm(COLD_START, "badge"),
    "coreset": Arm(COLD_START, "coreset"),
    "cal": Arm(COLD_START, "cal"),
    "knn_disagreement": Arm(COLD_START, "knn_disagreement"),
    "balanced_knn_disagreement": Arm(COLD_START, "balanced_knn_disagreement"),
    "typicality": Arm("typicality", "typicality"),
    "typicality_after_kmeans": Arm(COLD_START, "typicality"),  # added after the first results (docs/benchmarks.md)
    "balanced_badge": Arm(COLD_START, "balanced_badge"),  # added for the 40-vs-100 target (docs/benchmarks.md)
    "smalltext_breaking_ties": Arm(COLD_START, "BreakingTies", "small-text"),
    "smalltext_embedding_kmeans": Arm("EmbeddingKMeans", "EmbeddingKMeans", "small-text"),
}
COLD_STRATEGIES = ("random", "kmeans", "typicality", "coreset", "smalltext_embedding_kmeans")


# The learner: C chosen once, before any strategy ran, on the pool alone (random draws of 8 to 200 AG News and 77 to
# 1,000 Banking77 labels, scored on the rest of the pool; mean accuracy C=1: 58.0 / 43.9, 10: 63.8 / 64.7,
# 100: 64.7 / 67.0, 1000: 65.1 / 67.3): the project's peer setting C=1.0 is so strong a prior on unit-length
# embeddings that a few labels give the majority class everywhere (25% on AG News at 8 labels). 100 rather than 1000:
# within 0.4 points, better from 100 AG News labels on, and less extreme probabilities for the uncertainty strategies.
LEARNER = {"C": 100.0, "max_iter": 1000}


def learner_settings() -> dict:
    return dict(LEARNER)


# ---------------------------------------------------------------------------------------------------------------
# The loop: a selector picks rows, the annotator reveals their labels, the learner is refitted and tested
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Round:
    """What a selector may read before a batch: the rows labeled so far (pool positions, in the order chosen), their
    revealed labels, and the learner's class probabilities over the whole pool (None before the first batch)."""

    labeled: np.ndarray
    labels: np.ndarray
    probs: np.ndarray | None


class Selector(Protocol):
    def __call__(self, state: Round, n: int) -> np.ndarray: ...  # n pool positions, none of them labeled


class Learner:
    """LogisticRegression on the embeddings of the labeled rows; probabilities over every class (0 for a class
    without a label yet; one class alone gives probability 1)."""

    def __init__(self, num_classes: int, seed: int):
        self.num_classes, self.seed = num_classes, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        from sklearn.linear_model import LogisticRegression

        classes = np.unique(y)
        if len(classes) == 1:
            return lambda rows: np.tile(np.eye(self.num_classes)[classes[0]], (len(rows), 1))
        model = LogisticRegression(**learner_settings(), random_state=self.seed).fit(x, y)

        def predict_proba(rows: np.ndarray) -> np.ndarray:
            probs = np.zeros((len(rows), self.num_classes))
            probs[:, model.classes_] = model.predict_proba(rows)
            return probs

        return predict_proba


def scores(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = probs.argmax(axis=1)
    labels = np.arange(probs.shape[1])  # a class never predicted counts with F1 0
    return float(accuracy_score(y, pred)), float(f1_score(y, pred, labels=labels, average="macro", zero_division=0))


def run_curve(select: Selector, pool_x: np.ndarray, pool_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
              budgets: tuple[int, ...], num_classes: int, seed: int) -> dict:
    """Rounds up to each budget: `select` picks the next rows, their labels are revealed, the learner refitted and
    scored on the test set. Returns the curve, the rows in the order chosen and the classes covered."""
    learner = Learner(num_classes, seed)
    labeled = np.empty(0, dtype=np.int64)
    probs = None
    curve = {"budgets": [], "accuracy": [], "macro_f1": [], "classes_covered": [], "select_seconds": 0.0}
    started = time.perf_counter()
    for budget in budgets:
        n = budget - len(labeled)
        if n <= 0:
            raise ValueError(f"budgets must increase; got {budgets}")
        t0 = time.perf_counter()
        picks = np.asarray(select(Round(labeled, pool_y[labeled], probs), n), dtype=np.int64)
        curve["select_seconds"] += time.perf_counter() - t0
        if len(picks) != n or len(np.unique(picks)) != n or np.isin(picks, labeled).any():
            raise RuntimeError(f"a selector returned {len(picks)} rows ({len(np.unique(picks))} distinct, "
                               f"{int(np.isin(picks, labeled).sum())} already labeled) when asked for {n} new ones")
        labeled = np.concatenate([labeled, picks])
        predict = learner.fit(pool_x[labeled], pool_y[labeled])
        probs = predict(pool_x)
        accuracy, macro_f1 = scores(predict(test_x), test_y)
        curve["budgets"].append(budget)
        curve["accuracy"].append(accuracy)
        curve["macro_f1"].append(macro_f1)
        curve["classes_covered"].append(int(len(np.unique(pool_y[labeled]))))
    curve["seconds"] = time.perf_counter() - started
    curve["labeled"] = labeled.tolist()
    return curve


def ours(cold: str, warm: str, pool_x: np.ndarray, seed: int) -> Selector:
    """The registry's strategies (ssl_text/active/strategies.py): `cold` for the first batch, `warm` after; the
    candidates are the unlabeled rows; CAL reads the learner's probabilities of the labeled rows."""
    from ssl_text.active.strategies import PoolView, get_strategy

    rng = np.random.default_rng(seed)
    everything = np.arange(len(pool_x))

    def select(state: Round, n: int) -> np.ndarray:
        candidates = np.setdiff1d(everything, state.labeled)
        warm_start = state.probs is not None
        view = PoolView(
            embeddings=pool_x[candidates],
            probs=state.probs[candidates] if warm_start else None,
            labeled_embeddings=pool_x[state.labeled] if len(state.labeled) else None,
            labeled_labels=state.labels if len(state.labeled) else None,
            labeled_probs=state.probs[state.labeled] if warm_start else None,
        )
        return candidates[get_strategy(warm if warm_start else cold).select(view, n, rng).indices]

    return select


def small_text(cold: str, warm: str, pool_x: np.ndarray, num_classes: int, seed: int) -> Selector:
    """small-text's PoolBasedActiveLearner with `warm` (BreakingTies or EmbeddingKMeans) and our LogisticRegression
    (SklearnClassifierFactory). The first batch is small-text's EmbeddingKMeans when `cold` names it, else ours (the
    same initial set as our arms). Each call first tells the learner the labels of its previous query."""
    try:
        import small_text as st
    except ImportError:
        raise SystemExit("the small-text arms need small-text: pip install small-text==1.4.1") from None
    from sklearn.linear_model import LogisticRegression

    class FrozenEmbeddings(st.SklearnClassifier):
        """EmbeddingKMeans clusters `clf.embed(...)`: here the rows' features are the frozen sentence embeddings."""

        def embed(self, data_set, return_proba=False, pbar=None):
            return (data_set.x, self.predict_proba(data_set)) if return_proba else data_set.x

    class Factory(st.SklearnClassifierFactory):
        def new(self):
            return FrozenEmbeddings(LogisticRegression(**learner_settings(), random_state=seed), self.num_classes)

    queries = {"BreakingTies": st.BreakingTies, "EmbeddingKMeans": st.EmbeddingKMeans}
    # y of the pool is unknown to small-text: every label reaches it through initialize_data/update
    dataset = st.SklearnDataset(pool_x, np.full(len(pool_x), st.LABEL_UNLABELED), target_labels=np.arange(num_classes))
    learner = st.PoolBasedActiveLearner(Factory(LogisticRegression(), num_classes), queries[warm](), dataset)
    initial = None if cold in queries else ours(cold, cold, pool_x, seed)
    state_of = {"started": False, "queried": None, "calls": 0}

    def select(state: Round, n: int) -> np.ndarray:
        state_of["calls"] += 1
        np.random.seed(seed * 1000 + state_of["calls"])  # small-text's KMeans draws from numpy's global generator
        kwargs = {}
        if state_of["queried"] is not None:
            learner.update(state.labels[-len(state_of["queried"]):])
        elif not len(state.labeled) and initial is not None:
            return initial(state, n)
        elif not len(state.labeled):  # EmbeddingKMeans from nothing: no model yet, the embeddings are given
            learner.initialize_data(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), retrain=False)
            kwargs = {"embeddings": pool_x}
        else:
            learner.initialize_data(state.labeled, state.labels)
        if not np.array_equal(learner.indices_labeled, state.labeled):
            raise RuntimeError("small-text's labeled rows differ from the benchmark's")
        state_of["queried"] = np.asarray(learner.query(num_samples=n, query_strategy_kwargs=kwargs), dtype=np.int64)
        return state_of["queried"]

    return select


def selector(arm: str, pool_x: np.ndarray, num_classes: int, seed: int) -> Selector:
    spec = ARMS[arm]
    if spec.library == "small-text":
        return small_text(spec.cold, spec.warm, pool_x, num_classes, seed)
    return ours(spec.cold, spec.warm, pool_x, seed)


def cold_start(strategy: str, pool_x, pool_y, test_x, test_y, size: int, num_classes: int, seed: int) -> dict:
    """`size` rows chosen at once from nothing, the learner fitted on them and tested."""
    if strategy.startswith("smalltext_"):
        select = selector(strategy, pool_x, num_classes, seed)
    else:
        select = ours(strategy, strategy, pool_x, seed)
    curve = run_curve(select, pool_x, pool_y, test_x, test_y, (size,), num_classes, seed)
    return {"accuracy": curve["accuracy"][0], "macro_f1": curve["macro_f1"][0],
            "classes_covered": curve["classes_covered"][0]}


def normalised_auc(budgets: list[int], values: list[float]) -> float:
    """Area under the learning curve (trapezoids, labels on a linear axis) over the label range: the curve's mean
    height between the first and the last budget."""
    x = np.asarray(budgets, dtype=float)
    return float(np.trapezoid(values, x) / (x[-1] - x[0]))


# ---------------------------------------------------------------------------------------------------------------
# Data and embeddings
# ---------------------------------------------------------------------------------------------------------------


def load_dataset(name: str, sampling: list[str] | None = None):
    """(config, TextData) through the project's loading: the config's labeled file read whole (or sampled as
    `sampling` overrides say), the test set of scripts/benchmark_recipe.py, no validation split."""
    from benchmark_recipe import dataset_overrides

    from ssl_text.data.text_data import load_text_data
    from ssl_text.training.run_config import load_config

    if sampling is None:
        sampling = ["data.sampling.num_per_class=null", "data.sampling.rest_as_unlabeled=false"]
    overrides = [*dataset_overrides(name), *sampling]
    cfg = load_config(ROOT / DATASETS[name].config, overrides)
    cfg.data.validation = None
    return cfg, overrides, load_text_data(cfg.data)


def digest(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode("utf-8", "surrogatepass")).hexdigest()


def embeddings(name: str, pool_texts: list[str], test_texts: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """The pool's and the test set's sentence embeddings, from the cache when it holds these texts."""
    cache = OUT / f"{name}_embeddings.npz"
    key = {"encoder": ENCODER, "max_seq_length": MAX_SEQ_LENGTH, "pool": digest(pool_texts), "test": digest(test_texts)}
    if cache.is_file():
        stored = np.load(cache)
        if json.loads(str(stored["key"])) == key:
            return stored["pool"], stored["test"], json.loads(str(stored["timing"]))
    import torch
    from sentence_transformers import SentenceTransformer

    from ssl_text.models.resolve import resolve_model_path

    model = SentenceTransformer(resolve_model_path(ENCODER), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    started = time.perf_counter()
    pool, test = (model.encode(texts, batch_size=EMBED_BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False).astype(np.float32) for texts in (pool_texts, test_texts))
    seconds = time.perf_counter() - started
    texts = len(pool_texts) + len(test_texts)
    timing = {"seconds": round(seconds, 1), "texts": texts, "seconds_per_10k": round(seconds / texts * 10_000, 1),
              "torch_threads": torch.get_num_threads()}
    OUT.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(cache.stem + ".partial.npz")
    np.savez(partial, pool=pool, test=test, key=json.dumps(key), timing=json.dumps(timing))
    partial.replace(cache)
    return pool, test, timing


def machine() -> dict:
    import sklearn

    found = {"python": platform.python_version(), "sklearn": sklearn.__version__, "numpy": np.__version__,
             "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
             "date": time.strftime("%Y-%m-%d")}
    for module in ("small_text", "sentence_transformers"):
        try:
            found[module] = __import__(module).__version__
        except ImportError:
            found[module] = None
    return found


# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------


def results_path(name: str) -> Path:
    return OUT / f"{name}.json"


def run(args) -> None:
    spec = DATASETS[args.dataset]
    cfg, overrides, data = load_dataset(args.dataset)
    pool_texts, test_texts = list(data.labeled["text"]), list(data.test["text"])
    pool_y, test_y = np.asarray(data.labeled["label"]), np.asarray(data.test["label"])
    num_classes = len(data.label_names)
    pool_x, test_x, timing = embeddings(args.dataset, pool_texts, test_texts)
    print(f"{args.dataset}: pool {len(pool_texts)}, test {len(test_texts)}, {num_classes} classes; embeddings "
          f"{timing['seconds']} s for {timing['texts']} texts ({timing['seconds_per_10k']} s per 10,000)", flush=True)
    path = results_path(args.dataset)
    record = json.loads(path.read_text()) if path.is_file() else {"arms": {}, "cold_start": {}}
    record.update({"dataset": args.dataset, "config": spec.config, "overrides": overrides, "budgets": spec.budgets,
                   "label_names": data.label_names, "num_pool": len(pool_texts), "num_test": len(test_texts),
                   "encoder": ENCODER, "max_seq_length": MAX_SEQ_LENGTH, "learner": learner_settings(),
                   "embedding": timing, "machine": machine()})

    def save() -> None:
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(record, indent=1))
        partial.replace(path)

    # set here, after the imports above (one of them resets the filters): sklearn's hint for a few labels of many
    # classes (Banking77's first rounds, our fits and small-text's), and small-text 1.4.1's own deprecation notice
    warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
    warnings.filterwarnings("ignore", message="The function get_flattened_unique_labels has been deprecated")
    for arm in args.arms:
        record["arms"][arm] = {}
        for seed in args.seeds:
            curve = run_curve(selector(arm, pool_x, num_classes, seed), pool_x, pool_y, test_x, test_y, spec.budgets,
                              num_classes, seed)
            record["arms"][arm][str(seed)] = curve
            save()
            print(f"{arm} seed {seed}: accuracy " + " ".join(f"{a:.3f}" for a in curve["accuracy"])
                  + f"; AUC {normalised_auc(curve['budgets'], curve['accuracy']):.4f}; {curve['seconds']:.1f} s",
                  flush=True)
    if args.cold_seeds:
        for size in spec.cold_sizes:
            table = record["cold_start"].setdefault(str(size), {})
            for strategy in COLD_STRATEGIES:
                table[strategy] = {str(seed): cold_start(strategy, pool_x, pool_y, test_x, test_y, size, num_classes,
                                                         seed) for seed in args.cold_seeds}
                save()
                accuracies = [r["accuracy"] for r in table[strategy].values()]
                missing = sum(r["classes_covered"] < num_classes for r in table[strategy].values())
                print(f"cold start {size} {strategy}: mean accuracy {np.mean(accuracies):.4f}, seeds with a class "
                      f"unlabeled {missing}/{len(accuracies)}", flush=True)
    print(f"wrote {path}")


def ssl(args) -> int:
    """The recipe on the rows `args.strategy` chose up to `args.budget` (seed `args.seed`)."""
    from ssl_text.data.text_data import LabeledRow, labeled_rows_jsonl, text_hash

    path = results_path(args.dataset)
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `python scripts/benchmark_active.py --dataset {args.dataset}` first")
    curves = json.loads(path.read_text())["arms"]
    if args.strategy not in curves or str(args.seed) not in curves[args.strategy]:
        raise SystemExit(f"{path} has no {args.strategy} seed {args.seed}; arms there: {', '.join(curves)}")
    chosen = curves[args.strategy][str(args.seed)]["labeled"]
    budgets = [args.budget] if args.budget else DATASETS[args.dataset].ssl_budgets
    if not all(0 < budget <= len(chosen) for budget in budgets):
        raise SystemExit(f"--budget {args.budget}: that arm chose {len(chosen)} rows")
    from benchmark_recipe import dataset_overrides

    _, _, data = load_dataset(args.dataset)
    texts, labels = data.labeled["text"], data.labeled["label"]
    for budget in budgets:
        rows = [LabeledRow(i, text_hash(texts[i]), data.label_names[labels[i]]) for i in chosen[:budget]]
        folder = OUT / "ssl" / args.dataset / f"{args.strategy}_seed{args.seed}_{budget}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "labeled_rows.jsonl").write_text(labeled_rows_jsonl(rows), encoding="utf-8")
        command = ["ssl-text", "recipe", DATASETS[args.dataset].config, *dataset_overrides(args.dataset),
                   "data.sampling.num_per_class=null", f"data.sampling.rows_from={folder / 'labeled_rows.jsonl'}",
                   "data.sampling.rest_as_unlabeled=true", f"trainer.seed={args.seed}", f"output_dir={folder / 'run'}"]
        print(shlex.join(command), flush=True)
        if not args.print_only and subprocess.call(command, cwd=ROOT):
            return 1
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def arm_label(arm: str) -> str:
    spec = ARMS[arm]
    return arm if spec.cold == spec.warm or "after" in arm else f"{arm} (after {spec.cold})"


def figure(name: str, record: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharex=True)
    palette = iter([*(f"C{i}" for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)), "gold", "teal"])  # C7 (grey): too near random's black
    own_colour = [arm for arm in ARMS if arm not in ("random", "smalltext_breaking_ties")]
    color = {"random": "black"} | {arm: next(palette) for arm in own_colour}
    color["smalltext_breaking_ties"] = color["margin"]  # the same query as our margin: dashed in its colour
    for arm in (arm for arm in ARMS if arm in record["arms"]):  # the same order and colours in every figure
        seeds = record["arms"][arm]
        budgets = seeds[next(iter(seeds))]["budgets"]
        style = {"color": color[arm], "linestyle": "--" if ARMS[arm].library == "small-text" else "-",
                 "linewidth": 2.5 if arm == "random" else 1.5, "marker": "o", "markersize": 3}
        for ax, metric in zip(axes, ("accuracy", "macro_f1")):
            values = 100 * np.array([s[metric] for s in seeds.values()])
            mean, std = values.mean(axis=0), values.std(axis=0)
            ax.plot(budgets, mean, label=arm_label(arm), **style)
            ax.fill_between(budgets, mean - std, mean + std, color=style["color"], alpha=0.08)
    for ax, metric in zip(axes, ("test accuracy (%)", "test macro-F1 (%)")):
        ax.set_xscale("log")
        ax.set_xticks(record["budgets"], [str(b) for b in record["budgets"]])
        ax.minorticks_off()
        ax.set_xlabel("labels")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    seeds = sorted({int(s) for arm in record["arms"].values() for s in arm})
    fig.suptitle(f"{name}: LogisticRegression on frozen all-MiniLM-L6-v2 embeddings, mean ± std over seeds {seeds}")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    out = FIGURES / f"active_{name}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def report_markdown(name: str, record: dict) -> str:
    num_classes = len(record["label_names"])
    lines = [f"### {name}: area under the learning curve ({record['budgets'][0]} to {record['budgets'][-1]} labels)",
             "", "| arm | AUC accuracy | per seed | AUC macro-F1 | accuracy at each budget (mean) | s / seed |",
             "|---|---|---|---|---|---|"]
    rows = []
    for arm, seeds in record["arms"].items():
        auc = [100 * normalised_auc(s["budgets"], s["accuracy"]) for s in seeds.values()]
        auc_f1 = [100 * normalised_auc(s["budgets"], s["macro_f1"]) for s in seeds.values()]
        curve = 100 * np.mean([s["accuracy"] for s in seeds.values()], axis=0)
        seconds = np.mean([s["seconds"] for s in seeds.values()])
        rows.append((np.mean(auc), f"| {arm_label(arm)} | {np.mean(auc):.2f} ± {np.std(auc):.2f} | "
                     + " / ".join(f"{a:.2f}" for a in auc) + f" | {np.mean(auc_f1):.2f} ± {np.std(auc_f1):.2f} | "
                     + " ".join(f"{c:.1f}" for c in curve) + f" | {seconds:.1f} |"))
    lines += [row for _, row in sorted(rows, key=lambda r: -r[0])]
    for size, table in record.get("cold_start", {}).items():
        lines += ["", f"### {name}: cold start, {size} labels chosen at once from nothing", "",
                  "| strategy | accuracy, seeds 0-2 | per seed | accuracy, all seeds | seeds with a class unlabeled | "
                  f"classes labeled (of {num_classes}), mean |", "|---|---|---|---|---|---|"]
        for strategy, seeds in table.items():
            first = [100 * seeds[str(s)]["accuracy"] for s in SEEDS if str(s) in seeds]
            every = [100 * r["accuracy"] for r in seeds.values()]
            missing = sum(r["classes_covered"] < num_classes for r in seeds.values())
            lines.append(f"| {strategy} | {np.mean(first):.2f} ± {np.std(first):.2f} | "
                         + " / ".join(f"{a:.2f}" for a in first)
                         + f" | {np.mean(every):.2f} ± {np.std(every):.2f} ({len(every)} seeds) | {missing} of "
                         + f"{len(every)} (seeds 0-2: "
                         + f"{sum(seeds[str(s)]['classes_covered'] < num_classes for s in SEEDS if str(s) in seeds)})"
                         + f" | {np.mean([r['classes_covered'] for r in seeds.values()]):.1f} |")
    return "\n".join(lines)


def ssl_markdown(name: str) -> str | None:
    """The recipe trained on each arm's rows (`--ssl` runs): test accuracy of the student's last step per budget."""
    runs: dict[tuple[str, int], dict[int, dict]] = {}
    for metrics in sorted((OUT / "ssl" / name).glob("*_seed*_*/run/student/metrics.json")):
        arm, rest = metrics.parents[2].name.rsplit("_seed", 1)
        seed, budget = map(int, rest.split("_"))
        record = json.loads((metrics.parents[1] / "recipe.json").read_text())
        runs.setdefault((arm, budget), {})[seed] = {"metrics": json.loads(metrics.read_text()), "recipe": record}
    if not runs:
        return None
    lines = [f"### {name}: the recipe (`ssl-text recipe`) trained on the rows each arm chose", "",
             "| arm | labels | test accuracy, last step | per seed | macro-F1 | pseudo-label accuracy | wall minutes / run |",
             "|---|---|---|---|---|---|---|"]
    for (arm, budget), seeds in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0])):
        order = sorted(seeds)
        acc = [100 * seeds[k]["metrics"]["test_last_step"]["accuracy"] for k in order]
        f1 = [100 * seeds[k]["metrics"]["test_last_step"]["macro_f1"] for k in order]
        clean = [100 * seeds[k]["recipe"]["pool"]["pseudo_label_accuracy"] for k in order]
        minutes = [sum(seeds[k]["recipe"]["seconds"].values()) / 60 for k in order]
        lines.append(f"| {arm_label(arm)} | {budget} | {np.mean(acc):.2f} ± {np.std(acc):.2f} | "
                     + " / ".join(f"{a:.2f} (seed {k})" for a, k in zip(acc, order))
                     + f" | {np.mean(f1):.2f} ± {np.std(f1):.2f} | {np.mean(clean):.1f} | {np.mean(minutes):.1f} |")
    return "\n".join(lines)


def report(names: list[str]) -> None:
    for name in names:
        path = results_path(name)
        if not path.is_file():
            print(f"{path}: not run yet")
            continue
        record = json.loads(path.read_text())
        print(f"figure: {figure(name, record).relative_to(ROOT)}")
        print(report_markdown(name, record), "\n")
        ssl_table = ssl_markdown(name)
        if ssl_table:
            print(ssl_table, "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmark_active.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS))
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--cold-seeds", default=",".join(map(str, COLD_SEEDS)),
                        help="seeds of the cold-start table ('' skips it)")
    parser.add_argument("--report", action="store_true", help="figures and markdown from the results")
    parser.add_argument("--ssl", action="store_true", help="train the recipe on the rows --strategy chose")
    parser.add_argument("--strategy", choices=sorted(ARMS), help="--ssl: the arm whose rows are trained on")
    parser.add_argument("--budget", type=int, help="--ssl: the first BUDGET rows the arm chose (default: the issue's "
                        "points, 40,100,200 for agnews and 385,770 for banking77, one run each)")
    parser.add_argument("--seed", type=int, default=0, help="--ssl: the arm's seed (and the recipe's)")
    parser.add_argument("--print-only", action="store_true", help="--ssl: write the rows, print the command")
    args = parser.parse_args(argv)
    args.arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown {unknown}; choose from {', '.join(ARMS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s]
        args.cold_seeds = [int(s) for s in args.cold_seeds.split(",") if s]
    except ValueError:
        parser.error("--seeds and --cold-seeds take comma-separated integers, e.g. 0,1,2")
    if not args.report and args.dataset is None:
        parser.error("--dataset is required (or --report)")
    if args.ssl and (args.strategy is None or args.dataset is None):
        parser.error("--ssl needs --dataset and --strategy, e.g. --dataset agnews --strategy badge --budget 40")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        report([args.dataset] if args.dataset else list(DATASETS))
        return 0
    if args.ssl:
        return ssl(args)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
