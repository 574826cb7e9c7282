"""Strict config loading: unknown keys, wrong types, missing values, overrides."""

import pytest
import yaml

from ssl_text.config import ConfigError, apply_overrides, to_dict
from ssl_text.training.run_config import load_config, parse_config

MINIMAL = {"output_dir": "runs/x", "data": {"labeled": {"path": "train.csv"}}, "algorithm": {"name": "fixmatch"}}


def write(tmp_path, raw):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_minimal_config_gets_defaults(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.algorithm.tau == 0.95
    assert cfg.trainer.mu == 4
    assert cfg.data.labeled.text_columns == ["text"]


def test_unknown_key_is_named_with_the_file(tmp_path):
    raw = {**MINIMAL, "trainer": {"max_step": 10}}
    path = write(tmp_path, raw)
    with pytest.raises(ConfigError, match=r"run\.yaml: unknown key `trainer\.max_step`"):
        load_config(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, {**MINIMAL, "trainer": {"max_steps": "many"}})
    with pytest.raises(ConfigError, match=r"`trainer\.max_steps` is 'many' \(str\); expected int"):
        load_config(path)


def test_an_unquoted_no_is_explained_and_a_quoted_one_is_taken(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"`trainer\.mixed_precision` is False; .* write 'no' in quotes"):
        load_config(path, ["trainer.mixed_precision=no"])
    assert load_config(path, ["trainer.mixed_precision='no'"]).trainer.mixed_precision == "no"


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(ConfigError, match="trainer.mu"):
        load_config(write(tmp_path, {**MINIMAL, "trainer": {"mu": True}}))


def test_missing_required_value_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key `data\.labeled\.path`"):
        load_config(write(tmp_path, {**MINIMAL, "data": {"labeled": {}}}))
    with pytest.raises(ConfigError, match="missing required key `output_dir`"):
        load_config(write(tmp_path, {"data": MINIMAL["data"]}))


def test_algorithm_keys_are_checked_by_the_algorithm(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key `algorithm\.tau`"):
        load_config(write(tmp_path, {**MINIMAL, "algorithm": {"name": "supervised", "tau": 0.9}}))
    with pytest.raises(ConfigError, match="unknown algorithm `fixmach`"):
        load_config(write(tmp_path, {**MINIMAL, "algorithm": {"name": "fixmach"}}))


def test_dotted_overrides_are_typed(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL), ["trainer.max_steps=200", "algorithm.tau=0.9", "views.strong.aug_columns=[aug_0]"])
    assert cfg.trainer.max_steps == 200
    assert cfg.algorithm.tau == 0.9
    assert cfg.views.strong.aug_columns == ["aug_0"]


def test_override_with_wrong_type_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="trainer.learning_rate"):
        load_config(write(tmp_path, MINIMAL), ["trainer.learning_rate=fast"])


def test_override_needs_equals():
    with pytest.raises(ConfigError, match="has no `=`"):
        apply_overrides({}, ["trainer.max_steps"])


@pytest.mark.parametrize(
    "override,key",
    [
        ("trainer.lb_batch_size=0", "trainer.lb_batch_size"),
        ("trainer.lb_batch_size=-4", "trainer.lb_batch_size"),
        ("trainer.mu=0", "trainer.mu"),
        ("algorithm.tau=1.5", "algorithm.tau"),
        ("views.strong.mask_prob=1.0", "views.strong.mask_prob"),
        ("data.sampling.fraction_per_class=1.0", "data.sampling.fraction_per_class"),
        ("data.sampling={num_per_class: 10, fraction_per_class: 0.1}", "data.sampling.num_per_class"),
    ],
)
def test_values_out_of_range_are_refused(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(write(tmp_path, MINIMAL), [override])


def test_round_trip_through_saved_yaml(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL), ["data.label_map={1: World, 2: Sports}"])
    again = parse_config(yaml.safe_load(yaml.safe_dump(to_dict(cfg))))
    assert to_dict(again) == to_dict(cfg)
    assert again.data.label_map == {"1": "World", "2": "Sports"}


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
