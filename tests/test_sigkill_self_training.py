"""`ssl-text self-train` killed with SIGKILL at several points, resumed with --resume, equals an uninterrupted run."""

import json
import random
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml

from tests.sigkill import (
    TeacherPasses,
    assert_same_weights,
    assert_untouched,
    finish,
    mtimes,
    sigkill,
    start,
    wait_until,
)

ROUNDS = 2
STEPS = 6
KILL_SEEDS = [5, 17]  # draw the training steps of the kills in round 0 and round 1
SECONDS_PER_POOL = 1.0  # the killed runs' teacher pauses after labelling: the kill lands before the pool is saved
CHECKPOINT_WEIGHTS = "checkpoints/step_*/model.safetensors"
COMPARED_METRICS = ("selected_step", "validation_history", "validation", "test", "confusion_matrix")


def self_train_args(toy_config, tmp_path: Path, name: str) -> tuple[list[str], Path]:
    raw = toy_config("flexmatch", tau=0.3)  # a teacher with state of its own (class-wise thresholds)
    raw["trainer"].update(max_steps=STEPS, eval_every=2, save_every=1, keep_checkpoints=STEPS, log_every=2)
    raw["output_dir"] = str(tmp_path / name)
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return ["self-train", str(config), "--rounds", str(ROUNDS), "--tau", "0.0"], Path(raw["output_dir"])


def rounds_done(out: Path) -> list[int]:
    path = out / "rounds.json"
    return [r["round"] for r in json.loads(path.read_text())["rounds"]] if path.exists() else []


@pytest.mark.slow
def test_self_training_killed_in_every_phase_then_resumed_equals_an_uninterrupted_run(toy_config, tmp_path):
    args, ref = self_train_args(toy_config, tmp_path, "reference")
    ref_passes = TeacherPasses(tmp_path / "reference_passes.log")
    finish(start(args, ref_passes))
    assert rounds_done(ref) == list(range(ROUNDS + 1)) and ref_passes.count("pool") == ROUNDS

    args, out = self_train_args(toy_config, tmp_path, "killed")
    passes = TeacherPasses(tmp_path / "killed_passes.log")
    round0_step, round1_step = (random.Random(seed).randint(1, STEPS - 2) for seed in KILL_SEEDS)  # 2+ steps left

    def run_until(condition, what):
        proc = start(args + (["--resume"] if out.exists() else []), passes, SECONDS_PER_POOL)
        wait_until(proc, condition, what)
        sigkill(proc)

    run_until(lambda: (out / f"round_0/checkpoints/step_{round0_step:07d}").is_dir(), f"round 0 step {round0_step}")
    assert not (out / "round_0" / "metrics.json").exists(), "round 0 finished before the kill"
    round0_checkpoints = mtimes(out / "round_0", CHECKPOINT_WEIGHTS)

    run_until(lambda: passes.count("pool") == 1, "the teacher labelling the pool of round 1")
    assert rounds_done(out) == [0] and not (out / "pools" / "round_1").exists(), "the pool was saved before the kill"
    round0_outputs = mtimes(out / "round_0", "**/*.*")

    run_until(lambda: (out / f"round_1/checkpoints/step_{round1_step:07d}").is_dir(), f"round 1 step {round1_step}")
    assert not (out / "round_1" / "metrics.json").exists(), "round 1 finished before the kill"
    round1_checkpoints = mtimes(out / "round_1", CHECKPOINT_WEIGHTS)

    # killed while drawing its plots: the curves are drawn, then the confusion matrix, best/'s card and,
    # last, metrics.json (the mark of a finished round) and the round's record
    run_until(lambda: (out / "round_1" / "plots" / "training_curves.png").exists(), "round 1's first plot")
    assert not (out / "round_1" / "metrics.json").exists(), "round 1 was marked finished before the kill"
    assert rounds_done(out) == [0], "round 1's record was written before the kill"

    finish(start(args + ["--resume"], passes))
    assert json.loads((out / "rounds.json").read_text()) == json.loads((ref / "rounds.json").read_text())
    assert rounds_done(out) == list(range(ROUNDS + 1))
    assert passes.count("pool") == ROUNDS + 1, "a saved pool was labelled again (only the killed labelling may be)"
    assert_untouched(round0_checkpoints, mtimes(out / "round_0", CHECKPOINT_WEIGHTS), "round 0 checkpoints")
    assert_untouched(round1_checkpoints, mtimes(out / "round_1", CHECKPOINT_WEIGHTS), "round 1 checkpoints")
    assert mtimes(out / "round_0", "**/*.*") == round0_outputs, "the finished round 0 was trained again"
    for r in range(ROUNDS + 1):
        run, ref_run = out / f"round_{r}", ref / f"round_{r}"
        assert_same_weights(ref_run / "best", run / "best")
        assert_same_weights(ref_run / f"checkpoints/step_{STEPS:07d}", run / f"checkpoints/step_{STEPS:07d}")
        metrics, expected = (json.loads((d / "metrics.json").read_text()) for d in (run, ref_run))
        assert {k: metrics.get(k) for k in COMPARED_METRICS} == {k: expected.get(k) for k in COMPARED_METRICS}
    for r in range(1, ROUNDS + 1):
        pool, ref_pool = out / "pools" / f"round_{r}", ref / "pools" / f"round_{r}"
        assert (pool / "stats.json").read_text() == (ref_pool / "stats.json").read_text()
        got, expected = (datasets.load_from_disk(str(p)) for p in (pool, ref_pool))
        assert got["text"] == expected["text"]
        assert np.array_equal(np.asarray(got["pseudo_target"]), np.asarray(expected["pseudo_target"]))
