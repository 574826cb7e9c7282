"""End-to-end runs on a tiny random BERT: every algorithm, resume, CLI, pipeline loading."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from ssl_text.algorithms import ALGORITHMS
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import RunDirError
from tests.conftest import assert_scores_match_confusion_matrix


def run(raw, **kwargs):
    return train(parse_config(raw), **kwargs)


def encoder_weight(path: Path) -> torch.Tensor:
    state = load_file(str(path / "model.safetensors"))
    key = next(k for k in state if k.endswith("encoder.layer.0.attention.self.query.weight"))
    return state[key]


def teacher_labeled_pool(path: Path) -> str:
    """Unlabeled toy texts with a teacher's soft targets, as `ssl-text self-train` writes them."""
    from tests.toy_data import TOPICS, make_texts

    names = sorted(TOPICS)
    with open(path, "w") as f:
        for topic, text in make_texts(40, seed=7):
            target = [0.7 if n == topic else 0.1 for n in names]
            f.write(json.dumps({"text": text, "pseudo_target": target, "analysis_label": names.index(topic)}) + "\n")
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_trains_a_few_steps(toy_config, tiny_bert_dir, tmp_path, name):
    raw = toy_config(name)
    if getattr(ALGORITHMS[name], "requires_ema", False):
        raw["trainer"]["ema_decay"] = 0.9
    if name in ("noisy_student", "distill"):  # a student learns from a pool its teacher labeled
        raw["data"]["unlabeled"] = {"path": teacher_labeled_pool(tmp_path / "pool.jsonl")}
        raw["data"]["sampling"]["rest_as_unlabeled"] = False
    metrics = run(raw)
    out = Path(raw["output_dir"])
    logs = metrics["last_train_logs"]
    assert logs["step"] == 4 and math.isfinite(logs["loss"])
    if name != "supervised":  # a mask is one 0/1 decision per unlabeled text: a share of the 8 (mu * lb_batch_size)
        assert logs["mask_rate"] * 8 == pytest.approx(round(logs["mask_rate"] * 8)) and "pseudo_label_accuracy" in logs
    assert not torch.equal(encoder_weight(out / "best"), encoder_weight(Path(tiny_bert_dir)))
    assert (out / "config.yaml").exists() and (out / "metrics.json").exists()
    assert_scores_match_confusion_matrix(metrics, num_rows=80)
    assert list((out / "logs").rglob("events.out.tfevents*")), "no TensorBoard log written"


@pytest.mark.parametrize("name", ["fixmatch", "uda"])
def test_an_ema_teacher_needs_the_trainers_ema_and_trains_with_it(toy_config, name):
    from ssl_text.config import ConfigError

    raw = toy_config(name, tau=0.01, teacher="ema")
    with pytest.raises(ConfigError, match="trainer.ema_decay"):
        run(raw)
    raw["trainer"]["ema_decay"] = 0.5
    logs = run(raw, overwrite=True)["last_train_logs"]
    assert logs["step"] == 4 and math.isfinite(logs["loss"]) and logs["mask_rate"] > 0


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run_exactly(toy_config, tmp_path):
    raw = toy_config("fixmatch", tau=0.3)
    raw["trainer"].update(max_steps=6, eval_every=3, save_every=3, keep_checkpoints=3)
    full = run(raw)
    full_dir = Path(raw["output_dir"])

    # A run stopped after step 3: the same directory with only the step-3 checkpoint left.
    stopped = tmp_path / "stopped"
    shutil.copytree(full_dir, stopped)
    shutil.rmtree(stopped / "checkpoints" / "step_0000006")
    for name in ("metrics.json",):
        (stopped / name).unlink()
    raw["output_dir"] = str(stopped)
    resumed = run(raw, resume=True)

    a = load_file(str(full_dir / "checkpoints/step_0000006/model.safetensors"))
    b = load_file(str(stopped / "checkpoints/step_0000006/model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert resumed["test"] == full["test"]
    assert resumed["last_train_logs"]["loss"] == full["last_train_logs"]["loss"]


def test_existing_run_dir_is_not_overwritten(toy_config):
    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=1)
    run(raw)
    before = (Path(raw["output_dir"]) / "metrics.json").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        run(raw)
    assert (Path(raw["output_dir"]) / "metrics.json").read_text() == before
    run(raw, overwrite=True)


def test_resume_with_a_different_config_is_refused(toy_config):
    from ssl_text.config import ConfigError

    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=2)
    run(raw)
    raw["trainer"]["learning_rate"] = 0.5
    with pytest.raises(ConfigError, match="trainer.learning_rate"):
        run(raw, resume=True)


def test_resume_of_a_run_saved_before_a_config_field_existed(toy_config):
    """A saved config that lacks fields added later (their defaults apply) still resumes."""
    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=2)
    run(raw)
    saved_path = Path(raw["output_dir"]) / "config.yaml"
    saved = yaml.safe_load(saved_path.read_text())
    for view in saved["views"].values():
        del view["pipeline"], view["o_word_prob"]  # as written by an older ssl-text
    saved_path.write_text(yaml.safe_dump(saved))
    raw["trainer"]["max_steps"] = 3
    with pytest.raises(Exception, match="trainer.max_steps"):  # a real change is still named ...
        run(raw, resume=True)
    raw["trainer"]["max_steps"] = 2
    assert run(raw, resume=True)["last_train_logs"]["step"] == 2  # ... the missing defaults are not


def cli(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "ssl_text", *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    return proc


@pytest.mark.slow
def test_cli_train_predict_evaluate_and_pipeline(toy_config, toy_files, tmp_path):
    raw = toy_config("fixmatch", tau=0.5)
    config_path = tmp_path / "cfg.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    proc = cli("train", str(config_path), "trainer.max_steps=3", "trainer.eval_every=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["algorithm"] == "fixmatch" and "accuracy" in summary["test"]

    run_dir = raw["output_dir"]
    inputs = tmp_path / "texts.txt"
    inputs.write_text("the team won the league match\nstock market and bank profit\n")
    out = tmp_path / "pred.jsonl"
    proc = cli("predict", run_dir, "--input", str(inputs), "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in records] == inputs.read_text().splitlines()
    for r in records:
        assert r["label"] in {"business", "politics", "science", "sports"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)

    proc = cli("evaluate", run_dir, "--data", toy_files["test"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["accuracy"] == pytest.approx(summary["test"]["accuracy"])

    # The saved model loads with plain transformers, no ssl-text import.
    code = (
        "import sys, transformers; "
        "p = transformers.pipeline('text-classification', model=sys.argv[1]); "
        "print(p('stock market and bank profit')[0]['label'])"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(Path(run_dir) / "best")], capture_output=True, text=True,
                          cwd=tmp_path, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == records[1]["label"]


def test_cli_reports_bad_config_before_training(tmp_path, toy_config):
    raw = toy_config("fixmatch")
    raw["algorithm"]["name"] = "fixmach"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = cli("train", str(path))
    assert proc.returncode == 2
    assert "unknown algorithm `fixmach`" in proc.stderr and not Path(raw["output_dir"]).exists()


def test_trackers_follow_report_to(toy_config):
    from ssl_text.config import ConfigError

    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=2, report_to=[])
    metrics = run(raw)
    out = Path(raw["output_dir"])
    assert metrics["last_train_logs"]["step"] == 2 and not list(out.rglob("events.out.tfevents*"))
    assert (out / "plots" / "training_curves.png").exists()  # drawn from metrics.json's validation history
    for name, message in (("mlflow", "not installed; `pip install mlflow`"), ("tensorbord", "expected some of")):
        raw["trainer"]["report_to"] = [name]
        with pytest.raises(ConfigError, match=message):
            parse_config(raw)
