"""`ssl-text recipe` (ssl_text/pipelines/recipe.py) end to end on toy data with a tiny sentence-transformers model."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from transformers import AutoModelForSequenceClassification

from ssl_text.config import ConfigError
from ssl_text.pipelines.recipe import POOL, STUDENT, SUMMARY_FILE, WARM_START, recipe
from ssl_text.training.run_config import parse_config
from tests.test_mean_pooling import make_sentence_transformer


@pytest.fixture(scope="module")
def st_dir(tiny_bert_dir, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("st_recipe") / "model"
    return make_sentence_transformer(tiny_bert_dir, folder, {"embedding_dimension": 32, "pooling_mode": "mean"})


def recipe_config(toy_config, st_dir, **recipe_settings) -> dict:
    raw = toy_config("fixmatch")  # the recipe ignores `algorithm`: its student trains noisy_student
    raw["model"]["name_or_path"] = st_dir
    raw["recipe"] = {"warm_start_iterations": 2, "warm_start_batch_size": 4, "keep": 0.5, "student_steps": 4,
                     **recipe_settings}
    return raw


def test_the_recipe_writes_its_three_stages_and_a_student_plain_transformers_loads(toy_config, st_dir, tmp_path):
    raw = recipe_config(toy_config, st_dir)
    raw["trainer"]["mixed_precision"] = "bf16"  # SetFit's trainer sets Accelerate's state to its own precision first
    AcceleratorState._reset_state()  # a fresh process, as a command is: earlier tests set the state's precision
    cfg = parse_config(raw, "test")
    metrics = recipe(cfg)
    out = tmp_path / "run_fixmatch"
    assert (out / WARM_START / "modules.json").is_file()
    stats = json.loads((out / POOL / "stats.json").read_text())
    pool = datasets.load_from_disk(str(out / POOL))
    assert stats["kept"] == len(pool) and 0 < len(pool) <= 0.5 * stats["pool_size"] + len(stats["class_distribution"])
    assert stats["agreeing"] >= stats["kept"] and "pseudo_label_accuracy" in stats
    targets = np.asarray(pool["pseudo_target"])
    assert np.all(targets.sum(axis=1) == 1) and set(np.unique(targets)) == {0.0, 1.0}  # one-hot
    student_cfg = (out / STUDENT / "config.yaml").read_text()
    assert "noisy_student" in student_cfg and str(out / WARM_START) in student_cfg
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert set(summary["seconds"]) == {WARM_START, POOL, STUDENT}
    assert metrics["test"] == summary["student"]["test"] and "test_last_step" in metrics
    model = AutoModelForSequenceClassification.from_pretrained(out / STUDENT / "best", trust_remote_code=True)
    assert type(model).__name__ == "MeanPoolingForSequenceClassification"

    # --resume keeps every finished stage
    stamps = {p: p.stat().st_mtime_ns for p in (out / WARM_START / "model.safetensors", out / POOL / "stats.json")}
    again = recipe(parse_config(raw, "test"), resume=True)
    assert again["test"] == metrics["test"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    resumed = json.loads((out / SUMMARY_FILE).read_text())["seconds"]
    assert resumed[WARM_START] == summary["seconds"][WARM_START] > 0  # a kept stage keeps the time it took


def test_the_warm_start_moves_same_label_texts_together(toy_config, st_dir, tmp_path):
    """The contrastive stage trains: same-label labeled pairs end up more similar than before, relative to others."""
    from sentence_transformers import SentenceTransformer

    from ssl_text.pipelines.recipe import warm_start
    from ssl_text.pipelines.unlabeled_pool import load_teacher_pool

    torch.manual_seed(0)
    cfg = parse_config(recipe_config(toy_config, st_dir, warm_start_iterations=20, warm_start_max_steps=1000), "test")
    data = load_teacher_pool(cfg, "test")
    folder = warm_start(cfg, data, tmp_path / "warm")
    labels = np.asarray(data.labeled["label"])
    same = labels[:, None] == labels[None, :]

    def gap(path) -> float:
        e = SentenceTransformer(str(path), device="cpu").encode(list(data.labeled["text"]), normalize_embeddings=True)
        sim = e @ e.T
        return float(sim[same & ~np.eye(len(e), dtype=bool)].mean() - sim[~same].mean())

    assert gap(folder) > 1.5 * gap(st_dir)  # a tiny random encoder at SetFit's learning rate moves little


def test_the_warm_start_trains_in_fp32_even_in_a_bf16_run(toy_config, st_dir, tmp_path, monkeypatch):
    """The warm start stays in fp32 when the student trains in bf16: under bf16 autocast its pseudo-labels were 1 to
    5 points less accurate (docs/benchmarks.md). Weights are saved in fp32."""
    import setfit
    from safetensors.torch import load_file

    from ssl_text.pipelines.recipe import warm_start
    from ssl_text.pipelines.unlabeled_pool import load_teacher_pool

    seen = []
    real = setfit.Trainer.train_embeddings

    def record(self, *args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(setfit.Trainer, "train_embeddings", record)
    raw = recipe_config(toy_config, st_dir)
    raw["trainer"]["mixed_precision"] = "bf16"
    cfg = parse_config(raw, "test")
    folder = warm_start(cfg, load_teacher_pool(cfg, "test"), tmp_path / "warm")
    assert seen == [False]
    assert {t.dtype for t in load_file(folder / "model.safetensors").values()} == {torch.float32}


@pytest.mark.parametrize("cap, batches", [(None, -1), (3, 3), (10_000, "setfit's")])
def test_the_warm_start_trains_setfits_own_batches_unless_capped(toy_config, st_dir, tmp_path, monkeypatch, capfd,
                                                                  cap, batches):
    """By default SetFit's own count of batches, as the SetFit peer trains (-1: setfit's `max_steps` unset); a cap
    above that count is that count. SetFit's warning about its untrained head (the recipe trains its own) is not
    printed."""
    import setfit

    from ssl_text.pipelines.recipe import warm_start
    from ssl_text.pipelines.unlabeled_pool import load_teacher_pool

    seen = []
    real = setfit.TrainingArguments
    monkeypatch.setattr(setfit, "TrainingArguments", lambda **kwargs: seen.append(kwargs["max_steps"]) or real(**kwargs))
    settings = {} if cap is None else {"warm_start_max_steps": cap}  # None: the default, not set in the config
    cfg = parse_config(recipe_config(toy_config, st_dir, **settings), "test")
    assert cfg.recipe.warm_start_max_steps == cap
    data = load_teacher_pool(cfg, "test")
    warm_start(cfg, data, tmp_path / "warm")
    pairs = 2 * cfg.recipe.warm_start_iterations * len(data.labeled)  # SetFit: 2 pairs per text and iteration
    assert seen == [-(-pairs // cfg.recipe.warm_start_batch_size) if batches == "setfit's" else batches]
    printed = capfd.readouterr()
    assert "You should TRAIN" not in printed.err + printed.out and "pin_memory" not in printed.err  # body only


def test_the_warm_start_runs_on_the_configs_threads(toy_config, st_dir, tmp_path, monkeypatch):
    """`trainer.num_threads` holds from the recipe's start: the warm start ran on torch's default of every core
    before the student's trainer set it (2x slower with two quickstart runs on 2 cores)."""
    import ssl_text.pipelines.recipe as recipe_module

    class Seen(Exception):
        pass

    def record(*args):
        raise Seen(torch.get_num_threads())

    monkeypatch.setattr(recipe_module, "warm_start", record)
    raw = recipe_config(toy_config, st_dir)
    raw["trainer"]["num_threads"] = 1
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with pytest.raises(Seen) as seen:
            recipe(parse_config(raw, "test"))
    finally:
        torch.set_num_threads(before)
    assert seen.value.args == (1,)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"task": "ner"}, "classifies whole texts"),
        ({"recipe": {"keep": 0.0}}, "recipe.keep"),
        ({"recipe": {"warm_start_iterations": 0}}, "recipe.warm_start_iterations"),
        ({"recipe": {"warm_start_max_steps": 0}}, "recipe.warm_start_max_steps"),
        ({"data.sampling": {"num_per_class": 3, "seed": 0, "rest_as_unlabeled": False}}, "data.unlabeled"),
    ],
)
def test_bad_settings_stop_the_recipe_before_it_writes(toy_config, st_dir, tmp_path, change, message):
    raw = recipe_config(toy_config, st_dir)
    for key, value in change.items():
        if key == "data.sampling":
            raw["data"]["sampling"] = value
        elif key == "recipe":
            raw["recipe"].update(value)
        else:
            raw[key] = value
            raw["views"] = {"strong": {"mask_prob": 0.2, "delete_prob": 0.0}}  # views NER accepts
    with pytest.raises(ConfigError, match=message):
        recipe(parse_config(raw, "test"))
    assert not (tmp_path / "run_fixmatch").exists()


def test_the_recipe_refuses_several_processes_before_it_writes(toy_config, st_dir, tmp_path, monkeypatch):
    from accelerate import PartialState

    PartialState()  # the shared state exists; then it says two processes, as under `accelerate launch`
    monkeypatch.setitem(PartialState._shared_state, "num_processes", 2)
    with pytest.raises(ConfigError, match="runs in one process"):
        recipe(parse_config(recipe_config(toy_config, st_dir), "test"))
    assert not (tmp_path / "run_fixmatch").exists()
