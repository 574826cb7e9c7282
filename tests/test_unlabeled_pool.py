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
    raw["data"]["unlabeled"] = {"path": raw["data"]["labeled"]["path"], "streaming": True, "label_column": None}
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


@pytest.mark.parametrize("task_name", ["text_classification", "ner"])
def test_one_teacher_labels_the_pool_alike_whole_under_accelerate_and_shard_by_shard(task_name, toy_config, tiny_bert_dir, tmp_path):
    """Self-training labels the whole pool under Accelerate, distillation shard by shard on each process: the
    same `PoolTeacher` gives the same logits either way (to the bit for the same batches)."""
    import numpy as np
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    from ssl_text.pipelines.unlabeled_pool import PoolTeacher, load_teacher_pool
    from tests.test_ner import ner_config

    if task_name == "ner":
        from tests.toy_ner import make_sentences, write_conll

        files = {name: str(write_conll(tmp_path / f"{name}.txt", make_sentences(n, seed=s)))
                 for name, n, s in (("train", 60, 1), ("validation", 10, 2), ("test", 10, 3))}
        cfg = parse_config(ner_config(tmp_path, tiny_bert_dir, files, "supervised"))
        head = AutoModelForTokenClassification
    else:
        cfg = parse_config(toy_config("supervised"))
        head = AutoModelForSequenceClassification
    cfg.trainer.eval_batch_size = 8
    data = load_teacher_pool(cfg, "test")
    torch.manual_seed(1)
    head.from_pretrained(tiny_bert_dir, id2label=dict(enumerate(data.label_names))).save_pretrained(tmp_path / "teacher")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path / "teacher")

    whole = PoolTeacher(cfg, tmp_path / "teacher", data, Accelerator())
    logits = whole.logits(whole.pool)
    local = PoolTeacher(cfg, tmp_path / "teacher", data)
    rows = [local.pool.select(range(s, min(s + 13, len(data.unlabeled)))) for s in range(0, len(data.unlabeled), 13)]
    shards = [local.logits(r) for r in rows]
    assert len(logits) == len(data.unlabeled) == sum(len(s) for s in shards)
    for shard, r in zip(shards, rows):  # the same batches: the same numbers
        assert all(np.array_equal(a, b) for a, b in zip(shard, whole.logits(r)))
    for got, expected in zip([row for shard in shards for row in shard], logits):  # other batches: other padding
        assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-5)
