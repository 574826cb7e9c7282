"""scripts/benchmark_recipe.py's report on hand-made run folders (no model, no data files)."""

from __future__ import annotations

import json

import benchmark_recipe as bench


def fake_run(folder, accuracy: float) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"test_last_step": {"accuracy": accuracy, "macro_f1": accuracy},
                                                     "test": {"accuracy": accuracy}, "selected_on": "last_step"}))


def test_report_pairs_seeds_and_shares_the_sst2_ceiling(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "OUT", tmp_path)
    for seed, (recipe, supervised, setfit) in enumerate([(0.70, 0.60, 0.65), (0.72, 0.74, 0.71), (0.80, 0.62, 0.81)]):
        fake_run(tmp_path / "sst2_64" / f"recipe_seed{seed}" / "student", recipe)
        fake_run(tmp_path / "sst2_64" / f"supervised_seed{seed}", supervised)
    fake_run(tmp_path / "sst2_16" / "ceiling_seed0", 0.92)  # the 16- and 64-label settings share one ceiling
    peers = {"methods": ["setfit"], "seeds": [0, 1, 2],
             "per_seed": {str(k): {"setfit": {"accuracy": a, "macro_f1": a, "seconds": 60}}
                          for k, a in enumerate([0.65, 0.71, 0.81])}}
    (tmp_path / "peers_sst2_64.json").write_text(json.dumps(peers))
    text = bench.report("sst2_64")
    assert "recipe above supervised on 2 of 3 seeds (seeds 0, 2)" in text
    assert "recipe above setfit on 2 of 3 seeds (seeds 0, 1)" in text
    assert "| ceiling | 92.0 ± 0.0 | 92.0 |" in text
    recipe, supervised = (70 + 72 + 80) / 3, (60 + 74 + 62) / 3
    assert f"= {(recipe - supervised) / (92 - supervised):.2f}" in text


def test_zoo_arms_run_the_ag_news_settings_of_their_algorithm_and_are_reported(tmp_path, monkeypatch):
    from benchmark import ALGORITHM_ARGS

    from ssl_text.training.run_config import load_config

    cfg = load_config(bench.ROOT / "configs" / "sst2_benchmark.yaml", bench.arm_overrides("pi_model"))
    assert cfg.algorithm.name == "pi_model" and cfg.algorithm.lambda_u == 10.0  # not the config's `supervised`
    assert bench.arm_overrides("fixmatch") == ALGORITHM_ARGS["fixmatch"] and bench.arm_overrides("recipe") == []
    monkeypatch.setattr(bench, "OUT", tmp_path)
    for seed, (recipe, pi_model) in enumerate([(0.70, 0.60), (0.72, 0.74)]):
        fake_run(tmp_path / "banking77" / f"recipe_seed{seed}" / "student", recipe)
        fake_run(tmp_path / "banking77" / f"pi_model_seed{seed}", pi_model)
    text = bench.report("banking77")
    assert "| pi_model | 67.0 ± 7.0 | 60.0 / 74.0 |" in text
    assert "recipe above pi_model on 1 of 2 seeds (seeds 0)" in text
