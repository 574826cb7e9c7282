"""Active-learning query strategies: which candidate texts to label next.

Pure math on numpy arrays (sklearn, scipy); no models, no disk. Each strategy is a function
`(PoolView, n, rng) -> Selection`, registered by name in STRATEGIES:

- random: a uniform draw, the baseline.
- least_confidence, entropy, margin: uncertainty sampling (Settles 2009, "Active Learning Literature Survey");
  margin is "breaking ties", the smallest gap between the two most probable classes.
- bald: mutual information between the prediction and the weights, from MC-dropout passes
  (Houlsby et al. 2011; Gal et al. 2017).
- kmeans: the row nearest each k-means centroid of the embeddings, the cold-start default
  (Chang et al. 2021; small-text's EmbeddingKMeans).
- typicality: the densest row of each cluster that holds no labeled text, TypiClust (Hacohen et al. 2022).
- coreset: greedy k-center from the labeled set (Sener & Savarese 2018).
- badge: k-means++ seeding on gradient embeddings (Ash et al. 2020).
- cal: contrastive active learning, KL between the predictions of a row and of its labeled neighbours
  (Margatina et al. 2021).
- knn_disagreement (ours): the model's prediction disagrees with a vote of the labeled neighbours in embedding
  space; ranked by the vote's confidence times the model's.
- balanced_<name>: any of the above with the picks spread over predicted classes (class_balanced).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from scipy import sparse
from scipy.stats import entropy as shannon_entropy
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.metrics import pairwise_distances, pairwise_distances_argmin_min
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

NEEDS = frozenset({"probs", "mc_probs", "labeled"})
NEED_HINTS = {
    "probs": "model class probabilities (a warm start from a finished run directory)",
    "mc_probs": "MC-dropout class probabilities (a warm start from a finished run directory)",
    "labeled": "at least one labeled text with its embedding and label",
}
CAL_NEIGHBOURS = 10  # k of Margatina et al. 2021
VOTE_NEIGHBOURS = 10  # labeled neighbours voting in knn_disagreement and in the cold-start class_balanced
TYPICALITY_NEIGHBOURS = 20  # k of Hacohen et al. 2022
PROB_FLOOR = 1e-12  # keeps log(0) out of the KL divergence
DISTANCE_FLOOR = 1e-12  # a row duplicated in its cluster is maximally typical, not a division by zero


@dataclass
class PoolView:
    """What a strategy may read about the candidate rows (the pool minus already-labeled rows). Row i of every array
    is candidate i."""

    embeddings: np.ndarray  # [N, D] float32, L2-normalised sentence embeddings of the candidates
    probs: np.ndarray | None = None  # [N, C] model class probabilities (warm start); None on a cold start
    mc_probs: np.ndarray | None = None  # [T, N, C] MC-dropout probabilities (T stochastic passes), for BALD
    labeled_embeddings: np.ndarray | None = None  # [M, D] embeddings of the labeled texts (M may be 0)
    labeled_labels: np.ndarray | None = None  # [M] int label ids of those texts
    grad_embeddings: np.ndarray | None = None  # [N, C*D'] BADGE gradient embeddings, if the caller computes them
    labeled_probs: np.ndarray | None = None  # [M, C] model probabilities of the labeled texts (CAL); else one-hot

    def __post_init__(self):
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2:
            raise ValueError(f"embeddings must be [N, D]; got shape {self.embeddings.shape}")
        n_rows = len(self.embeddings)
        for name, ndim, axis in (("probs", 2, 0), ("mc_probs", 3, 1), ("grad_embeddings", 2, 0)):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float32 if name == "grad_embeddings" else np.float64)
                if value.ndim != ndim or value.shape[axis] != n_rows:
                    raise ValueError(f"{name} has shape {value.shape}; it needs {ndim} axes with the {n_rows} "
                                     f"candidates on axis {axis}, like embeddings {self.embeddings.shape}")
                setattr(self, name, value)
        if (self.labeled_embeddings is None) != (self.labeled_labels is None):
            raise ValueError("labeled_embeddings and labeled_labels come together; got only one of them")
        if self.labeled_embeddings is not None:
            self.labeled_embeddings = np.asarray(self.labeled_embeddings, dtype=np.float32).reshape(
                -1, self.embeddings.shape[1])
            self.labeled_labels = np.asarray(self.labeled_labels, dtype=np.int64)
            if self.labeled_labels.shape != (len(self.labeled_embeddings),):
                raise ValueError(f"labeled_labels has shape {self.labeled_labels.shape}; it needs one label per "
                                 f"labeled embedding ({len(self.labeled_embeddings)})")
            classes = self.num_classes or 0
            bad = self.labeled_labels[(self.labeled_labels < 0) | (self.labeled_labels >= classes)]
            if len(bad):
                raise ValueError(f"labeled_labels holds {sorted(set(bad.tolist()))}, outside the {classes} classes")
        if self.labeled_probs is not None:
            self.labeled_probs = np.asarray(self.labeled_probs, dtype=np.float64)
            if self.labeled_probs.shape[0] != self.num_labeled:
                raise ValueError(f"labeled_probs has {self.labeled_probs.shape[0]} rows for {self.num_labeled} "
                                 "labeled texts")

    @property
    def num_labeled(self) -> int:
        return 0 if self.labeled_labels is None else len(self.labeled_labels)

    @property
    def num_classes(self) -> int | None:
        """From the model's probabilities where there are any, else from the labels seen."""
        if self.probs is not None:
            return self.probs.shape[1]
        if self.mc_probs is not None:
            return self.mc_probs.shape[2]
        return int(self.labeled_labels.max()) + 1 if self.num_labeled else None

    def subset(self, rows: np.ndarray) -> PoolView:
        """The same view restricted to some candidates (the labeled texts stay)."""
        return replace(
            self,
            embeddings=self.embeddings[rows],
            probs=None if self.probs is None else self.probs[rows],
            mc_probs=None if self.mc_probs is None else self.mc_probs[:, rows],
            grad_embeddings=None if self.grad_embeddings is None else self.grad_embeddings[rows],
        )


@dataclass
class Selection:
    indices: np.ndarray  # [n] int positions into the candidates, in the order chosen, no repeats
    scores: np.ndarray  # [n] float, the strategy's score of each chosen row (higher = chosen earlier/more informative)

    def __post_init__(self):
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)


@dataclass(frozen=True)
class Strategy:
    name: str
    select: Callable[[PoolView, int, np.random.Generator], Selection]
    needs: frozenset[str]  # subset of {"probs", "mc_probs", "labeled"}; "embeddings" always available
    description: str


def _has(view: PoolView, need: str) -> bool:
    return view.num_labeled > 0 if need == "labeled" else getattr(view, need) is not None


def _checked(name: str, select: Callable, needs: frozenset[str]) -> Callable:
    """select with the checks every strategy shares: 0 <= n <= N and the inputs it needs are there."""

    def run(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
        n_rows = len(view.embeddings)
        if not 0 <= n <= n_rows:
            raise ValueError(f"{name}: asked for {n} texts to label but the pool has {n_rows} unlabeled candidates; "
                             f"ask for between 0 and {n_rows}")
        missing = [NEED_HINTS[need] for need in sorted(needs) if not _has(view, need)]
        if missing:
            raise ValueError(f"{name} needs {' and '.join(missing)}; provide them or pick a strategy that does not "
                             "(kmeans, typicality, coreset or random work from embeddings alone)")
        if n == 0:
            return Selection(np.empty(0), np.empty(0))
        return select(view, n, rng)

    return run


def _seed(rng: np.random.Generator) -> int:
    """An int seed for sklearn, drawn from the caller's generator so the whole selection follows its seed."""
    return int(rng.integers(np.iinfo(np.int32).max))


def _top(scores: np.ndarray, n: int) -> Selection:
    """The n highest scores; ties go to the lower row."""
    order = np.argsort(-scores, kind="stable")[:n]
    return Selection(order, scores[order])


def _round_robin(groups: np.ndarray, priority: np.ndarray, group_priority: np.ndarray, n: int) -> np.ndarray:
    """The best row of every group (groups in order of group_priority), then the second best of each, ...;
    higher priority goes first, ties to the lower row."""
    by_group = np.lexsort((-priority, groups))
    depth = np.empty(len(groups), dtype=np.int64)
    depth[by_group] = np.arange(len(groups)) - np.searchsorted(groups[by_group], groups[by_group])
    return np.lexsort((-group_priority[groups], depth))[:n]


def random(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    return _top(rng.random(len(view.embeddings)), n)


def least_confidence(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    return _top(1 - view.probs.max(axis=1), n)


def entropy(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    return _top(shannon_entropy(view.probs, axis=1), n)


def margin(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    second, first = np.sort(view.probs, axis=1)[:, -2:].T
    return _top(1 - (first - second), n)


def bald(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    """Entropy of the mean prediction minus the mean entropy of the passes: high where confident passes disagree."""
    mc = view.mc_probs
    return _top(shannon_entropy(mc.mean(axis=0), axis=1) - shannon_entropy(mc, axis=2).mean(axis=0), n)


def kmeans(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    """n clusters; the row nearest each centroid, largest cluster first. Score: the cluster's share of the pool."""
    x = view.embeddings
    fit = KMeans(n_clusters=n, n_init=1, random_state=_seed(rng)).fit(x)
    closeness = -np.linalg.norm(x - fit.cluster_centers_[fit.labels_], axis=1)
    sizes = np.bincount(fit.labels_, minlength=n)
    order = _round_robin(fit.labels_, closeness, sizes, n)  # round robin tops up when a cluster came out empty
    return Selection(order, sizes[fit.labels_[order]] / len(x))


def typicality(view: PoolView, n: int, rng: np.random.Generator, k: int = TYPICALITY_NEIGHBOURS) -> Selection:
    """TypiClust: n + M clusters; from each cluster without a labeled text, largest first, the row with the highest
    typicality (inverse mean distance to its k nearest neighbours in the cluster)."""
    x = view.embeddings
    n_clusters = min(len(x), n + view.num_labeled)
    fit = KMeans(n_clusters=n_clusters, n_init=1, random_state=_seed(rng)).fit(x)
    typical = np.zeros(len(x))
    for cluster in np.unique(fit.labels_):
        rows = np.flatnonzero(fit.labels_ == cluster)
        if len(rows) > 1:
            distances, _ = NearestNeighbors(n_neighbors=min(k, len(rows) - 1)).fit(x[rows]).kneighbors()
            typical[rows] = 1 / (distances.mean(axis=1) + DISTANCE_FLOOR)
    sizes = np.bincount(fit.labels_, minlength=n_clusters)
    covered = np.zeros(n_clusters, dtype=bool)
    if view.num_labeled:
        covered[fit.predict(view.labeled_embeddings)] = True
    order = _round_robin(fit.labels_, typical, sizes - covered * (len(x) + 1), n)  # uncovered clusters first
    return Selection(order, typical[order])


def coreset(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    """Greedy k-center: each pick is the row farthest from the labeled texts and the earlier picks (a random first
    pick on a cold start, scored by the radius it covers alone). Own loop: sklearn has no k-center."""
    x = view.embeddings
    nearest = pairwise_distances_argmin_min(x, view.labeled_embeddings)[1] if view.num_labeled else None
    chosen, scores = [], []
    for _ in range(n):
        pick = int(rng.integers(len(x))) if nearest is None else int(np.argmax(nearest))
        to_pick = pairwise_distances(x, x[pick : pick + 1]).ravel()
        scores.append(to_pick.max() if nearest is None else nearest[pick])
        nearest = to_pick if nearest is None else np.minimum(nearest, to_pick)
        nearest[pick] = -np.inf
        chosen.append(pick)
    return Selection(chosen, scores)


def badge_embeddings(probs: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """[N, C], [N, H] -> [N, C*H]: the last layer's loss gradient under the predicted label,
    (p - onehot(argmax p)) outer hidden."""
    probs = np.asarray(probs, dtype=np.float32)
    residual = probs - np.eye(probs.shape[1], dtype=np.float32)[probs.argmax(axis=1)]
    return np.einsum("nc,nh->nch", residual, np.asarray(hidden, dtype=np.float32)).reshape(len(probs), -1)


def badge(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
    """k-means++ seeding on gradient embeddings (grad_embeddings, else probs x embeddings): far apart and large.
    Score: the gradient embedding's norm."""
    grads = view.grad_embeddings if view.grad_embeddings is not None else badge_embeddings(view.probs, view.embeddings)
    _, picked = kmeans_plusplus(grads, n, random_state=_seed(rng), n_local_trials=1)
    order = np.array(list(dict.fromkeys(picked.tolist())), dtype=np.int64)  # k-means++ repeats a row only once
    rest = np.setdiff1d(np.arange(len(grads)), order)[: n - len(order)]  # every row left duplicates a centre
    order = np.concatenate([order, rest])
    return Selection(order, np.linalg.norm(grads[order], axis=1))


def cal(view: PoolView, n: int, rng: np.random.Generator, k: int = CAL_NEIGHBOURS) -> Selection:
    """Mean KL(p(labeled neighbour) || p(candidate)) over the k nearest labeled texts; a neighbour's distribution is
    labeled_probs where given, else its one-hot label."""
    k = min(k, view.num_labeled)
    neighbours = NearestNeighbors(n_neighbors=k).fit(view.labeled_embeddings).kneighbors(
        view.embeddings, return_distance=False)
    labeled = view.labeled_probs if view.labeled_probs is not None else np.eye(view.num_classes)[view.labeled_labels]
    mean_over_neighbours = sparse.csr_array(
        (np.full(neighbours.size, 1 / k), neighbours.ravel(), np.arange(0, neighbours.size + 1, k)),
        shape=(len(neighbours), view.num_labeled))
    # mean KL = mean cross-entropy - mean neighbour entropy; written so no [N, k, C] array is built
    cross_entropy = -((mean_over_neighbours @ labeled) * np.log(np.clip(view.probs, PROB_FLOOR, None))).sum(axis=1)
    return _top(cross_entropy - mean_over_neighbours @ shannon_entropy(labeled, axis=1), n)


def knn_votes(view: PoolView, k: int = VOTE_NEIGHBOURS) -> np.ndarray:
    """[N, C] distance-weighted share of each class among the k nearest labeled texts of every candidate (weighted,
    so that a few labels do not tie)."""
    knn = KNeighborsClassifier(n_neighbors=min(k, view.num_labeled), weights="distance")
    knn.fit(view.labeled_embeddings, view.labeled_labels)
    votes = np.zeros((len(view.embeddings), view.num_classes))
    votes[:, knn.classes_] = knn.predict_proba(view.embeddings)
    return votes


def knn_disagreement(view: PoolView, n: int, rng: np.random.Generator, k: int = VOTE_NEIGHBOURS) -> Selection:
    """Rows whose predicted class differs from the labeled neighbours' vote, the surest vote x surest model first;
    agreeing rows follow, least sure agreement first."""
    votes = knn_votes(view, k)
    strength = votes.max(axis=1) * view.probs.max(axis=1)
    return _top(np.where(votes.argmax(axis=1) != view.probs.argmax(axis=1), strength, -strength), n)


def _quotas(available: np.ndarray, held: np.ndarray, n: int) -> np.ndarray:
    """Water-filling: each pick goes to the class with the fewest labels so far that still has candidates."""
    given = np.zeros_like(available)
    for _ in range(n):
        given[np.argmin(np.where(given < available, held + given, np.inf))] += 1
    return given


def class_balanced(strategy: Strategy) -> Strategy:
    """The strategy run inside each predicted class (model argmax on a warm start, labeled-kNN vote on a cold one),
    with quotas that even out the labeled set's class counts (as small-text's ClassBalancer); picks interleaved
    across classes, the least labeled class first."""

    def select(view: PoolView, n: int, rng: np.random.Generator) -> Selection:
        if view.probs is None and not view.num_labeled:
            raise ValueError(f"balanced_{strategy.name} needs {NEED_HINTS['probs']} or {NEED_HINTS['labeled']} to "
                             f"know the classes; use {strategy.name} (or kmeans) on a cold start with nothing labeled")
        classes = view.probs.argmax(axis=1) if view.probs is not None else knn_votes(view).argmax(axis=1)
        held = np.zeros(view.num_classes, dtype=np.int64)
        if view.num_labeled:
            held += np.bincount(view.labeled_labels, minlength=view.num_classes)
        quota = _quotas(np.bincount(classes, minlength=view.num_classes), held, n)
        picks, scores, ranks = [], [], []
        for label in np.flatnonzero(quota):
            rows = np.flatnonzero(classes == label)
            chosen = strategy.select(view.subset(rows), int(quota[label]), rng)
            picks.append(rows[chosen.indices])
            scores.append(chosen.scores)
            ranks.append(-np.arange(len(chosen.indices)))
        picks, scores = np.concatenate(picks), np.concatenate(scores)
        order = _round_robin(classes[picks], np.concatenate(ranks), -held, n)
        return Selection(picks[order], scores[order])

    name = f"balanced_{strategy.name}"
    description = f"{strategy.description}, spread evenly over the predicted classes"
    return Strategy(name, _checked(name, select, strategy.needs), strategy.needs, description)


def _strategy(name: str, select: Callable, needs: set[str], description: str) -> Strategy:
    return Strategy(name, _checked(name, select, frozenset(needs)), frozenset(needs), description)


_BASE = [
    _strategy("random", random, set(), "uniform random draw"),
    _strategy("least_confidence", least_confidence, {"probs"}, "lowest top-class probability"),
    _strategy("entropy", entropy, {"probs"}, "highest predictive entropy"),
    _strategy("margin", margin, {"probs"}, "smallest gap between the two most probable classes (breaking ties)"),
    _strategy("bald", bald, {"mc_probs"}, "highest mutual information over MC-dropout passes (BALD)"),
    _strategy("kmeans", kmeans, set(), "nearest text to each embedding k-means centroid (cold-start default)"),
    _strategy("typicality", typicality, set(), "most typical text of each uncovered cluster (TypiClust)"),
    _strategy("coreset", coreset, set(), "greedy k-center in embedding space (core-set)"),
    _strategy("badge", badge, {"probs"}, "k-means++ seeding on gradient embeddings (BADGE)"),
    _strategy("cal", cal, {"probs", "labeled"}, "largest KL from the labeled neighbours' predictions (CAL)"),
    _strategy("knn_disagreement", knn_disagreement, {"probs", "labeled"},
              "model prediction disagrees with the labeled neighbours' vote"),
]
STRATEGIES: dict[str, Strategy] = {s.name: s for s in _BASE} | {b.name: b for b in map(class_balanced, _BASE)}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown active-learning strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
