"""Self-training and distillation refuse, before loading any teacher, a config without unlabeled text."""

import pytest

from ssl_text.config import ConfigError
from ssl_text.pipelines.distill import teacher_targets
from ssl_text.pipelines.self_training import PseudoLabeling, label_pool
from ssl_text.training.run_config import parse_config


@pytest.fixture
def no_pool(toy_config):
    raw = toy_config("supervised")
    raw["data"]["sampling"]["rest_as_unlabeled"] = False
    return parse_config(raw)


def test_self_training_without_unlabeled_text(no_pool, tmp_path):
    with pytest.raises(ConfigError, match=r"self-training .* no `data.unlabeled` .*rest_as_unlabeled: true"):
        label_pool(no_pool, tmp_path / "no_teacher", PseudoLabeling(), tmp_path / "pool")
    assert not (tmp_path / "pool").exists()


def test_distillation_without_unlabeled_text(no_pool, tmp_path):
    with pytest.raises(ConfigError, match=r"distillation .* no `data.unlabeled` .*rest_as_unlabeled: true"):
        teacher_targets(no_pool, tmp_path / "no_teacher", 1.0, tmp_path / "targets")
    assert not (tmp_path / "targets").exists()


def test_a_streamed_pool_is_refused_by_teacher_labelling(toy_config, tmp_path):
    raw = toy_config("supervised")
    raw["data"]["sampling"]["rest_as_unlabeled"] = False
    raw["data"]["unlabeled"] = {"path": raw["data"]["test"]["path"], "streaming": True, "label_column": None}
    with pytest.raises(ConfigError, match=r"self-training .* streamed corpus .*streaming: false"):
        label_pool(parse_config(raw), tmp_path / "no_teacher", PseudoLabeling(), tmp_path / "pool")
    assert not (tmp_path / "pool").exists()


def test_a_missing_paraphrase_falls_back_to_the_original_text(tiny_bert_dir):
    import datasets
    import torch

    from ssl_text.config import DataConfig, DatasetSpec, ViewConfig, ViewsConfig
    from ssl_text.tasks.text_classification import TextClassification

    task = TextClassification()
    tokenizer = task.load_tokenizer(tiny_bert_dir)
    ds = datasets.Dataset.from_dict({"text": ["the market", "a goal"], "aug_0": ["the big market", None], "index": [0, 1]})
    ds = task.encode(ds, tokenizer, DataConfig(labeled=DatasetSpec(path="x")), [], ["aug_0"])
    assert ds["aug_0__input_ids"][1] == []  # no paraphrase: no ids, not [CLS] [SEP]
    collator = task.collator(tokenizer, ViewsConfig(strong=ViewConfig(aug_columns=["aug_0"])), ("ulb_strong",))
    view = collator.unlabeled(ds[:2], torch.Generator().manual_seed(0))["ulb_strong"]["input_ids"]
    assert tokenizer.decode(view[0], skip_special_tokens=True) == "the big market"
    assert tokenizer.decode(view[1], skip_special_tokens=True) == "a goal"
