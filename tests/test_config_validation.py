"""Every mistake the config alone can reveal stops `load_config`, before any data or model loads, with the
key, the value found and the fix; the source it names is the file or the command-line override."""

import dataclasses
import json
import math
import re
import types
from pathlib import Path

import pytest
import yaml

from ssl_text.config import ConfigError
from ssl_text.tasks import TASKS, build_task
from ssl_text.training.run_config import load_config, parse_config

# The data files do not exist: load_config must not read them.
MINIMAL = {"output_dir": "runs/x", "data": {"labeled": {"path": "missing.csv"}}, "algorithm": {"name": "fixmatch"}}
NER = ["task=ner", "algorithm.name=supervised", "views.strong.delete_prob=0"]  # NER views keep every word


def write(tmp_path, raw, name="run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


# ---------------------------------------------------------------------------------------
# Ranges, NaN and infinity, zero intervals
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, found, expected",
    [
        ("trainer.learning_rate=-1", "-1.0", "expected a positive value, e.g. 5e-05"),
        ("trainer.learning_rate=0", "0.0", "expected a positive value"),
        ("trainer.learning_rate=nan", "nan", "expected a finite number"),
        ("trainer.learning_rate=.inf", "inf", "expected a finite number"),
        ("trainer.weight_decay=-0.1", "-0.1", "expected a value >= 0"),
        ("trainer.warmup_ratio=1.0", "1.0", r"in \[0, 1\)"),
        ("trainer.max_grad_norm=0", "0.0", "or null to turn gradient clipping off"),
        ("trainer.collapse_tv_bound=0", "0.0", r"in \(0, 1\]"),
        ("trainer.collapse_tv_bound=-.inf", "-inf", "expected a finite number"),
        ("trainer.collapse_patience=-1", "-1", r"an integer >= 0 \(e\.g\. 50\), or null \(or 0\) to only warn"),
        ("trainer.eval_every=0", "0", r"positive integer \(steps between evaluations\), e.g. 100"),
        ("trainer.save_every=0", "0", r"positive integer \(steps between checkpoints\)"),
        ("trainer.log_every=-1", "-1", r"positive integer \(steps between log lines\)"),
        ("trainer.keep_checkpoints=0", "0", r"positive integer \(checkpoints kept\), e.g. 2"),
        ("trainer.max_nonfinite_steps=0", "0", "positive integer"),
        ("trainer.seed=-1", "-1", "expected an integer >= 0"),
        ("data.sampling.seed=-1", "-1", "expected an integer >= 0"),
        ("algorithm.tau=.nan", "nan", "expected a finite number"),
        ("algorithm.lambda_u=inf", "inf", "expected a finite number"),
        ("views.strong.mask_prob=nan", "nan", "expected a finite number"),
    ],
)
def test_values_a_run_cannot_use_are_refused_at_load(tmp_path, override, found, expected):
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), [override])
    message = str(err.value)
    assert message.startswith(f"command-line override `{override}`: ")
    assert f"`{key}` is {found}" in message
    assert re.search(expected, message), message


def test_nan_in_the_yaml_file_is_named_with_the_file(tmp_path):
    path = write(tmp_path, {**MINIMAL, "trainer": {"learning_rate": math.nan}})  # YAML writes .nan
    with pytest.raises(ConfigError, match=r"run\.yaml: `trainer\.learning_rate` is nan; expected a finite number"):
        load_config(path)


def test_zero_eval_every_never_touches_an_existing_run(tmp_path, capsys, toy_config):
    """It was a ZeroDivisionError at the first step, after `--overwrite` had wiped the previous run."""
    from ssl_text.cli.main import main

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text("{}")
    path = write(tmp_path, {**toy_config(), "output_dir": str(run_dir)})  # data and model that load
    assert main(["train", str(path), "--overwrite", "trainer.eval_every=0"]) == 2
    assert "command-line override `trainer.eval_every=0`" in capsys.readouterr().err
    assert [p.name for p in run_dir.iterdir()] == ["metrics.json"]


def test_pretrain_trainer_section_has_the_same_ranges():
    from ssl_text.pipelines.pretrain import parse_pretrain_config

    raw = {"output_dir": "x", "data": {"unlabeled": [{"path": "missing.fa"}]}, "trainer": {"eval_every": 0}}
    with pytest.raises(ConfigError, match=r"`trainer\.eval_every` is 0; expected a positive integer"):
        parse_pretrain_config(raw, "p.yaml")
    raw["trainer"] = {"num_threads": 0}  # was refused by `ssl-text train` only
    with pytest.raises(ConfigError, match=r"`trainer\.num_threads` is 0; expected a positive integer or 'auto'"):
        parse_pretrain_config(raw, "p.yaml")


def test_unknown_algorithm_task_and_view_operation_are_refused_at_load(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"override `algorithm.name=fixmach`: unknown algorithm `fixmach`"):
        load_config(path, ["algorithm.name=fixmach"])
    with pytest.raises(ConfigError, match=r"override `task=nerr`: `task` is 'nerr'; expected one of \['ner', "):
        load_config(path, ["task=nerr"])
    with pytest.raises(ConfigError, match=r"`views.strong.pipeline\[0\]` names the operation `tokn_dropout`"):
        load_config(path, ["views.strong.pipeline=[tokn_dropout(0.1)]"])


def test_views_and_algorithms_the_task_cannot_use_are_refused_at_load(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=rf"^{path}: `views.strong.delete_prob` is set for task `ner`.*use `mask_prob`"):
        load_config(path, ["task=ner"])  # the default strong view deletes tokens
    with pytest.raises(ConfigError, match=r"override `algorithm.name=uda`: `algorithm.name` is 'uda', which works on one "
                                          r"label per text, but task `ner` labels every token; choose one of .*'fixmatch'"):
        load_config(path, [*NER, "algorithm.name=uda"])
    with pytest.raises(ConfigError, match=r"`views.weak.o_word_prob` needs tags per word \(task `ner`\)"):
        load_config(path, ["views.weak.o_word_prob=0.1"])


# ---------------------------------------------------------------------------------------
# Float literals that YAML 1.1 reads as strings
# ---------------------------------------------------------------------------------------


def test_float_literals_without_a_dot_are_read_as_floats(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "trainer: {learning_rate: 1e-3, weight_decay: 1E-2}\n")
    assert yaml.safe_load(path.read_text())["trainer"]["learning_rate"] == "1e-3"  # what YAML 1.1 makes of it
    cfg = load_config(path, ["algorithm.tau=9e-1", "trainer.max_grad_norm=5e-1"])
    assert (cfg.trainer.learning_rate, cfg.trainer.weight_decay) == (1e-3, 1e-2)
    assert (cfg.algorithm.tau, cfg.trainer.max_grad_norm) == (0.9, 0.5)
    cfg = load_config(path, ["trainer.learning_rate=2e-4"])
    assert cfg.trainer.learning_rate == 2e-4 and isinstance(cfg.trainer.learning_rate, float)


def test_other_strings_in_a_float_field_are_still_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"`trainer\.learning_rate` is '1e-3x' \(str\); expected float"):
        load_config(write(tmp_path, MINIMAL), ["trainer.learning_rate=1e-3x"])
    with pytest.raises(ConfigError, match=r"`trainer\.max_steps` is '1e3' \(str\); expected int"):
        load_config(write(tmp_path, MINIMAL), ["trainer.max_steps=1e3"])


# ---------------------------------------------------------------------------------------
# Where an error comes from
# ---------------------------------------------------------------------------------------


def test_an_unknown_override_key_is_blamed_on_the_override_not_the_file(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as err:
        load_config(path, ["trainer.max_steps=5", "trainer.foo=1"])
    assert str(err.value).startswith("command-line override `trainer.foo=1`: unknown key `trainer.foo`; valid keys")
    assert str(path) not in str(err.value)
    with pytest.raises(ConfigError, match=r"^command-line override `foo.bar=1`: unknown key `foo`"):
        load_config(path, ["foo.bar=1"])  # the override made the section


def test_a_mistake_in_the_file_still_names_the_file_when_overrides_are_given(tmp_path):
    path = write(tmp_path, {**MINIMAL, "trainer": {"max_step": 10}})
    with pytest.raises(ConfigError) as err:
        load_config(path, ["trainer.max_steps=5", "trainer.eval_every=5"])
    assert str(err.value).startswith(f"{path}: unknown key `trainer.max_step`;")


def test_a_directory_given_as_the_config_file_says_so(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(MINIMAL))
    with pytest.raises(ConfigError, match=rf"{tmp_path} is a directory; pass the path to a YAML file, e\.g\. .*config\.yaml"):
        load_config(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"is a directory; pass the path to a YAML file \(this folder holds none\)"):
        load_config(empty)


# ---------------------------------------------------------------------------------------
# data.max_length against the model's position table
# ---------------------------------------------------------------------------------------


def with_model(path: str, max_length: int) -> dict:
    return {**MINIMAL, "model": {"name_or_path": path}, "data": {**MINIMAL["data"], "max_length": max_length}}


def test_max_length_beyond_the_position_table_is_refused_at_load(tiny_bert_dir):
    assert parse_config(with_model(tiny_bert_dir, 128)).data.max_length == 128  # max_position_embeddings
    with pytest.raises(ConfigError, match=r"`data.max_length` is 129, but the model .* has 128 positions \(bert: "
                                          r"max_position_embeddings 128\); set `data.max_length` to at most 128"):
        parse_config(with_model(tiny_bert_dir, 129), "run.yaml")


def test_roberta_style_models_lose_the_padding_offset(tmp_path):
    from transformers import RobertaConfig

    RobertaConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
                  max_position_embeddings=34, pad_token_id=1).save_pretrained(tmp_path)  # config.json only
    assert parse_config(with_model(str(tmp_path), 32)).data.max_length == 32
    with pytest.raises(ConfigError, match=r"is 33, .* has 32 positions \(roberta: max_position_embeddings 34, of which the first 2"):
        parse_config(with_model(str(tmp_path), 33))


def test_models_without_a_readable_config_or_position_table_are_not_checked(tmp_path):
    from transformers import EsmConfig

    EsmConfig(vocab_size=33, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
              max_position_embeddings=10, pad_token_id=1, position_embedding_type="rotary").save_pretrained(tmp_path)
    assert parse_config(with_model(str(tmp_path), 64)).data.max_length == 64  # rotary: no table to overflow
    for name in ("someone/not-in-the-cache", "new:small", str(tmp_path / "missing")):
        assert parse_config(with_model(name, 100_000)).model.name_or_path == name  # the model loader reports these


# ---------------------------------------------------------------------------------------
# trainer.select_metric
# ---------------------------------------------------------------------------------------


def test_select_metric_defaults_to_the_task_metric_and_an_explicit_one_is_kept(tmp_path):
    path = write(tmp_path, MINIMAL)
    assert load_config(path).trainer.select_metric == "accuracy"
    assert load_config(path, [*NER]).trainer.select_metric == "f1"
    ner = load_config(path, [*NER, "trainer.select_metric=accuracy"])
    assert ner.trainer.select_metric == "accuracy"
    assert load_config(path, ["trainer.select_metric=macro_f1"]).trainer.select_metric == "macro_f1"


def test_a_select_metric_the_task_does_not_report_is_refused_naming_those_it_does(tmp_path):
    with pytest.raises(ConfigError, match=r"override `trainer.select_metric=f1`: `trainer.select_metric` is 'f1', which "
                                          r"task `text_classification` does not report; choose one of \['accuracy', 'macro_f1', 'mcc'\]"):
        load_config(write(tmp_path, MINIMAL), ["trainer.select_metric=f1"])
    with pytest.raises(ConfigError, match=r"task `ner` does not report; choose one of \['f1', 'precision', 'recall', 'accuracy'\]"):
        load_config(write(tmp_path, MINIMAL), [*NER, "trainer.select_metric=PER_f1"])


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_reports_the_metrics_it_declares(name):
    import numpy as np

    task = build_task(name)
    if task.token_level:
        scores = task.compute_metrics([["B-PER", "O"], ["O"]], [["B-PER", "O"], ["B-LOC"]])
    else:
        scores = task.compute_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert task.select_metric in task.metrics and set(task.metrics) <= set(scores)


def test_an_explicit_select_metric_picks_the_model_of_an_ner_run(tmp_path, tiny_bert_dir):
    """NER used to select on f1 whatever the config said."""
    from ssl_text.pipelines.train import train
    from tests.toy_ner import make_sentences, write_conll

    files = {split: str(write_conll(tmp_path / f"{split}.txt", make_sentences(n, seed=seed)))
             for split, n, seed in (("train", 40, 1), ("validation", 12, 2))}
    raw = {
        "output_dir": str(tmp_path / "run"), "task": "ner", "model": {"name_or_path": tiny_bert_dir},
        "data": {"labeled": {"path": files["train"]}, "validation": {"path": files["validation"]}, "max_length": 32,
                 "sampling": {"num_examples": 8, "seed": 0}},
        "algorithm": {"name": "supervised"}, "views": {"strong": {"delete_prob": 0.0}},
        "trainer": {"max_steps": 3, "lb_batch_size": 4, "learning_rate": 3e-3, "warmup_ratio": 0.0, "eval_every": 1,
                    "save_every": 3, "log_every": 1, "progress_bar": False, "select_metric": "accuracy"},
    }
    metrics = train(parse_config(raw))
    history = metrics["validation_history"]
    best = max(history, key=lambda h: h["accuracy"])  # the first of the highest accuracies
    assert metrics["select_metric"] == "accuracy" and metrics["selected_step"] == best["step"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["select_metric"] == "accuracy"
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["trainer"]["select_metric"] == "accuracy"


# ---------------------------------------------------------------------------------------
# Fields of several types (`X | None`, `int | Literal["auto"]`) say what they take in words
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, expected",
    [
        ("trainer.num_threads=abc", r"`trainer\.num_threads` is 'abc' \(str\); expected an integer or 'auto'\.$"),
        ("trainer.num_threads=true", r"`trainer\.num_threads` is True \(bool\); expected an integer or 'auto'\.$"),
        ("trainer.ema_decay=high", r"`trainer\.ema_decay` is 'high' \(str\); expected a number or null\.$"),
        ("data.sampling.num_per_class=[4]", r"`data\.sampling\.num_per_class` is \[4\] \(list\); expected an integer or null\.$"),
        ("data.validation=dev.csv", r"`data\.validation` is 'dev.csv' \(str\); expected a mapping of DatasetSpec fields or null\.$"),
        ("data.labeled.format=cvs", r"`data\.labeled\.format` is 'cvs'; expected one of \['csv', .*'hub'\] or null\.$"),
        ("views.strong.pipeline=[3]", r"`views\.strong\.pipeline\[0\]` is 3 \(int\); expected a string or a mapping\.$"),
    ],
)
def test_a_field_of_several_types_says_what_it_takes_in_words(tmp_path, override, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(write(tmp_path, MINIMAL), [override])
    assert "Union" not in str(err.value) and "typing" not in str(err.value)


def test_every_field_of_several_types_says_what_it_takes_in_words():
    import typing

    from ssl_text.algorithms import ALGORITHMS
    from ssl_text.config import RunConfig
    from ssl_text.config.schema import _coerce
    from ssl_text.pipelines.distill import DistillConfig
    from ssl_text.pipelines.pretrain import PretrainRunConfig

    def unions(cls, prefix=""):
        for name, tp in typing.get_type_hints(cls).items():
            if name not in {f.name for f in dataclasses.fields(cls)}:
                continue
            members = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
            if len(members) > 1:
                yield f"{prefix}{name}", tp
            for member in members:
                inner = typing.get_args(member)[-1] if typing.get_origin(member) is list else member
                if dataclasses.is_dataclass(inner):
                    yield from unions(inner, f"{prefix}{name}.")

    classes = [RunConfig, PretrainRunConfig, DistillConfig, *(a.Config for a in ALGORITHMS.values())]
    found = [(key, tp) for cls in classes for key, tp in unions(cls)]
    assert len(found) > 20 and any(key == "trainer.num_threads" for key, _ in found)
    for key, tp in found:
        with pytest.raises(ConfigError) as err:
            _coerce(object(), tp, key, "run.yaml")
        said = str(err.value).split("; expected ", 1)[1]
        assert re.fullmatch(r"(an? [a-z ]+|'\w+'|one of \[.*\]|true or false|null|a mapping of \w+ fields)"
                            r"( or (an? [a-z ]+|'\w+'|one of \[.*\]|null|a mapping of \w+ fields))*\.", said), (key, said)


def test_a_mistake_inside_an_optional_section_is_named_not_the_section(tmp_path):
    """An unknown key under `data.unlabeled` was reported as "`data.unlabeled` ...; expected DatasetSpec | None"."""
    raw = {**MINIMAL, "data": {**MINIMAL["data"], "unlabeled": {"path": "u.csv", "txt_columns": ["text"]}}}
    with pytest.raises(ConfigError, match=r"unknown key `data\.unlabeled\.txt_columns`; valid keys under `data\.unlabeled`"):
        load_config(write(tmp_path, raw))
    with pytest.raises(ConfigError, match=r"`trainer\.max_grad_norm` is nan; expected a finite number"):
        load_config(write(tmp_path, MINIMAL), ["trainer.max_grad_norm=.nan"])
    with pytest.raises(ConfigError, match=r"`data\.label_names\[1\]` is 3 \(int\); expected str"):
        load_config(write(tmp_path, MINIMAL), ["data.label_names=[a, 3]"])
