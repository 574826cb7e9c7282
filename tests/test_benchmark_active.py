"""scripts/benchmark_active.py's loop on tiny synthetic embeddings (no model, no data files)."""

from __future__ import annotations

import importlib.util

import benchmark_active as bench
import numpy as np
import pytest

BUDGETS = (4, 8, 12, 20, 30)
NUM_CLASSES = 3


def blobs(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated clusters of L2-normalised 8-dimensional points, label = cluster."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % NUM_CLASSES
    centres = np.eye(8)[:NUM_CLASSES] * 3
    x = centres[y] + rng.normal(size=(rows, 8))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


POOL, TEST = blobs(90, 0), blobs(60, 1)


def curve(arm: str, seed: int = 0) -> dict:
    select = bench.selector(arm, POOL[0], NUM_CLASSES, seed)
    return bench.run_curve(select, *POOL, *TEST, BUDGETS, NUM_CLASSES, seed)


OUR_ARMS = [arm for arm, spec in bench.ARMS.items() if spec.library == "ours"]
SMALL_TEXT_ARMS = [arm for arm, spec in bench.ARMS.items() if spec.library == "small-text"]
needs_small_text = pytest.mark.skipif(importlib.util.find_spec("small_text") is None,
                                      reason="small-text is not installed (pip install small-text==1.4.1)")


@pytest.mark.parametrize("arm", OUR_ARMS + [pytest.param(a, marks=needs_small_text) for a in SMALL_TEXT_ARMS])
def test_curve_has_the_budgets_and_never_labels_a_row_twice(arm):
    result = curve(arm)
    assert result["budgets"] == list(BUDGETS)
    assert len(result["labeled"]) == BUDGETS[-1]
    assert len(set(result["labeled"])) == BUDGETS[-1]
    assert all(0 <= row < len(POOL[0]) for row in result["labeled"])
    assert len(result["accuracy"]) == len(result["macro_f1"]) == len(BUDGETS)
    assert result["accuracy"][-1] > 0.9  # separable blobs: every arm's learner gets them with 30 labels
    assert result["classes_covered"] == sorted(result["classes_covered"])


@pytest.mark.parametrize("arm", ["margin", "coreset",
                                 pytest.param("smalltext_embedding_kmeans", marks=needs_small_text)])
def test_a_seed_gives_the_same_rows(arm):
    assert curve(arm, seed=3)["labeled"] == curve(arm, seed=3)["labeled"]


@needs_small_text
def test_small_text_breaking_ties_starts_from_our_kmeans_batch():
    ours, theirs = curve("margin"), curve("smalltext_breaking_ties")
    assert ours["labeled"][: BUDGETS[0]] == theirs["labeled"][: BUDGETS[0]]


def test_a_selector_that_repeats_a_row_stops_the_loop():
    def repeats(state: bench.Round, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.int64) if len(state.labeled) else np.arange(n)

    with pytest.raises(RuntimeError, match="already labeled"):
        bench.run_curve(repeats, *POOL, *TEST, BUDGETS, NUM_CLASSES, 0)


def test_cold_start_reports_the_classes_covered():
    result = bench.cold_start("kmeans", *POOL, *TEST, 3, NUM_CLASSES, 0)
    assert result["classes_covered"] == 3  # one row from each of the three blobs


def test_normalised_auc_is_the_mean_height_of_the_curve():
    assert bench.normalised_auc([10, 20, 40], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # trapezoids: (0.2 + 0.4) / 2 * 10 + (0.4 + 1.0) / 2 * 20 = 17, over 30 labels
    assert bench.normalised_auc([10, 20, 40], [0.2, 0.4, 1.0]) == pytest.approx(17 / 30)


def test_ssl_table_groups_the_recipe_runs_by_arm_and_budget(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(bench, "OUT", tmp_path)
    for arm, seed, budget, accuracy in [("badge", 0, 40, 0.80), ("badge", 1, 40, 0.90), ("random", 0, 100, 0.85)]:
        run = tmp_path / "ssl" / "agnews" / f"{arm}_seed{seed}_{budget}" / "run"
        (run / "student").mkdir(parents=True)
        (run / "student" / "metrics.json").write_text(
            json.dumps({"test_last_step": {"accuracy": accuracy, "macro_f1": accuracy - 0.01}}))
        (run / "recipe.json").write_text(json.dumps({"seconds": {"warm_start": 60, "student": 120},
                                                     "pool": {"pseudo_label_accuracy": 0.9}}))
    rows = [line for line in bench.ssl_markdown("agnews").splitlines() if line.startswith("| badge")
            or line.startswith("| random")]
    assert rows[0].startswith("| badge (after kmeans) | 40 | 85.00 ± 5.00 | 80.00 (seed 0) / 90.00 (seed 1) | 84.00")
    assert rows[0].endswith("| 90.0 | 3.0 |")
    assert rows[1].startswith("| random | 100 | 85.00 ± 0.00 |")
    assert bench.ssl_markdown("banking77") is None


def test_the_learning_curve_figure_draws_every_arm_in_its_own_colour(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "FIGURES", tmp_path)
    seed = {"budgets": [8, 16], "accuracy": [0.5, 0.6], "macro_f1": [0.4, 0.5]}
    record = {"budgets": [8, 16], "arms": {arm: {"0": seed, "1": seed} for arm in bench.ARMS}}
    out = bench.figure("toy", record)  # every arm of the registry: the palette must not run out
    assert out == tmp_path / "active_toy.png" and out.stat().st_size > 0
