"""Crash safety, exact resume after SIGKILL, signals, non-finite losses, collapse warnings, bad input."""

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
import torch
import yaml
from accelerate import Accelerator
from safetensors.torch import load_file

from ssl_text.algorithms import ALGORITHMS
from ssl_text.algorithms.base import LossOutput
from ssl_text.cli.main import EXIT_STOPPED
from ssl_text.config import ConfigError, TrainerConfig
from ssl_text.data.batching import BatchStream
from ssl_text.data.loading import DataError
from ssl_text.models.resolve import ModelMismatchError
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import RunDirError
from ssl_text.training.trainer import NonFiniteLossError, Trainer
from tests.test_lifecycle import ENTRY_POINTS, existing_run, start_run

ROOT = Path(__file__).resolve().parents[1]


def run(raw, **kwargs):
    return train(parse_config(raw), **kwargs)


# ---------------------------------------------------------------------------------------
# Trainer-level behaviour on a two-feature linear model
# ---------------------------------------------------------------------------------------


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)

    def forward(self, x):
        return SimpleNamespace(logits=self.layer(x))


class ScriptedLoss:
    """An algorithm whose loss and pseudo-labels the test dictates."""

    views = ("lb",)

    def __init__(self, value=None, pseudo=None):
        self.config = SimpleNamespace(name="scripted")
        self.value, self.pseudo = value, pseudo

    def compute_loss(self, model, batch, state):
        logits = model(**batch["lb"]).logits
        loss = torch.nn.functional.cross_entropy(logits, batch["lb_labels"])
        if self.value is not None:
            loss = loss * self.value
        pseudo = None if self.pseudo is None else torch.full((8,), self.pseudo)
        return LossOutput(total=loss, parts={}, pseudo_labels=pseudo, mask=None if pseudo is None else torch.ones(8))


def linear_trainer(tmp_path, algorithm, **config):
    ds = datasets.Dataset.from_dict({"x": [[float(i), float(-i)] for i in range(16)], "label": [i % 2 for i in range(16)]})

    def collate(rows, generator):
        return {"lb": {"x": torch.tensor(rows["x"])}, "lb_labels": torch.tensor(rows["label"])}

    cfg = TrainerConfig(**{"max_steps": 20, "log_every": 2, "progress_bar": False, "save_every": 100, **config})
    return Trainer(cfg, Accelerator(cpu=True), Linear(), algorithm, BatchStream(ds, 4, 0, collate), None,
                   tmp_path, num_classes=2, label_prior=[0.5, 0.5])


def test_non_finite_losses_are_skipped_then_stop_the_run_with_a_checkpoint(tmp_path):
    trainer = linear_trainer(tmp_path, ScriptedLoss(value=float("nan")), max_nonfinite_steps=3)
    with pytest.raises(NonFiniteLossError, match=r"3 steps in a row .* learning rate .* fp16"):
        trainer.fit()
    assert trainer.progress.nonfinite_total == 3 and trainer.progress.step == 0
    assert (tmp_path / "checkpoints" / "step_0000000").is_dir()


def test_pseudo_label_collapse_is_warned_with_the_distribution(tmp_path, caplog):
    trainer = linear_trainer(tmp_path, ScriptedLoss(pseudo=1), collapse_tv_bound=0.3)
    with caplog.at_level(logging.WARNING, logger="ssl_text.training.trainer"):
        trainer.fit()
    warnings = [r.message for r in caplog.records if "collapse" in r.message]
    assert warnings and "[0.0, 1.0]" in warnings[0] and "[0.5, 0.5]" in warnings[0]


def test_collapse_advice_follows_the_algorithm(tmp_path, caplog):
    """Threshold advice for algorithms that pick their own pseudo-labels; teacher advice when a teacher made them."""
    taught = ScriptedLoss(pseudo=1)
    taught.collapse_advice = ALGORITHMS["distill"].collapse_advice
    for algorithm, expected, absent in ((ScriptedLoss(pseudo=1), "higher tau", "teacher"), (taught, "teacher", "higher tau")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ssl_text.training.trainer"):
            linear_trainer(tmp_path / expected.replace(" ", "_"), algorithm, collapse_tv_bound=0.3).fit()
        message = next(r.message for r in caplog.records if "collapse" in r.message)
        assert expected in message and absent not in message


def test_no_collapse_warning_within_the_bound(tmp_path, caplog):
    # one class only is the largest distance two balanced classes allow: a bound of all of it is never passed
    trainer = linear_trainer(tmp_path, ScriptedLoss(pseudo=1), collapse_tv_bound=1.0)
    with caplog.at_level(logging.WARNING, logger="ssl_text.training.trainer"):
        trainer.fit()
    assert not [r for r in caplog.records if "collapse" in r.message]


def test_keeps_only_the_last_n_checkpoints_and_never_leaves_temporaries(tmp_path):
    trainer = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=2)
    trainer.fit()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_0000016", "step_0000020"]


def test_corrupted_checkpoint_is_reported_and_the_previous_one_used(tmp_path, capsys):
    trainer = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=3)
    trainer.fit()
    newest = tmp_path / "checkpoints" / "step_0000020" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:50])  # truncated
    again = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=3)
    again.load_latest_checkpoint()
    out = capsys.readouterr().out
    assert "step_0000020 could not be loaded" in out and again.progress.step == 16


# ---------------------------------------------------------------------------------------
# Real processes: SIGKILL at random steps, then --resume; SIGTERM saves a checkpoint
# ---------------------------------------------------------------------------------------

STATEFUL = sorted(
    name for name, cls in ALGORITHMS.items()
    if hasattr(cls, "state_dict") or getattr(cls, "requires_ema", False)
)
KILL_SEEDS = [11, 23, 37]


def cli_config(toy_config, tmp_path, name, steps=30) -> Path:
    raw = toy_config(name, **({"tau": 0.3} if "tau" in ALGORITHMS[name].Config.__dataclass_fields__ else {}))
    raw["trainer"].update(max_steps=steps, eval_every=10, save_every=1, keep_checkpoints=steps, log_every=5)
    if getattr(ALGORITHMS[name], "requires_ema", False):
        raw["trainer"]["ema_decay"] = 0.9
    raw["output_dir"] = str(tmp_path / f"{name}_run")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def start(config: Path, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "ssl_text", "train", str(config), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_checkpoint(run_dir: Path, step: int, proc, timeout=120):
    target = run_dir / "checkpoints" / f"step_{step:07d}"
    deadline = time.time() + timeout
    while not target.exists():
        assert proc.poll() is None, f"run ended before step {step}: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"no checkpoint for step {step} after {timeout} s"
        time.sleep(0.05)


def final_weights(run_dir: Path, steps: int):
    return load_file(str(run_dir / "checkpoints" / f"step_{steps:07d}" / "model.safetensors"))


@pytest.mark.parametrize("name", ["fixmatch", *STATEFUL])
def test_sigkill_at_random_steps_then_resume_matches_the_uninterrupted_run(toy_config, tmp_path, name):
    steps = 30
    reference = cli_config(toy_config, tmp_path / "ref", name, steps) if (tmp_path / "ref").mkdir() is None else None
    proc = start(reference)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    ref_dir = Path(yaml.safe_load(reference.read_text())["output_dir"])
    expected = final_weights(ref_dir, steps)
    expected_metrics = json.loads((ref_dir / "metrics.json").read_text())

    config = cli_config(toy_config, tmp_path, name, steps)
    run_dir = Path(yaml.safe_load(config.read_text())["output_dir"])
    kill_steps = sorted({random.Random(seed + len(name)).randint(1, steps // 2) for seed in KILL_SEEDS[:2]})
    proc = start(config)
    for kill_step in kill_steps:
        wait_for_checkpoint(run_dir, kill_step, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = start(config, "--resume")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    got = final_weights(run_dir, steps)
    assert all(torch.equal(expected[k], got[k]) for k in expected), f"{name}: resumed weights differ"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"] == expected_metrics["test"]


def test_sigterm_saves_a_checkpoint_and_resume_finishes(toy_config, tmp_path):
    config = cli_config(toy_config, tmp_path, "fixmatch", steps=400)
    raw = yaml.safe_load(config.read_text())
    raw["trainer"]["save_every"] = 1000
    config.write_text(yaml.safe_dump(raw))
    run_dir = Path(raw["output_dir"])
    proc = start(config)
    deadline = time.time() + 120
    while not list((run_dir / "logs").rglob("events.out.tfevents*")) if (run_dir / "logs").exists() else True:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == EXIT_STOPPED
    err = proc.stderr.read()
    assert "checkpoint saved to" in err and "--resume" in err
    assert "Traceback" not in err, err[-2000:]  # a message, not a crash
    saved = sorted((run_dir / "checkpoints").iterdir())
    assert saved and 0 < int(saved[-1].name.split("_")[1]) < 400
    assert not (run_dir / "run.lock").exists()


# ---------------------------------------------------------------------------------------
# Bad input: an error naming the input and the fix, before training, outputs untouched
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_bad_input_never_touches_an_existing_run(entry, toy_config, tiny_bert_dir, toy_files, tmp_path):
    """train, pretrain, distill and self-train check their data before `--overwrite` replaces a run."""
    out = tmp_path / "run"
    contents = existing_run(out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(DataError, match="column 'nope' not found"):
        start_run(entry, toy_config, tiny_bert_dir, toy_files, tmp_path, bad_data=True, overwrite=True)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == contents


def test_non_utf8_file(tmp_path, toy_config):
    path = tmp_path / "latin1.csv"
    path.write_bytes("label,text\nsports,caf\xe9 match\n".encode("latin-1"))
    raw = toy_config("supervised")
    raw["data"]["labeled"]["path"] = str(path)
    with pytest.raises(DataError, match=r"not UTF-8.*iconv"):
        run(raw)


def test_empty_file(tmp_path, toy_config):
    path = tmp_path / "empty.csv"
    path.write_text("")
    raw = toy_config("supervised")
    raw["data"]["labeled"]["path"] = str(path)
    with pytest.raises(DataError, match="is empty"):
        run(raw)


def test_labels_given_as_strings_and_ints(tmp_path, toy_config):
    path = tmp_path / "mixed.csv"
    path.write_text("label,text\nsports,the match\n1,the market\n")
    raw = toy_config("supervised")
    raw["data"]["labeled"]["path"] = str(path)
    raw["data"].pop("sampling")
    raw["data"]["label_names"] = ["sports", "business"]
    with pytest.raises(DataError, match=r"label '1'|label 1"):
        run(raw)
    path2 = tmp_path / "mixed.jsonl"
    path2.write_text('{"label": "sports", "text": "a"}\n{"label": 1, "text": "b"}\n')
    raw["data"]["labeled"]["path"] = str(path2)
    with pytest.raises(DataError, match="label"):
        run(raw)


def test_unlabeled_identical_to_labeled(toy_config, toy_files):
    raw = toy_config("fixmatch")
    raw["data"].pop("sampling")
    raw["data"]["unlabeled"] = {"path": toy_files["train"]}
    raw["data"]["validation"] = raw["data"]["test"] = None
    with pytest.raises(DataError, match="every text .* is also in the labeled data"):
        run(raw)


def test_wrong_tokenizer_for_the_model(toy_config, tiny_bert_dir, tmp_path):
    from transformers import BertConfig, BertModel, BertTokenizer

    small = tmp_path / "small_vocab_model"
    BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(small)
    BertTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(small)  # 124 tokens for a 50-row embedding
    raw = toy_config("supervised")
    raw["model"]["name_or_path"] = str(small)
    with pytest.raises(ModelMismatchError, match="do not belong together"):
        run(raw)


def test_tokenizer_folder_without_vocabulary(toy_config, tiny_bert_dir, tmp_path):
    from transformers import BertModel

    bare = tmp_path / "no_vocab"
    BertModel.from_pretrained(tiny_bert_dir).save_pretrained(bare)
    raw = toy_config("supervised")
    raw["model"]["name_or_path"] = str(bare)
    with pytest.raises((ModelMismatchError, OSError, ValueError), match="vocab|tokenizer|Tokenizer"):
        run(raw)


def test_num_labels_contradicting_a_pretrained_head(toy_config, tiny_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    headed = tmp_path / "three_labels"
    AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3).save_pretrained(headed)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(headed)
    raw = toy_config("supervised")
    raw["model"]["name_or_path"] = str(headed)
    with pytest.raises(ModelMismatchError, match="head for 3 labels but the data has 4"):
        run(raw)


def test_run_dir_locked_by_a_live_process(toy_config):
    raw = toy_config("supervised")
    out = Path(raw["output_dir"])
    out.mkdir(parents=True)
    (out / "run.lock").write_text(str(os.getppid()))  # a live process that is not us
    with pytest.raises(RunDirError, match="in use by another run"):
        run(raw, resume=True)


def test_stale_lock_of_a_dead_process_is_ignored(toy_config):
    raw = toy_config("supervised")
    raw["trainer"]["max_steps"] = 1
    out = Path(raw["output_dir"])
    out.mkdir(parents=True)
    (out / "run.lock").write_text("999999")
    run(raw)
    assert (out / "metrics.json").exists()


def test_resume_of_a_missing_run(toy_config):
    with pytest.raises(RunDirError, match="does not exist"):
        run(toy_config("supervised"), resume=True)


def test_ssl_algorithm_without_unlabeled_data(toy_config):
    raw = toy_config("fixmatch")
    raw["data"]["sampling"]["rest_as_unlabeled"] = False
    with pytest.raises(ConfigError, match="learns from unlabeled text"):
        run(raw)


# ---------------------------------------------------------------------------------------
# Fuzz: random bytes and Unicode through tokenization, augmentation and prediction
# ---------------------------------------------------------------------------------------


def random_texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "\x00", "\u200b\ufeff", "a" * 20000, "\n\t\r", "🙂" * 50, "\\" * 10]
    for _ in range(n):
        kind = rng.random()
        if kind < 0.3:
            texts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(200))).decode("utf-8", "replace"))
        elif kind < 0.6:
            texts.append("".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(rng.randrange(300))))
        else:
            texts.append("".join(chr(rng.randrange(0, 0x80)) for _ in range(rng.randrange(5000))))
    return texts


def test_fuzz_tokenize_augment_predict(toy_config):
    from transformers import AutoTokenizer

    from ssl_text.augment.collate import TextCollator
    from ssl_text.config import ViewConfig, ViewsConfig
    from ssl_text.pipelines.predict import predict_texts
    from ssl_text.tasks.text_classification import TextClassification

    raw = toy_config("supervised")
    raw["trainer"]["max_steps"] = 1
    run(raw)
    texts = random_texts(0, 60)
    tokenizer = AutoTokenizer.from_pretrained(Path(raw["output_dir"]) / "best")
    ids = TextClassification().tokenize(tokenizer, texts, max_length=32)["input_ids"]
    views = ViewsConfig(weak=ViewConfig(), strong=ViewConfig(mask_prob=0.5, delete_prob=0.5))
    collator = TextCollator(tokenizer, views, ("lb", "ulb_weak", "ulb_strong"))
    batch = collator.unlabeled({"input_ids": ids, "index": list(range(len(ids)))}, torch.Generator().manual_seed(0))
    assert batch["ulb_strong"]["input_ids"].shape[0] == len(texts)
    assert (batch["ulb_strong"]["attention_mask"].sum(1) >= 2).all()  # [CLS] and [SEP] survive
    records = predict_texts(raw["output_dir"], texts)
    assert len(records) == len(texts)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in records)
