"""The one run lifecycle of train, pretrain, distill and self-train, and the `ssl-text` command around it:
launch check, run-directory checks, validation before any write, a finished run kept as recorded,
a message (not a traceback) for a stopped run, and no sub-command that exits 0 without doing its job."""

import argparse
import json
from pathlib import Path

import pytest
import yaml

from ssl_text.cli.main import EXIT_BAD_INPUT, build_parser, main
from ssl_text.config import ConfigError, save_config
from ssl_text.pipelines.distill import distill, parse_distill_config
from ssl_text.pipelines.pretrain import parse_pretrain_config, pretrain
from ssl_text.pipelines.self_training import self_train
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import RunDirError, check_run_dir

ENTRY_POINTS = ("train", "pretrain", "distill", "self-train")


def pretrain_raw(tiny_bert_dir: str, toy_files: dict, out: Path) -> dict:
    """Masked-LM pretraining of the tiny BERT on the toy texts, a few steps."""
    return {
        "output_dir": str(out),
        "task": "text_classification",
        "model": {"name_or_path": tiny_bert_dir},
        "data": {"unlabeled": [{"path": toy_files["train"], "label_column": None}], "validation_fraction": 0.1,
                 "max_length": 32},
        "trainer": {"max_steps": 2, "lb_batch_size": 8, "learning_rate": 1e-3, "warmup_ratio": 0.0, "eval_every": 1,
                    "save_every": 2, "log_every": 1, "progress_bar": False},
    }  # fmt: skip


def start_run(entry: str, toy_config, tiny_bert_dir: str, toy_files: dict, tmp_path: Path, *, bad_data: bool = False,
              **kwargs):
    """Start `entry` (an `ssl-text` command) through its Python entry point on the toy data; `bad_data`
    names a text column the data does not have."""
    if entry == "pretrain":
        raw = pretrain_raw(tiny_bert_dir, toy_files, tmp_path / "run")
        if bad_data:
            raw["data"]["unlabeled"][0]["text_columns"] = ["nope"]
        return pretrain(parse_pretrain_config(raw), **kwargs)
    raw = toy_config("supervised")
    raw["output_dir"] = str(tmp_path / "run")
    if bad_data:
        raw["data"]["labeled"]["text_columns"] = ["nope"]
    if entry == "train":
        return train(parse_config(raw), **kwargs)
    if entry == "distill":
        return distill(*parse_distill_config({**raw, "distill": {"teacher": tiny_bert_dir}}), **kwargs)
    return self_train(parse_config(raw), 1, **kwargs)


def existing_run(out: Path) -> dict:
    """A run directory as an earlier run leaves it; returns every file's bytes."""
    (out / "checkpoints" / "step_0000004").mkdir(parents=True)
    (out / "checkpoints" / "step_0000004" / "model.safetensors").write_bytes(b"\x00weights")
    (out / "config.yaml").write_text("output_dir: earlier\n")
    (out / "metrics.json").write_text(json.dumps({"train_seconds": 1360.8}))
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------
# Before anything is written
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_checks_the_launch_before_anything_else(entry, toy_config, tiny_bert_dir, toy_files,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's, without a backend that joins the processes
    with pytest.raises(ConfigError, match="2 processes were launched"):
        start_run(entry, toy_config, tiny_bert_dir, toy_files, tmp_path)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_an_output_dir_that_is_a_file_is_named_with_the_fix(entry, toy_config, tiny_bert_dir, toy_files, tmp_path):
    (tmp_path / "run").write_text("not a directory")
    with pytest.raises(RunDirError, match=r"output_dir .*run is a file, not a directory; set output_dir to a directory"):
        start_run(entry, toy_config, tiny_bert_dir, toy_files, tmp_path)
    assert (tmp_path / "run").read_text() == "not a directory"


def test_an_output_dir_under_a_file_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match=r"lies under .*file, which is a file"):
        check_run_dir(tmp_path / "file" / "run", resume=False, overwrite=False)


def test_cli_output_dir_that_is_a_file_exits_2_without_a_traceback(toy_config, tmp_path, capsys):
    raw = toy_config("supervised")
    raw["output_dir"] = str(tmp_path / "taken")
    (tmp_path / "taken").write_text("x")
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config)]) == EXIT_BAD_INPUT
    assert "is a file, not a directory" in capsys.readouterr().err


def test_an_invalid_saved_config_is_named_on_resume(toy_config):
    raw = toy_config("supervised")
    out = Path(raw["output_dir"])
    out.mkdir(parents=True)
    save_config(parse_config(raw), out / "config.yaml")
    saved = yaml.safe_load((out / "config.yaml").read_text())
    saved["trainer"]["lb_batch_size"] = -4  # edited by hand since the run started
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=r"config saved in .*config.yaml is not valid .*lb_batch_size.* is -4"):
        train(parse_config(raw), resume=True)


# ---------------------------------------------------------------------------------------
# A finished run, a run without validation, the self-training default
# ---------------------------------------------------------------------------------------


def test_resume_of_a_finished_run_keeps_its_recorded_metrics(toy_config, capsys):
    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=2)
    train(parse_config(raw))
    path = Path(raw["output_dir"]) / "metrics.json"
    recorded = json.loads(path.read_text())
    recorded["train_seconds"] = 1360.8  # a long run's time, which a re-evaluation must not replace
    path.write_text(json.dumps(recorded, indent=2))
    before = path.stat().st_mtime_ns
    capsys.readouterr()
    assert train(parse_config(raw), resume=True) == recorded
    assert path.stat().st_mtime_ns == before and json.loads(path.read_text())["train_seconds"] == 1360.8
    assert "holds a finished run" in capsys.readouterr().out


@pytest.mark.parametrize("entry", ["train", "pretrain"])
def test_a_run_without_validation_says_so_once(entry, toy_config, tiny_bert_dir, toy_files, tmp_path, capsys):
    if entry == "train":
        raw = toy_config("supervised")
        raw["data"]["validation"] = None
        raw["trainer"].update(max_steps=2)
        metrics, said = train(parse_config(raw)), "has no `data.validation`"
    else:
        raw = pretrain_raw(tiny_bert_dir, toy_files, tmp_path / "run")
        raw["data"]["validation_fraction"] = 0.0
        metrics, said = pretrain(parse_pretrain_config(raw)), "no held-out sequences"
    assert metrics["selected_on"] == "last step"
    out = capsys.readouterr().out
    assert out.count(said) == 1 and out.count("`trainer.eval_every` (") == 1


def test_a_run_with_validation_does_not_warn(toy_config, capsys):
    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=1)
    train(parse_config(raw))
    assert "validation" not in capsys.readouterr().out


def test_self_train_defaults_to_the_documented_tau(toy_config, tmp_path, monkeypatch):
    import ssl_text.pipelines.self_training as st

    seen = []
    monkeypatch.setattr(st, "self_train", lambda cfg, rounds, labeling, **kw: seen.append(labeling) or [])
    config = tmp_path / "teacher.yaml"
    config.write_text(yaml.safe_dump(toy_config("supervised")))
    assert main(["self-train", str(config), "--rounds", "1"]) == 0
    assert seen[0].tau == 0.9 and seen[0].lambda_u == 1.0


# ---------------------------------------------------------------------------------------
# The command line: every sub-command does its job
# ---------------------------------------------------------------------------------------


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) of every sub-command that takes no further sub-command."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield path, parser
    for group in groups:
        for name, sub in group.choices.items():
            yield from leaf_commands(sub, (*path, name))


def test_every_sub_command_runs_a_handler():
    leaves = dict(leaf_commands(build_parser()))
    assert ("augment", "back-translate") in leaves and ("train",) in leaves
    missing = [" ".join(path) for path, sub in leaves.items() if not callable(sub.get_default("run"))]
    assert missing == [], f"sub-commands that would parse and do nothing: {missing}"


def test_augment_back_translate_writes_its_output(tmp_path):
    pytest.importorskip("sentencepiece", reason="pip install sentencepiece (builds the tiny Marian tokenizer)")
    from datasets import Dataset, load_from_disk

    from ssl_text.augment.testing import build_tiny_marian_pair

    forward, backward = build_tiny_marian_pair(tmp_path / "marian")
    texts = ["The cat sat on the mat.", "Oil prices fell for the third day.", "The team won the final."]
    Dataset.from_dict({"text": texts}).to_json(tmp_path / "in.jsonl")
    out = tmp_path / "bt"
    rc = main(["augment", "back-translate", "--data", str(tmp_path / "in.jsonl"), "--out", str(out),
               "--forward-model", forward, "--backward-model", backward, "--pivot", "xx", "--batch-size", "8",
               "--max-new-tokens", "8"])  # fmt: skip
    assert rc == 0
    written = load_from_disk(str(out))
    assert written["text"] == texts and "aug_0" in written.column_names and (out / "data.parquet").is_file()


def test_augment_back_translate_reports_bad_input_with_status_2(tmp_path, capsys):
    rc = main(["augment", "back-translate", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "bt")])
    assert rc == EXIT_BAD_INPUT and "no such file" in capsys.readouterr().err


def test_resume_accepts_a_new_thread_count_or_progress_bar_but_not_a_new_run(toy_config, tmp_path):
    """`trainer.num_threads` and `trainer.progress_bar` change how a run is computed or shown, not what it trains."""
    from ssl_text.training.lifecycle import check_resume_config

    raw = toy_config("supervised")
    save_config(parse_config(raw), tmp_path / "config.yaml")
    raw["trainer"].update(num_threads=3, progress_bar=True)
    raw["output_dir"] = str(tmp_path / "moved")
    check_resume_config(tmp_path, parse_config(raw), parse_config)
    raw["trainer"]["learning_rate"] = 2e-3
    with pytest.raises(ConfigError, match=r"differs from the one saved in .*config\.yaml at \['trainer\.learning_rate'\]"):
        check_resume_config(tmp_path, parse_config(raw), parse_config)


# ---------------------------------------------------------------------------------------
# Known errors end the command with a message; checks that need the data run before any write
# ---------------------------------------------------------------------------------------


def test_a_diverged_run_exits_with_the_message_not_a_traceback(toy_config, tmp_path, monkeypatch, capsys):
    from ssl_text.cli.main import EXIT_DIVERGED
    from ssl_text.training.trainer import Trainer

    monkeypatch.setattr(Trainer, "all_finite", lambda self, loss: False)  # every step's loss is NaN
    raw = toy_config("supervised")
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config), "trainer.max_nonfinite_steps=2"]) == EXIT_DIVERGED
    err = capsys.readouterr().err
    checkpoint = Path(raw["output_dir"]) / "checkpoints" / "step_0000000"
    assert "ssl-text train: error: the loss was NaN or infinite in 2 steps in a row" in err
    assert "learning rate (0.001) is likely too high" in err and f"checkpoint was saved to {checkpoint}" in err
    assert "Traceback" not in err and checkpoint.is_dir()


@pytest.mark.parametrize("command", ["pretrain", "distill"])
def test_an_unknown_override_key_is_blamed_on_the_override(command, toy_config, tiny_bert_dir, toy_files, tmp_path,
                                                           capsys):
    if command == "pretrain":
        raw = pretrain_raw(tiny_bert_dir, toy_files, tmp_path / "run")
    else:
        raw = {**toy_config("supervised"), "distill": {"teacher": tiny_bert_dir}}
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main([command, str(config), "trainer.colour=red"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "command-line override `trainer.colour=red`: unknown key `trainer.colour`" in err and str(config) not in err


def test_pretrain_checks_max_length_and_select_metric_at_load(tiny_bert_dir, toy_files, tmp_path):
    raw = pretrain_raw(tiny_bert_dir, toy_files, tmp_path / "run")
    raw["data"]["max_length"] = 512  # the tiny BERT has 128 positions
    with pytest.raises(ConfigError, match=r"`data.max_length` is 512, but the model .* has 128 positions"):
        parse_pretrain_config(raw)
    raw = pretrain_raw(tiny_bert_dir, toy_files, tmp_path / "run")
    for metric, objective in (("loss", "mlm"), ("f1", "mlm"), ("accuracy", "contrastive")):
        raw["trainer"]["select_metric"], raw["pretrain"] = metric, {"objective": objective}
        with pytest.raises(ConfigError, match=rf"`trainer.select_metric` is '{metric}', which objective `{objective}`"):
            parse_pretrain_config(raw)
    raw["trainer"]["select_metric"], raw["pretrain"] = "retrieval_accuracy", {"objective": "contrastive"}
    assert parse_pretrain_config(raw).trainer.select_metric == "retrieval_accuracy"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("entry", ["distill", "self-train"])
def test_a_misspelt_aug_column_stops_the_run_before_any_write(entry, toy_config, tiny_bert_dir, toy_files, tmp_path):
    from ssl_text.data.loading import DataError

    raw = toy_config("supervised")  # round 0 of self-training needs no views; its students do
    raw["output_dir"] = str(tmp_path / "run")
    raw["views"] = {"weak": {"aug_columns": ["aug_0"]}, "strong": {"aug_columns": ["aug_0"]}}  # the toy data has none
    with pytest.raises(DataError, match=r"data.unlabeled: views name `aug_columns` \['aug_0'\]"):
        if entry == "distill":
            distill(*parse_distill_config({**raw, "distill": {"teacher": tiny_bert_dir}}))
        else:
            self_train(parse_config(raw), 1)
    assert not (tmp_path / "run").exists()


def test_pretraining_views_refuse_aug_columns_at_load(tiny_bert_dir, toy_files, tmp_path):
    """Pretraining has no text views: a paraphrase column is refused with the config, before any data loads."""
    raw = pretrain_raw(tiny_bert_dir, toy_files, tmp_path / "run")
    raw["pretrain"] = {"objective": "contrastive", "view2": {"aug_columns": ["aug_0"]}}
    with pytest.raises(ConfigError, match=r"`pretrain.view2.aug_columns` \(back_translation\) works on text"):
        parse_pretrain_config(raw)
