"""`ssl-text distill` killed with SIGKILL while its teacher labels the data (cached in shards) and while the
student trains, resumed with --resume: the cache and the student equal an uninterrupted run's, and no
shard written before a kill is computed again."""

import json
import os
import random
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ssl_text.pipelines.distill import load_distill_config, teacher_targets
from ssl_text.pipelines.simclrv2 import stage_done
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
from tests.toy_data import TOPICS

STEPS = 6
SHARD_SIZE = 16
NUM_SHARDS = 12  # the toy config's 184 unlabeled rows in shards of 16
KILL_SEEDS = [3, 8, 13]  # draw the teacher passes of the two kills while labelling, and the student step of the third
SECONDS_PER_SHARD = 0.5  # the killed runs' teacher pauses after each pass: the kill lands before the shard is saved
COMPARED_METRICS = ("selected_step", "validation_history", "validation", "test", "confusion_matrix")
TIMINGS = ("reused", "seconds", "created")


def make_teacher(tiny_bert_dir: str, path: Path) -> Path:
    """A classifier on the tiny BERT with a random head for the toy topics (sorted, as the data names them)."""
    torch.manual_seed(1)
    names = sorted(TOPICS)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(path)
    return path


def distill_args(toy_config, teacher: Path, tmp_path: Path, name: str) -> tuple[list[str], Path]:
    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=STEPS, eval_every=2, save_every=1, keep_checkpoints=STEPS, log_every=2)
    raw["output_dir"] = str(tmp_path / name)
    raw["distill"] = {"teacher": str(teacher), "temperature": 2.0, "alpha": 0.5, "shard_size": SHARD_SIZE}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return ["distill", str(config)], Path(raw["output_dir"])


def shard_mtimes(out: Path) -> dict[str, int]:
    return mtimes(out / ".teacher_targets.shards", "shard_*.parquet")


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMINGS}


@pytest.mark.slow
def test_distillation_killed_while_labelling_and_training_then_resumed_equals_an_uninterrupted_run(
    toy_config, tiny_bert_dir, tmp_path
):
    teacher = make_teacher(tiny_bert_dir, tmp_path / "teacher")
    args, ref = distill_args(toy_config, teacher, tmp_path, "reference")
    ref_passes = TeacherPasses(tmp_path / "reference_passes.log")
    finish(start(args, ref_passes))
    assert ref_passes.count("shard") == NUM_SHARDS

    args, out = distill_args(toy_config, teacher, tmp_path, "killed")
    passes = TeacherPasses(tmp_path / "killed_passes.log")
    rngs = [random.Random(seed) for seed in KILL_SEEDS]
    first, second, student_step = rngs[0].randint(1, 4), rngs[1].randint(2, 4), rngs[2].randint(1, STEPS - 2)

    def run_until(condition, what):
        proc = start(args + (["--resume"] if out.exists() else []), passes, SECONDS_PER_SHARD)
        wait_until(proc, condition, what)
        sigkill(proc)

    run_until(lambda: passes.count("shard") == first, f"teacher pass {first}")
    written = shard_mtimes(out)
    assert len(written) == first - 1, "the kill did not land while the teacher labelled a shard"

    run_until(lambda: passes.count("shard") == first + second, f"teacher pass {first + second}")
    now = shard_mtimes(out)
    assert len(now) == first + second - 2 and not (out / "teacher_targets").exists()
    assert_untouched(written, now, "shards")

    run_until(lambda: (out / f"checkpoints/step_{student_step:07d}").is_dir(), f"student step {student_step}")
    assert (out / "teacher_targets" / "manifest.json").is_file() and not (out / ".teacher_targets.shards").exists()
    assert not (out / "metrics.json").exists(), "the student finished before the kill"
    checkpoints = mtimes(out, "checkpoints/step_*/model.safetensors")

    finish(start(args + ["--resume"], passes))
    assert passes.count("shard") == NUM_SHARDS + 2, "shards were computed again (only the 2 killed mid-pass may be)"
    assert_untouched(checkpoints, mtimes(out, "checkpoints/step_*/model.safetensors"), "student checkpoints")
    got, expected = (datasets.load_from_disk(str(d / "teacher_targets")) for d in (out, ref))
    assert got["index"] == expected["index"] and got["text"] == expected["text"]
    assert np.array_equal(np.asarray(got["pseudo_target"]), np.asarray(expected["pseudo_target"]))
    manifest, ref_manifest = (json.loads((d / "teacher_targets" / "manifest.json").read_text()) for d in (out, ref))
    assert without_timings(manifest) == without_timings(ref_manifest)

    assert_same_weights(ref / "best", out / "best")
    assert_same_weights(ref / f"checkpoints/step_{STEPS:07d}", out / f"checkpoints/step_{STEPS:07d}")
    metrics, ref_metrics = (json.loads((d / "metrics.json").read_text()) for d in (out, ref))
    assert {k: metrics.get(k) for k in COMPARED_METRICS} == {k: ref_metrics.get(k) for k in COMPARED_METRICS}
    distilled, ref_distilled = metrics["distill"], ref_metrics["distill"]
    assert without_timings(distilled.pop("teacher_targets")) == without_timings(ref_distilled.pop("teacher_targets"))
    assert distilled == ref_distilled


def test_shards_left_by_a_stop_right_after_their_merge_are_removed_when_the_targets_are_reused(
    toy_config, tiny_bert_dir, tmp_path, monkeypatch
):
    teacher = make_teacher(tiny_bert_dir, tmp_path / "teacher")
    args, out = distill_args(toy_config, teacher, tmp_path, "stopped")
    cfg, dcfg = load_distill_config(args[1])
    targets, shards = out / "teacher_targets", out / ".teacher_targets.shards"
    real_replace = os.replace

    def replace_then_stop(src, dst):
        real_replace(src, dst)
        if Path(dst) == targets:
            raise KeyboardInterrupt  # stopped after the merged targets were renamed into place

    monkeypatch.setattr(os, "replace", replace_then_stop)
    with pytest.raises(KeyboardInterrupt):
        teacher_targets(cfg, teacher, dcfg.temperature, targets, SHARD_SIZE)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (targets / "manifest.json").is_file() and len(list(shards.glob("shard_*.parquet"))) == NUM_SHARDS

    manifest = teacher_targets(cfg, teacher, dcfg.temperature, targets, SHARD_SIZE)
    assert manifest["reused"] is True and not shards.exists()


def test_a_distillation_stopped_before_its_own_metrics_is_not_a_finished_pipeline_stage(tmp_path):
    (tmp_path / "best").mkdir()
    (tmp_path / "metrics.json").write_text(json.dumps({"algorithm": "distill", "test": {}}))  # the student's run only
    assert not stage_done("distill", tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"algorithm": "distill", "test": {}, "distill": {}}))
    assert stage_done("distill", tmp_path)
