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


def test_a_zoo_run_stopped_by_the_collapse_guard_is_recorded_reported_and_skipped_next_time(tmp_path, monkeypatch):
    import ssl_text.pipelines.train as train_module
    from ssl_text.training.trainer import PseudoLabelCollapseError

    monkeypatch.setattr(bench, "OUT", tmp_path)

    def collapsing_train(cfg, overwrite):
        from pathlib import Path

        Path(cfg.output_dir).mkdir(parents=True)
        raise PseudoLabelCollapseError("step 100: possible pseudo-label collapse: ... so the run was stopped")

    monkeypatch.setattr(train_module, "train", collapsing_train)
    assert bench.run_one("sst2_16", "pi_model", 1, []) is None
    stopped = json.loads(bench.stopped_file("sst2_16", "pi_model", 1).read_text())
    assert stopped["stopped_by_collapse_guard"].startswith("step 100:") and stopped["cpu_minutes"] >= 0
    fake_run(tmp_path / "sst2_16" / "pi_model_seed0", 0.51)
    text = bench.report("sst2_16")
    assert "| pi_model | stopped by the collapse guard (exit status 5) at step 100 | | | | | 1 |" in text
    assert "| pi_model | 51.0 ± 0.0 | 51.0 |" in text
