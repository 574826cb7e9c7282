"""The SimCLRv2 path: NT-Xent and distillation math, projection heads, alternate-layer students,
contrastive pretraining (text and protein), the pretrain -> finetune -> distill pipeline with its
resume and teacher-target cache, and two CPU processes under `accelerate launch`."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

import ssl_text.pipelines.distill as distill_module
from ssl_text.algorithms.losses import kd_loss, nt_xent, soft_cross_entropy
from ssl_text.config import ConfigError
from ssl_text.models.projection import ProjectionHead, load_classifier, save_head
from ssl_text.pipelines.contrastive import gathered_nt_xent
from ssl_text.pipelines.distill import (
    alternate_layers,
    distill,
    init_from_layers,
    parse_distill_config,
    teacher_targets,
)
from ssl_text.pipelines.pretrain import parse_pretrain_config
from ssl_text.pipelines.simclrv2 import parse_simclrv2_config, run_simclrv2
from ssl_text.pipelines.unlabeled_pool import PoolTeacher
from ssl_text.tasks import build_task
from ssl_text.training.run_config import parse_config
from tests.conftest import assert_scores_match_confusion_matrix
from tests.test_launch import free_port

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------


def test_nt_xent_known_value():
    # z1 = z2 = [e1, e2]: each anchor has similarity 1 to its positive and 0 to both negatives, so
    # loss = -log(e^(1/T) / (e^(1/T) + 2)) = log(2 + e^(1/T)) - 1/T for every anchor.
    z = torch.eye(2)
    assert nt_xent(z, z.clone(), 1.0).item() == pytest.approx(math.log(2 + math.e) - 1, abs=1e-6)
    assert nt_xent(z, z.clone(), 0.5).item() == pytest.approx(math.log(2 + math.e**2) - 2, abs=1e-6)
    # scale does not matter (cosine similarity); an opposite positive: row 0 of z1 is e1, its positive is -e1
    assert nt_xent(3 * z, z, 1.0).item() == pytest.approx(math.log(2 + math.e) - 1, abs=1e-6)
    z1, z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    # anchor z1[0]=e1: others e2 (0), -e1 (-1, the positive), e2 (0) -> -log(e^-1 / (2 + e^-1))
    a = math.log(2 + math.exp(-1)) + 1
    # anchor z1[1]=e2: others e1 (0), -e1 (0), e2 (1, positive) -> log(2 + e) - 1; z2 rows likewise
    b = math.log(2 + math.e) - 1
    assert nt_xent(z1, z2, 1.0).item() == pytest.approx((2 * a + 2 * b) / 4, abs=1e-6)


def test_nt_xent_is_symmetric_and_sharpens_as_temperature_drops():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    assert nt_xent(z1, z2, 0.2).item() == pytest.approx(nt_xent(z2, z1, 0.2).item(), abs=1e-6)
    # well-separated positives: each positive is a slightly perturbed copy, the examples are orthogonal
    base = torch.eye(6, 8)
    near = base + 0.05 * torch.randn(6, 8, generator=g)
    losses = [nt_xent(base, near, t).item() for t in (1.0, 0.5, 0.1, 0.05)]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.01


def test_gathered_nt_xent_gives_the_global_loss_and_gradient():
    """Two simulated processes: each gathers detached embeddings and keeps its own slice live; the
    average of their gradients (what DDP does) equals the single-process gradient of the global loss."""
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    w = torch.randn(5, 4, generator=g)

    reference_w = w.clone().requires_grad_(True)
    reference = nt_xent(x1 @ reference_w, x2 @ reference_w, 0.3)
    reference.backward()

    z1_all, z2_all = (x1 @ w).detach(), (x2 @ w).detach()
    gathered = iter([z1_all, z2_all, z1_all, z2_all])  # process 0 then process 1: z1, then z2
    grads, values = [], []
    for rank in range(2):
        wr = w.clone().requires_grad_(True)
        rows = slice(4 * rank, 4 * rank + 4)
        loss = gathered_nt_xent(x1[rows] @ wr, x2[rows] @ wr, 0.3, lambda t: next(gathered), rank, 2)
        loss.backward()
        grads.append(wr.grad)
        values.append(loss.item())
    assert values[0] == pytest.approx(reference.item(), abs=1e-6) and values[1] == pytest.approx(reference.item(), abs=1e-6)
    assert torch.allclose((grads[0] + grads[1]) / 2, reference_w.grad, atol=1e-6)


def test_kd_loss():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 3, 1, 2, 0])
    # a one-hot teacher at T = 1 is cross-entropy with hard labels
    assert kd_loss(s, F.one_hot(y, 4).float(), 1.0).mean().item() == pytest.approx(F.cross_entropy(s, y).item(), abs=1e-6)
    # at a small T the teacher's tempered probabilities are one-hot: hard-label CE of the tempered student, x T^2
    T = 0.01
    probs = torch.softmax(t / T, dim=-1)
    assert torch.allclose(probs, F.one_hot(t.argmax(-1), 4).float(), atol=1e-6)
    hard = F.cross_entropy(s / T, t.argmax(-1), reduction="none")
    assert torch.allclose(kd_loss(s, probs, T), T**2 * hard, rtol=1e-4)
    # the T^2 factor
    p = torch.softmax(t / 3.0, dim=-1)
    assert torch.allclose(kd_loss(s, p, 3.0), 9.0 * soft_cross_entropy(s / 3.0, p), atol=1e-6)

    # ... which keeps the gradient's size about the same at high temperatures (it would shrink as 1/T^2)
    def grad_norm(T):
        logits = s.clone().requires_grad_(True)
        kd_loss(logits, torch.softmax(t / T, -1), T).sum().backward()
        return logits.grad.norm().item()

    assert 0.8 < grad_norm(5.0) / grad_norm(10.0) < 1.25


# ---------------------------------------------------------------------------------------
# Projection heads and alternate-layer students
# ---------------------------------------------------------------------------------------


def test_projection_head_layers():
    head = ProjectionHead(32, 24, 8, num_layers=3, norm="batchnorm")
    assert [type(m).__name__ for m in head.blocks[0]] == ["Linear", "BatchNorm1d", "ReLU"]
    assert [type(m).__name__ for m in head.blocks[2]] == ["Linear", "BatchNorm1d"]  # no ReLU at the output
    assert head(torch.randn(5, 32)).shape == (5, 8) and head(torch.randn(5, 32), upto=1).shape == (5, 24)
    assert [head.width(k) for k in range(4)] == [32, 24, 24, 8]
    plain = ProjectionHead(32, 24, 8, num_layers=2, norm="none")
    assert [type(m).__name__ for m in plain.blocks[0]] == ["Linear", "ReLU"] and plain.blocks[0][0].bias is not None


def test_alternate_layers_indices():
    assert alternate_layers(6, 3) == [0, 2, 4] and alternate_layers(4, 2) == [0, 2]
    assert alternate_layers(6, 6) == list(range(6)) and alternate_layers(12, 4) == [0, 3, 6, 9]
    with pytest.raises(ConfigError, match="num_layers"):
        alternate_layers(6, 7)


def _layer_state(model, prefix: str, i: int) -> dict:
    p = f"{prefix}.encoder.layer.{i}."
    return {k[len(p):]: v for k, v in model.state_dict().items() if k.startswith(p)}


def _assert_copied(teacher, student, prefix: str, layers: list[int]) -> None:
    for j, i in enumerate(layers):
        s, t = _layer_state(student, prefix, j), _layer_state(teacher, prefix, i)
        assert s.keys() == t.keys() and s and all(torch.equal(s[k], t[k]) for k in s), f"layer {j} != teacher {i}"
    others = {k: v for k, v in teacher.state_dict().items() if ".encoder.layer." not in k and "contact_head" not in k}
    assert all(torch.equal(student.state_dict()[k], v) for k, v in others.items())  # embeddings, head, ...


def test_alternate_layer_init_copies_the_right_bert_layers(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3)
    teacher = BertForSequenceClassification(config)
    student = init_from_layers(teacher, alternate_layers(4, 2))
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    assert teacher.config.num_hidden_layers == 4 and len(teacher.bert.encoder.layer) == 4  # the teacher is untouched
    _assert_copied(teacher, student, "bert", [0, 2])
    # saved and reloaded as a user (or `ssl-text train`) would: still the same tensors
    student.save_pretrained(tmp_path / "s")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "s")
    _assert_copied(teacher, reloaded, "bert", [0, 2])
    ids = torch.randint(5, 200, (2, 7))
    student.eval(), reloaded.eval()
    assert torch.allclose(student(input_ids=ids).logits, reloaded(input_ids=ids).logits, atol=1e-6)
    _assert_copied(teacher, init_from_layers(teacher, [1, 3]), "bert", [1, 3])  # explicit `student.layers`


def test_alternate_layer_init_on_esm():
    from ssl_text.tasks.protein import new_esm_model

    torch.manual_seed(0)
    teacher = new_esm_model("tiny", label_names=["a", "b"], num_hidden_layers=4)
    student = init_from_layers(teacher, alternate_layers(4, 2))
    assert student.config.num_hidden_layers == 2 and len(student.esm.encoder.layer) == 2
    _assert_copied(teacher, student, "esm", [0, 2])
    # ESM's contact head reads every layer's attention heads (2 per layer): the kept layers' columns stay
    w_t, w_s = teacher.esm.contact_head.regression.weight, student.esm.contact_head.regression.weight
    assert w_s.shape == (1, 4) and torch.equal(w_s, w_t[:, [0, 1, 4, 5]])
    assert student(input_ids=torch.tensor([[0, 5, 6, 7, 2]])).logits.shape == (1, 2)


def test_finetuning_from_a_head_layer_saves_and_reloads(tiny_bert_dir, tmp_path):
    """k > 0: encoder + k head layers + classifier; its folder reloads through the task adapter."""
    import shutil

    folder = tmp_path / "encoder"
    shutil.copytree(tiny_bert_dir, folder)
    head = ProjectionHead(32, 32, 8, 3)
    head.blocks[0][1].running_mean.fill_(0.5)  # BatchNorm statistics travel with the head
    save_head(head, folder, pooling="mean", temperature=0.1)
    task = build_task("text_classification")
    model = load_classifier(task, str(folder), ["a", "b", "c"], projection_head_layers=2)
    assert model.num_layers == 2 and model.classifier.in_features == 32
    assert torch.equal(model.projection[0][1].running_mean, torch.full((32,), 0.5))
    model.eval()
    inputs = {"input_ids": torch.tensor([[2, 40, 41, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 0]])}
    logits = model(**inputs).logits
    model.save_pretrained(tmp_path / "best")
    reloaded = task.load_model(str(tmp_path / "best"), ["a", "b", "c"])
    reloaded.eval()
    assert type(reloaded).__name__ == "ProjectionClassifier" and reloaded.config.id2label[2] == "c"
    assert torch.allclose(reloaded(**inputs).logits, logits, atol=1e-6)
    with pytest.raises(ConfigError, match="has 3 layers"):
        load_classifier(task, str(folder), ["a", "b"], projection_head_layers=4)
    with pytest.raises(ConfigError, match="no projection head"):
        load_classifier(task, tiny_bert_dir, ["a", "b"], projection_head_layers=1)


def test_configs_are_checked(toy_config):
    raw = {"output_dir": "x", "task": "text_classification", "data": {"unlabeled": [{"path": "x.csv"}]},
           "pretrain": {"objective": "contrastive", "temperature": 0.0}}
    with pytest.raises(ConfigError, match="pretrain.temperature"):
        parse_pretrain_config(raw)
    raw["pretrain"] = {"objective": "contrastive", "view2": {"mask_prob": 1.5}}
    with pytest.raises(ConfigError, match="pretrain.view2.mask_prob"):
        parse_pretrain_config(raw)
    run = toy_config("fixmatch")
    with pytest.raises(ConfigError, match="distill.teacher"):
        parse_distill_config({**run, "distill": {"temperature": 2.0}})
    with pytest.raises(ConfigError, match="num_layers"):
        parse_distill_config({**run, "distill": {"teacher": "t", "student": {"init": "alternate_layers"}}})
    cfg, dcfg = parse_distill_config({**run, "distill": {"teacher": "t", "temperature": 2.0, "alpha": 0.5}})
    assert cfg.algorithm.name == "distill" and cfg.algorithm.temperature == 2.0 and cfg.algorithm.alpha == 0.5


# ---------------------------------------------------------------------------------------
# The pipeline, end to end on the tiny BERT: stopped before distillation, then rerun
# ---------------------------------------------------------------------------------------

STEPS = {"max_steps": 3, "lb_batch_size": 4, "mu": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0, "eval_every": 3,
         "save_every": 3, "log_every": 1, "progress_bar": False}


def pipeline_raw(tiny_bert_dir: str, toy_files: dict, out: Path) -> dict:
    return {
        "output_dir": str(out),
        "task": "text_classification",
        "pretrain": {
            "model": {"name_or_path": tiny_bert_dir},
            "data": {"unlabeled": [{"path": toy_files["train"], "label_column": None}],
                     "exclude": [{"path": toy_files["test"], "label_column": None}],
                     "validation_fraction": 0.1, "max_length": 32},
            "pretrain": {"objective": "contrastive", "temperature": 0.1, "pooling": "mean", "projection_layers": 3,
                         "projection_dim": 16, "view2": {"mask_prob": 0.1}},
            "trainer": {**STEPS, "lb_batch_size": 8},
        },
        "finetune": {
            "model": {"projection_head_layers": 1},
            "data": {"labeled": {"path": toy_files["train"]},
                     "sampling": {"num_per_class": 4, "seed": 0, "rest_as_unlabeled": True},
                     "validation": {"path": toy_files["validation"]}, "test": {"path": toy_files["test"]},
                     "max_length": 32},
            "algorithm": {"name": "fixmatch", "tau": 0.5},
            "trainer": STEPS,
        },
        "distill": {"temperature": 2.0, "student": {"init": "alternate_layers", "num_layers": 1}, "shard_size": 64},
        "report": {"batch_size": 8, "repeats": 3, "warmup": 1},
    }


@pytest.fixture(scope="module")
def pipeline_run(tiny_bert_dir, toy_files, tmp_path_factory):
    """Run the pipeline with the distill stage failing, then again; keep what each run printed."""
    out = tmp_path_factory.mktemp("simclrv2") / "run"
    raw = pipeline_raw(tiny_bert_dir, toy_files, out)
    original = distill_module.distill

    def broken(*args, **kwargs):
        raise RuntimeError("distillation stopped")

    distill_module.distill = broken
    first = io.StringIO()
    try:
        with contextlib.redirect_stdout(first), pytest.raises(RuntimeError, match="distillation stopped"):
            run_simclrv2(parse_simclrv2_config(raw))
    finally:
        distill_module.distill = original
    mtimes = {stage: (out / stage / "metrics.json").stat().st_mtime_ns for stage in ("pretrain", "finetune")}
    assert not (out / "distill" / "metrics.json").exists()
    second = io.StringIO()
    with contextlib.redirect_stdout(second):
        report = run_simclrv2(parse_simclrv2_config(raw))
    return {"out": out, "raw": raw, "report": report, "first": first.getvalue(), "second": second.getvalue(),
            "mtimes": mtimes}


@pytest.mark.slow
def test_pipeline_resumes_with_the_first_two_stages_skipped(pipeline_run):
    out, second = pipeline_run["out"], pipeline_run["second"]
    assert "[simclrv2] pretrain ->" in pipeline_run["first"] and "[simclrv2] finetune ->" in pipeline_run["first"]
    assert f"[simclrv2] skip pretrain: done ({out / 'pretrain'})" in second
    assert f"[simclrv2] skip finetune: done ({out / 'finetune'})" in second
    assert "[simclrv2] distill ->" in second
    for stage, mtime in pipeline_run["mtimes"].items():
        assert (out / stage / "metrics.json").stat().st_mtime_ns == mtime, f"{stage} ran again"
    assert (out / "distill" / "best" / "config.json").exists()


@pytest.mark.slow
def test_pipeline_report(pipeline_run):
    out, report = pipeline_run["out"], pipeline_run["report"]
    assert json.loads((out / "report.json").read_text()) == report
    stages = report["stages"]
    assert set(stages) == {"pretrain", "finetune", "distill"}
    assert stages["pretrain"]["objective"] == "contrastive" and math.isfinite(stages["pretrain"]["held_out"]["loss"])
    for stage in ("finetune", "distill"):  # each stage's own figures, of the whole 80-row test split
        stage_metrics = json.loads((out / stage / "metrics.json").read_text())
        assert stages[stage]["test"] == stage_metrics["test"] and "accuracy" in stages[stage]["validation"]
        assert_scores_match_confusion_matrix(stage_metrics, num_rows=80)
    d = stages["distill"]["distill"]
    assert d["student_init"] == "alternate_layers" and d["student_layers"] == [0] and d["temperature"] == 2.0
    assert d["student_num_parameters"] < d["teacher_num_parameters"]
    speed = report["inference_speed"]
    assert speed["teacher"]["num_layers"] == 2 and speed["student"]["num_layers"] == 1
    assert speed["batch"] == {"texts": 8, "tokens": 32, "identical_token_ids": True}
    assert len(speed["student"]["runs_ms"]) == 3 and speed["speedup"] > 0
    md = (out / "report.md").read_text()
    assert "| finetune |" in md and "| distill |" in md and "Inference speed" in md


@pytest.mark.slow
def test_pretrained_encoder_and_head_checkpoint(pipeline_run):
    encoder = pipeline_run["out"] / "pretrain" / "encoder"
    assert (encoder / "projection_head.safetensors").exists() and (encoder / "tokenizer_config.json").exists()
    head = json.loads((encoder / "projection_head.json").read_text())
    assert head["num_layers"] == 3 and head["out_dim"] == 16 and head["norm"] == "batchnorm" and head["pooling"] == "mean"
    clf = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=4)
    assert type(clf).__name__ == "BertForSequenceClassification"
    # the teacher fine-tuned from head layer 1, and the student initialised from it, both load through the task
    teacher = json.loads((pipeline_run["out"] / "finetune" / "best" / "projection_classifier.json").read_text())
    assert teacher["projection_head_layers"] == 1
    cfg = yaml.safe_load((pipeline_run["out"] / "finetune" / "config.yaml").read_text())
    assert cfg["model"]["name_or_path"] == str(encoder)


@pytest.mark.slow
def test_distilled_best_holds_the_final_metrics_and_card(pipeline_run):
    """Distillation adds its `distill` section to metrics.json after the student's run: best/ (the Hub-ready folder)
    gets those final metrics, and a card made from them."""
    out = pipeline_run["out"] / "distill"
    assert (out / "best" / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()
    assert json.loads((out / "best" / "metrics.json").read_text())["distill"]["student_layers"] == [0]
    assert (out / "best" / "README.md").is_file() and (out / "best" / "training_config.yaml").is_file()


@pytest.mark.slow
def test_student_learns_from_cached_teacher_targets(pipeline_run, monkeypatch, capsys):
    out = pipeline_run["out"] / "distill"
    targets = out / "teacher_targets"
    manifest = json.loads((targets / "manifest.json").read_text())
    assert manifest["temperature"] == 2.0 and manifest["num_rows"] == 184
    assert [s["start"] for s in manifest["shards"]] == [0, 64, 128]
    import datasets

    ds = datasets.load_from_disk(str(targets))
    probs = np.asarray(ds["pseudo_target"])
    assert ds["index"] == list(range(184)) and probs.shape == (184, 4) and np.allclose(probs.sum(1), 1.0, atol=1e-5)

    # A second distillation reuses the cache: no teacher forward pass, the cache untouched.
    calls = []
    real = PoolTeacher.logits
    monkeypatch.setattr(PoolTeacher, "logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    before = (targets / "manifest.json").stat().st_mtime_ns
    draw = parse_simclrv2_config(pipeline_run["raw"])
    cfg = copy.deepcopy(draw.distill_run)
    cfg.trainer.max_steps = 1
    metrics = distill(cfg, draw.distill, overwrite=True)
    assert calls == [] and (targets / "manifest.json").stat().st_mtime_ns == before
    assert metrics["distill"]["teacher_targets"]["reused"] is True
    assert "reusing the teacher targets" in capsys.readouterr().out


@pytest.mark.slow
def test_teacher_targets_resume_by_shard_and_follow_the_temperature(pipeline_run, tmp_path, monkeypatch):
    draw = parse_simclrv2_config(pipeline_run["raw"])
    teacher = pipeline_run["out"] / "finetune" / "best"
    real, calls = PoolTeacher.logits, []

    def stop_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(PoolTeacher, "logits", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        teacher_targets(draw.distill_run, teacher, 2.0, tmp_path / "t", shard_size=50)
    assert len(list((tmp_path / ".t.shards").glob("shard_*.parquet"))) == 2 and not (tmp_path / "t").exists()
    calls.clear()
    monkeypatch.setattr(PoolTeacher, "logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    manifest = teacher_targets(draw.distill_run, teacher, 2.0, tmp_path / "t", shard_size=50)
    assert len(calls) == 2 and manifest["reused"] is False  # only the 2 missing shards of 4
    assert not (tmp_path / ".t.shards").exists()
    import datasets

    resumed = np.asarray(datasets.load_from_disk(str(tmp_path / "t"))["pseudo_target"])
    cached = np.asarray(datasets.load_from_disk(str(pipeline_run["out"] / "distill" / "teacher_targets"))["pseudo_target"])
    assert np.allclose(resumed, cached, atol=1e-5)
    calls.clear()
    hotter = teacher_targets(draw.distill_run, teacher, 4.0, tmp_path / "t", shard_size=50)  # another T: recomputed
    assert len(calls) == 4 and hotter["temperature"] == 4.0
    flatter = np.asarray(datasets.load_from_disk(str(tmp_path / "t"))["pseudo_target"])
    assert flatter.max(1).mean() < resumed.max(1).mean()


@pytest.mark.slow
def test_finetune_and_predict_commands_from_a_pretrain_run(pipeline_run, tmp_path, capsys):
    from ssl_text.cli.main import main

    raw = copy.deepcopy(pipeline_run["raw"]["finetune"])
    raw.update(output_dir=str(tmp_path / "ft"), task="text_classification")
    raw["model"] = {"projection_head_layers": 3}  # from the head's output layer
    raw["algorithm"] = {"name": "supervised"}
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["finetune", str(path), "--pretrained", str(pipeline_run["out"] / "pretrain"), "trainer.max_steps=1",
                 "trainer.eval_every=1"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{\n"):])
    assert summary["algorithm"] == "supervised" and summary["selected_step"] == 1
    texts = tmp_path / "texts.txt"
    texts.write_text("stock market and bank profit\n")
    assert main(["predict", str(tmp_path / "ft"), "--input", str(texts), "--output", str(tmp_path / "p.jsonl")]) == 0
    record = json.loads((tmp_path / "p.jsonl").read_text())
    assert record["label"] in {"business", "politics", "science", "sports"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mixmatch", "mean_teacher"])  # hidden-state mixup; an EMA copy of the wrapper
def test_other_algorithms_fine_tune_from_a_head_layer(pipeline_run, toy_config, name):
    raw = toy_config(name)
    raw["model"] = {"name_or_path": str(pipeline_run["out"] / "pretrain" / "encoder"), "projection_head_layers": 2}
    raw["trainer"].update(max_steps=2, eval_every=2, save_every=2, ema_decay=0.9 if name == "mean_teacher" else None)
    from ssl_text.pipelines.train import train

    metrics = train(parse_config(raw))
    assert math.isfinite(metrics["last_train_logs"]["loss"])
    assert_scores_match_confusion_matrix(metrics, num_rows=80)


# ---------------------------------------------------------------------------------------
# The pipeline's command line: inputs checked before --overwrite deletes anything, overrides blamed
# ---------------------------------------------------------------------------------------


def spoil(raw: dict, stage: str) -> None:
    """Give `stage` an input mistake that only its data can reveal."""
    if stage == "pretrain":
        raw["pretrain"]["data"]["unlabeled"][0]["text_columns"] = ["nope"]
    elif stage == "finetune":
        raw["finetune"]["data"]["labeled"]["text_columns"] = ["nope"]
    else:  # the student's views name a paraphrase column the unlabeled data lacks
        raw["distill"]["views"] = {"weak": {"aug_columns": ["aug_0"]}}


@pytest.mark.parametrize("stage", ["pretrain", "finetune", "distill"])
def test_pipeline_overwrite_checks_every_stage_before_deleting(stage, tiny_bert_dir, toy_files, tmp_path, capsys):
    from ssl_text.cli.main import EXIT_BAD_INPUT, main

    raw = pipeline_raw(tiny_bert_dir, toy_files, tmp_path / "run")
    spoil(raw, stage)
    earlier = {tmp_path / "run" / "pipeline.yaml": "earlier pipeline\n", tmp_path / "run" / "finetune" / "metrics.json": "{}"}
    for path, text in earlier.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["pipeline", "simclrv2", str(config), "--overwrite"]) == EXIT_BAD_INPUT
    assert {p: p.read_text() for p in earlier if p.exists()} == earlier  # nothing deleted, nothing written
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["finetune", "pipeline.yaml"]
    assert f"ssl-text pipeline simclrv2: error: stage `{stage}`: data." in capsys.readouterr().err


@pytest.mark.parametrize("override, says", [
    ("pretrain.trainer.colour=red", "`pretrain.trainer.colour=red` (stage `pretrain`): unknown key `trainer.colour`"),
    ("finetune.trainer.learning_rate=-1", "`finetune.trainer.learning_rate=-1` (stage `finetune`): `trainer.learning_rate`"),
    ("distill.temperature=0", "`distill.temperature=0` (stage `distill`): `distill.temperature` is 0"),
    ("report.batch_size=0", "`report.batch_size=0`: `report.batch_size`"),
])  # fmt: skip
def test_pipeline_overrides_are_blamed_for_their_stage(override, says, tiny_bert_dir, toy_files, tmp_path, capsys):
    from ssl_text.cli.main import EXIT_BAD_INPUT, main

    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(pipeline_raw(tiny_bert_dir, toy_files, tmp_path / "run")))
    assert main(["pipeline", "simclrv2", str(config), override]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"command-line override {says}" in err and str(config) not in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------
# Proteins: the same path on a tiny ESM (contrastive pretraining with residue views, a head-layer
# classifier, alternate-layer distillation)
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_protein_pipeline_on_a_tiny_esm(tmp_path):
    from tests.test_protein import FILE_LABELS, make_peptides, write_fasta

    files = {}
    for split, n, seed in (("tr", 24, 1), ("eval", 8, 2), ("te", 8, 3)):
        for kind, prefix in (("amp", "AMP"), ("decoy", "DECOY")):
            files[f"{prefix}.{split}"] = write_fasta(tmp_path / f"{prefix}.{split}.fa", make_peptides(n, kind, seed), prefix[:2])
    spec = lambda split, **kw: {"path": "fasta", "data_files": [files[f"AMP.{split}"], files[f"DECOY.{split}"]], **kw}  # noqa: E731
    raw = {
        "output_dir": str(tmp_path / "run"),
        "task": "protein",
        "pretrain": {
            "model": {"name_or_path": "new:tiny"},
            "data": {"unlabeled": [spec("tr", label_column=None)], "validation_fraction": 0.1, "max_length": 24, "crop": "random"},
            "pretrain": {"objective": "contrastive", "pooling": "cls", "projection_layers": 2, "projection_dim": 8,
                         "projection_norm": "none", "view1": {"blosum_prob": 0.1}, "view2": {"crop_prob": 0.5, "mask_prob": 0.1}},
            "trainer": {**STEPS, "lb_batch_size": 8},
        },
        "finetune": {
            "model": {"projection_head_layers": 1},
            "data": {"labeled": spec("tr", file_labels=FILE_LABELS), "validation": spec("eval", file_labels=FILE_LABELS),
                     "test": spec("te", file_labels=FILE_LABELS), "max_length": 24,
                     "sampling": {"num_per_class": 4, "seed": 0, "rest_as_unlabeled": True}},
            "algorithm": {"name": "supervised"},
            "trainer": STEPS,
        },
        "distill": {"alpha": 0.5, "student": {"init": "alternate_layers", "num_layers": 1}},
        "report": {"batch_size": 4, "repeats": 2, "warmup": 0},
    }
    report = run_simclrv2(parse_simclrv2_config(raw))
    head = json.loads((tmp_path / "run" / "pretrain" / "encoder" / "projection_head.json").read_text())
    assert head["pooling"] == "cls" and head["norm"] == "none"
    student = report["stages"]["distill"]
    assert {"accuracy", "mcc"} <= set(student["test"]) and student["distill"]["student_layers"] == [0]
    assert report["inference_speed"]["student"]["num_layers"] == 1 and report["inference_speed"]["teacher"]["num_layers"] == 2
    loaded = build_task("protein").load_model(str(tmp_path / "run" / "distill" / "best"), ["AMP", "non-AMP"])
    assert type(loaded.encoder).__name__ == "EsmModel" and len(loaded.encoder.encoder.layer) == 1


# ---------------------------------------------------------------------------------------
# Two CPU processes under `accelerate launch`: contrastive pretraining and sharded distillation
# ---------------------------------------------------------------------------------------


def launch(script: str, config: Path, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), str(ROOT / "scripts" / script), str(config), *overrides,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "ACCELERATE_USE_CPU": "true"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


@pytest.mark.slow
def test_two_process_launch_of_pretrain_and_distill(pipeline_run, tmp_path):
    raw = copy.deepcopy(pipeline_run["raw"]["pretrain"])
    raw.update(output_dir=str(tmp_path / "pre"), task="text_classification")
    raw["trainer"].update(max_steps=2, eval_every=2, save_every=2)
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = launch("pretrain.py", path, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "pre" / "metrics.json").read_text())
    assert metrics["hardware"].startswith("2 x") and math.isfinite(metrics["last_train_logs"]["loss_contrastive"])
    assert (tmp_path / "pre" / "encoder" / "projection_head.safetensors").exists()
    ckpt = tmp_path / "pre" / "checkpoints" / "step_0000002"
    assert (ckpt / "random_states_0.pkl").exists() and (ckpt / "random_states_1.pkl").exists()

    # Distillation from the pipeline's teacher: 3 shards of 64 rows over 2 processes (0, 1, 0).
    d = parse_simclrv2_config(pipeline_run["raw"])
    draw = yaml.safe_load((pipeline_run["out"] / "finetune" / "config.yaml").read_text())
    draw.update(output_dir=str(tmp_path / "dist"), algorithm={"name": "supervised"})
    draw["trainer"].update(max_steps=2, eval_every=2, save_every=2)
    draw["distill"] = {"teacher": str(pipeline_run["out"] / "finetune"), "temperature": d.distill.temperature,
                       "student": {"init": "teacher"}, "shard_size": 64}
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(draw))
    proc = launch("distill.py", path, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "dist" / "teacher_targets" / "manifest.json").read_text())
    assert [s["process"] for s in manifest["shards"]] == [0, 1, 0]
    import datasets

    two = np.asarray(datasets.load_from_disk(str(tmp_path / "dist" / "teacher_targets"))["pseudo_target"])
    one = np.asarray(datasets.load_from_disk(str(pipeline_run["out"] / "distill" / "teacher_targets"))["pseudo_target"])
    assert np.allclose(two, one, atol=1e-5)  # the same targets as one process computed
    metrics = json.loads((tmp_path / "dist" / "metrics.json").read_text())
    assert metrics["hardware"].startswith("2 x") and metrics["algorithm"] == "distill"
