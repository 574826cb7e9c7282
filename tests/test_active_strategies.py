"""Active-learning strategies on hand-made probabilities and embeddings: each test pins the choice."""

import warnings

import numpy as np
import pytest
from scipy.special import rel_entr

from ssl_text.active import STRATEGIES, PoolView, get_strategy
from ssl_text.active.strategies import _quotas, _round_robin, badge_embeddings, cal, knn_disagreement

BASE = ["random", "least_confidence", "entropy", "margin", "bald", "kmeans", "typicality", "coreset", "badge", "cal",
        "knn_disagreement"]


def rng(seed=0):
    return np.random.default_rng(seed)


def unit(*rows):
    rows = np.asarray(rows, dtype=float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def axis(i, dim=8, **offsets):
    """The unit vector e_i, moved by offsets {"j": amount} along other axes, re-normalised."""
    row = np.zeros(dim)
    row[i] = 1.0
    for j, amount in offsets.items():
        row[int(j[1:])] += amount
    return row / np.linalg.norm(row)


def cluster(i, pairs, spread=0.05, dim=8):
    """e_i and pairs of rows mirrored around it: e_i is the centroid's direction and the densest row."""
    others = [j for j in range(dim) if j != i]
    rows = [axis(i, dim)]
    for pair in range(pairs):
        other = f"e{others[pair % len(others)]}"
        rows += [axis(i, dim, **{other: spread}), axis(i, dim, **{other: -spread})]
    return rows


def picks(name, view, n, seed=0):
    return get_strategy(name).select(view, n, rng(seed)).indices.tolist()


def test_uncertainty_strategies_each_pick_their_own_row():
    probs = np.array([
        [0.49, 0.48, 0.02, 0.01],  # 0: smallest top-2 gap (0.01)
        [0.40, 0.20, 0.20, 0.20],  # 1: most spread (entropy 1.33)
        [0.38, 0.32, 0.30, 0.00],  # 2: lowest top probability (0.38)
        [0.97, 0.01, 0.01, 0.01],  # 3: confident
    ])
    view = PoolView(unit(*np.eye(4)), probs=probs)
    assert picks("margin", view, 4) == [0, 2, 1, 3]
    assert picks("entropy", view, 1) == [1]
    assert picks("least_confidence", view, 1) == [2]
    selection = get_strategy("margin").select(view, 1, rng())
    assert selection.scores[0] == pytest.approx(1 - 0.01)


def test_bald_ranks_disagreeing_passes_above_agreeing_ones():
    mc_probs = np.array([
        [[0.99, 0.01], [0.99, 0.01], [0.5, 0.5]],
        [[0.99, 0.01], [0.01, 0.99], [0.5, 0.5]],
    ])  # row 0 confident and agreeing, row 1 confident and disagreeing, row 2 unsure in both passes
    selection = get_strategy("bald").select(PoolView(unit(*np.eye(3)), mc_probs=mc_probs), 3, rng())
    assert selection.indices.tolist()[0] == 1
    scores = dict(zip(selection.indices.tolist(), selection.scores))
    assert scores[1] == pytest.approx(np.log(2) - (-(0.99 * np.log(0.99) + 0.01 * np.log(0.01))))
    assert scores[0] == pytest.approx(0, abs=1e-9) and scores[2] == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_takes_each_well_separated_cluster_by_its_centre(seed):
    sizes = [41, 13, 5, 3]
    rows, starts = [], []
    for i, size in enumerate(sizes):
        starts.append(len(rows))
        rows += cluster(i, size // 2)
    selection = get_strategy("kmeans").select(PoolView(np.array(rows)), 4, rng(seed))
    assert selection.indices.tolist() == starts  # e_i itself, largest cluster first
    assert selection.scores.tolist() == pytest.approx([size / len(rows) for size in sizes])


def test_typicality_takes_the_densest_row_of_the_cluster_without_a_label():
    rows = cluster(0, 3) + cluster(1, 2) + [axis(1, e5=0.4)]  # cluster 1 has an outlier
    view = PoolView(np.array(rows), labeled_embeddings=[axis(0, e3=0.02)], labeled_labels=[0])
    assert picks("typicality", view, 1) == [7]  # e_1, not the outlier and not cluster 0, which holds a label
    assert picks("typicality", view, 2)[0] == 7


def test_coreset_takes_the_farthest_row_then_the_farthest_from_both():
    candidates = unit([0.95, 0.05, 0, 0], [0, 1, 0, 0], [-1, 0, 0, 0])
    view = PoolView(candidates, labeled_embeddings=unit([1, 0, 0, 0]), labeled_labels=[0])
    selection = get_strategy("coreset").select(view, 2, rng())
    assert selection.indices.tolist() == [2, 1]
    assert selection.scores.tolist() == pytest.approx([2.0, np.sqrt(2)])


def test_coreset_cold_start_follows_the_seed_and_spreads():
    rows = np.array(cluster(0, 2) + cluster(1, 2) + cluster(2, 2))
    for seed in range(4):
        first = picks("coreset", PoolView(rows), 3, seed)
        assert first == picks("coreset", PoolView(rows), 3, seed)
        assert sorted(i // 5 for i in first) == [0, 1, 2]


def test_badge_embeddings_are_the_last_layer_gradient_under_the_predicted_label():
    grads = badge_embeddings(np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([[1.0, 2.0], [1.0, 0.0]]))
    np.testing.assert_allclose(grads, [[-0.3, -0.6, 0.3, 0.6], [0.2, 0.0, -0.2, 0.0]], atol=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_badge_takes_the_uncertain_rows_and_spreads(seed):
    probs = np.array([[1.0, 0.0]] * 4 + [[0.5, 0.5], [0.6, 0.4]])  # confident rows have zero gradient
    view = PoolView(unit(*np.eye(6)), probs=probs)
    assert {4, 5} <= set(picks("badge", view, 3, seed))
    grads = np.repeat(np.eye(2), 5, axis=0)  # two groups of five identical gradient embeddings
    spread = picks("badge", PoolView(unit(*np.eye(10)), probs=np.full((10, 2), 0.5), grad_embeddings=grads), 2, seed)
    assert sorted(i // 5 for i in spread) == [0, 1]


def two_labeled_clusters():
    """Five labeled texts near e_0 (class 0) and five near e_1 (class 1)."""
    return dict(labeled_embeddings=np.array(cluster(0, 2) + cluster(1, 2)), labeled_labels=[0] * 5 + [1] * 5)


def test_cal_picks_the_row_whose_prediction_departs_from_its_labeled_neighbours():
    candidates = np.array([axis(0, e4=0.1), axis(0, e5=0.1), axis(1, e4=0.1)])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9]])
    selection = cal(PoolView(candidates, probs=probs, **two_labeled_clusters()), 3, rng(), k=5)
    assert selection.indices.tolist()[0] == 1
    assert selection.scores[0] == pytest.approx(-np.log(0.2))  # KL(one-hot class 0 || p) = -log p_0


def test_cal_with_neighbour_probabilities_is_the_mean_kl():
    generator = rng(3)
    candidates, labeled = unit(*generator.normal(size=(12, 6))), unit(*generator.normal(size=(7, 6)))
    probs, labeled_probs = generator.dirichlet(np.ones(3), 12), generator.dirichlet(np.ones(3), 7)
    view = PoolView(candidates, probs=probs, labeled_embeddings=labeled, labeled_labels=labeled_probs.argmax(1),
                    labeled_probs=labeled_probs)
    selection = cal(view, 12, rng(), k=3)
    distances = np.linalg.norm(candidates[:, None] - labeled[None], axis=2)
    neighbours = np.argsort(distances, axis=1)[:, :3]
    expected = np.array([np.mean([rel_entr(labeled_probs[j], probs[i]).sum() for j in neighbours[i]])
                         for i in range(12)])
    assert selection.scores == pytest.approx(expected[selection.indices])
    assert selection.indices.tolist() == np.argsort(-expected, kind="stable").tolist()


def test_knn_disagreement_finds_the_planted_row():
    candidates = np.array([axis(0, e4=0.1), axis(0, e5=0.1), axis(0, e6=0.1), axis(0, e7=0.1), axis(1, e4=0.1)])
    probs = np.array([
        [0.9, 0.1],
        [0.1, 0.9],  # planted: the neighbours say 0, the model says 1, surely
        [0.8, 0.2],
        [0.45, 0.55],  # disagrees, unsurely
        [0.2, 0.8],
    ])
    selection = knn_disagreement(PoolView(candidates, probs=probs, **two_labeled_clusters()), 5, rng(), k=5)
    assert selection.indices.tolist()[:2] == [1, 3]
    assert selection.scores[0] == pytest.approx(0.9) and (selection.scores[2:] < 0).all()


def test_class_balanced_spreads_picks_over_predicted_classes():
    probs = np.array([[0.52, 0.48], [0.55, 0.45], [0.51, 0.49], [0.6, 0.4], [0.53, 0.47], [0.54, 0.46],
                      [0.2, 0.8], [0.1, 0.9], [0.3, 0.7], [0.05, 0.95]])  # every class-0 row is less sure
    view = PoolView(unit(*np.eye(10)), probs=probs)
    assert picks("margin", view, 4) == [2, 0, 4, 5]
    assert picks("balanced_margin", view, 4) == [2, 8, 0, 6]  # interleaved, most uncertain of each class first
    labeled = dict(labeled_embeddings=unit(*np.eye(10)[:3]), labeled_labels=[0, 0, 1])
    assert picks("balanced_margin", PoolView(unit(*np.eye(10)), probs=probs, **labeled), 3) == [8, 2, 6]


def test_class_balanced_cold_start_uses_the_labeled_neighbours_vote():
    rows = np.array(cluster(0, 10) + cluster(1, 1))  # 21 rows of class 0, 3 of class 1
    labeled = dict(labeled_embeddings=[axis(0, e5=0.01), axis(1, e5=0.01)], labeled_labels=[0, 1])
    for seed in range(6):
        assert sorted(i >= 21 for i in picks("balanced_random", PoolView(rows, **labeled), 2, seed)) == [False, True]
    with pytest.raises(ValueError, match="know the classes"):
        get_strategy("balanced_random").select(PoolView(rows), 2, rng())


def test_quotas_even_out_the_labeled_counts_within_what_the_pool_holds():
    assert _quotas(np.array([5, 1, 5]), np.array([0, 0, 2]), 6).tolist() == [4, 1, 1]


def test_round_robin_takes_one_per_group_before_seconds():
    groups = np.array([0, 0, 1, 1, 2])
    order = _round_robin(groups, np.array([1.0, 2.0, 5.0, 3.0, 0.0]), np.array([0, 2, 1]), 5)
    assert order.tolist() == [2, 4, 1, 3, 0]


def test_random_is_deterministic_under_a_seed():
    view = PoolView(unit(*rng().normal(size=(50, 4))))
    assert picks("random", view, 10, seed=7) == picks("random", view, 10, seed=7)
    assert picks("random", view, 10, seed=7) != picks("random", view, 10, seed=8)


def full_view(n_rows=30, n_classes=3):
    generator = rng(11)
    return PoolView(
        unit(*generator.normal(size=(n_rows, 8))),
        probs=generator.dirichlet(np.ones(n_classes), n_rows),
        mc_probs=generator.dirichlet(np.ones(n_classes), (4, n_rows)),
        labeled_embeddings=unit(*generator.normal(size=(6, 8))),
        labeled_labels=[0, 1, 2, 0, 1, 2],
    )


def test_the_registry_holds_every_strategy_and_its_balanced_form():
    assert set(STRATEGIES) == set(BASE) | {f"balanced_{name}" for name in BASE}
    with pytest.raises(ValueError, match="unknown active-learning strategy 'nope'.*margin"):
        get_strategy("nope")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_picks_n_distinct_rows_deterministically(name):
    view = full_view()
    for n in (7, 30):
        selection = get_strategy(name).select(view, n, rng(5))
        assert len(selection.indices) == n == len(set(selection.indices.tolist())) == len(selection.scores)
        assert selection.indices.min() >= 0 and selection.indices.max() < 30
        assert np.isfinite(selection.scores).all()
        assert selection.indices.tolist() == get_strategy(name).select(view, n, rng(5)).indices.tolist()
    assert len(get_strategy(name).select(view, 0, rng()).indices) == 0
    with pytest.raises(ValueError, match="asked for 31 texts.*30 unlabeled candidates"):
        get_strategy(name).select(view, 31, rng())


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_identical_rows_are_still_picked_once_each(name):
    view = full_view(n_rows=6)
    same = PoolView(np.repeat(view.embeddings[:1], 6, axis=0), probs=np.repeat(view.probs[:1], 6, axis=0),
                    mc_probs=np.repeat(view.mc_probs[:, :1], 6, axis=1), labeled_embeddings=view.labeled_embeddings,
                    labeled_labels=view.labeled_labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-means notes it found fewer distinct points than clusters
        assert sorted(get_strategy(name).select(same, 6, rng()).indices.tolist()) == list(range(6))


@pytest.mark.parametrize("name", [name for name in sorted(STRATEGIES) if STRATEGIES[name].needs])
def test_a_missing_input_is_named(name):
    with pytest.raises(ValueError, match="needs .*(warm start|labeled text)"):
        get_strategy(name).select(PoolView(full_view().embeddings), 3, rng())


def test_pool_view_names_a_misshapen_input():
    with pytest.raises(ValueError, match="probs has shape \\(3, 2\\)"):
        PoolView(unit(*np.eye(4)), probs=np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="labeled_labels holds \\[5\\]"):
        PoolView(unit(*np.eye(4)), probs=np.full((4, 2), 0.5), labeled_embeddings=np.eye(4)[:1], labeled_labels=[5])
