"""Optimizer parameter groups: weight decay only on weight matrices, layer-wise learning-rate decay."""

from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from ssl_text.config import ConfigError
from ssl_text.training.param_groups import layer_depth, optimizer_groups
from ssl_text.training.run_config import parse_config


def lr_of(groups, param):
    return next(g["lr"] for g in groups if any(p is param for p in g["params"]))


def test_layer_depth_counts_embeddings_encoder_layers_and_head():
    assert layer_depth("bert.embeddings.word_embeddings.weight", 2) == 0
    assert layer_depth("bert.encoder.layer.0.attention.self.query.weight", 2) == 1
    assert layer_depth("bert.encoder.layer.1.output.dense.bias", 2) == 2
    assert layer_depth("bert.pooler.dense.weight", 2) == 3
    assert layer_depth("classifier.weight", 2) == 3


def test_layer_decay_scales_each_layers_learning_rate(tiny_bert_dir):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
    named = dict(model.named_parameters())
    groups = optimizer_groups(model, learning_rate=1e-3, weight_decay=0.1, layer_decay=0.5)
    # 2 encoder layers: the head trains at lr, layer 1 at lr/2, layer 0 at lr/4, the embeddings at lr/8.
    assert lr_of(groups, named["classifier.weight"]) == pytest.approx(1e-3)
    assert lr_of(groups, named["bert.encoder.layer.1.output.dense.weight"]) == pytest.approx(5e-4)
    assert lr_of(groups, named["bert.encoder.layer.0.output.dense.weight"]) == pytest.approx(2.5e-4)
    assert lr_of(groups, named["bert.embeddings.word_embeddings.weight"]) == pytest.approx(1.25e-4)
    assert sum(len(g["params"]) for g in groups) == len(named)
    for g in groups:  # biases and LayerNorm weights (1-d) never decay, matrices always do
        assert g["weight_decay"] == (0.0 if all(p.ndim < 2 for p in g["params"]) else 0.1)


def test_without_layer_decay_there_are_two_groups_at_the_full_rate(tiny_bert_dir):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
    groups = optimizer_groups(model, learning_rate=1e-3, weight_decay=0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0] and {g["lr"] for g in groups} == {1e-3}


def test_layer_decay_on_a_model_without_layers_says_what_to_do():
    with pytest.raises(ValueError, match="no `config.num_hidden_layers`.*unset `trainer.layer_decay`"):
        optimizer_groups(torch.nn.Linear(2, 2), 1e-3, 0.0, layer_decay=0.5)


def test_layer_decay_that_would_match_no_layer_is_refused_not_ignored():
    model = torch.nn.Linear(2, 2)
    model.config = SimpleNamespace(num_hidden_layers=2)  # counts layers, but names none the decay can find
    with pytest.raises(ValueError, match="named like an embedding or an encoder layer.*unset `trainer.layer_decay`"):
        optimizer_groups(model, 1e-3, 0.0, layer_decay=0.5)


@pytest.mark.parametrize("value", [0.0, 1.5, -0.65])
def test_layer_decay_outside_zero_one_is_refused(toy_config, value):
    raw = toy_config("supervised")
    raw["trainer"]["layer_decay"] = value
    with pytest.raises(ConfigError, match="trainer.layer_decay"):
        parse_config(raw)


def test_the_trainer_applies_layer_decay_and_logs_the_heads_rate(toy_config, tiny_bert_dir):
    from safetensors.torch import load_file

    from ssl_text.pipelines.train import train

    def embeddings(path):
        state = load_file(f"{path}/model.safetensors")
        return next(v for k, v in state.items() if k.endswith("embeddings.word_embeddings.weight"))

    changes = {}
    for layer_decay in (None, 1e-3):
        raw = toy_config("supervised")
        raw["output_dir"] += f"_{layer_decay}"
        raw["trainer"].update(max_steps=2, lr_schedule="constant", warmup_ratio=0.0, learning_rate=1e-3, layer_decay=layer_decay)
        metrics = train(parse_config(raw))
        assert metrics["last_train_logs"]["lr"] == pytest.approx(1e-3)
        changes[layer_decay] = (embeddings(f"{raw['output_dir']}/best") - embeddings(tiny_bert_dir)).abs().max().item()
    # Two Adam steps move a weight by up to about 2 * lr: 2e-3 at the full rate; the embeddings sit below
    # the 2 encoder layers, so they train at lr * 1e-3 ** 3 and move by about 2e-12.
    assert changes[None] > 1e-4 and changes[1e-3] < 1e-8
