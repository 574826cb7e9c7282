"""The mean-pooling classifier (ssl_text/models/mean_pooling.py): chosen from the model folder, equal to the
sentence-transformers embedding, started as a logistic regression of the labels, and loadable by plain transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification, pipeline

from ssl_text.models.mean_pooling import MeanPoolingForSequenceClassification, mean_pool
from ssl_text.models.resolve import resolve_model_path, sentence_pooling
from ssl_text.tasks import build_task
from ssl_text.training.head_init import fit_head

LABELS = ["a", "b", "c"]


def make_sentence_transformer(encoder_dir: str, folder: Path, pooling_config: dict) -> str:
    """A sentence-transformers folder around `encoder_dir` with the given pooling config."""
    shutil.copytree(encoder_dir, folder)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    return str(folder)


@pytest.fixture(scope="module")
def st_dir(tiny_bert_dir, tmp_path_factory) -> str:
    return make_sentence_transformer(
        tiny_bert_dir, tmp_path_factory.mktemp("st") / "model", {"embedding_dimension": 32, "pooling_mode": "mean"}
    )


def test_sentence_pooling_reads_both_config_formats(tiny_bert_dir, tmp_path):
    old = make_sentence_transformer(tiny_bert_dir, tmp_path / "old", {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    new = make_sentence_transformer(tiny_bert_dir, tmp_path / "new", {"pooling_mode": "mean"})
    assert sentence_pooling(old) == "cls" and sentence_pooling(new) == "mean"
    assert sentence_pooling(tiny_bert_dir) is None  # a plain transformers folder
    assert sentence_pooling(resolve_model_path("packaged:all-MiniLM-L6-v2")) == "mean"


def test_a_run_keeps_the_cls_pooler_unless_the_config_asks(st_dir, toy_config):
    from accelerate import Accelerator

    from ssl_text.pipelines.train import prepare
    from ssl_text.training.run_config import parse_config

    raw = toy_config("supervised")
    raw["model"]["name_or_path"] = st_dir
    assert isinstance(prepare(parse_config(raw, "test"), Accelerator()).model, BertForSequenceClassification)


def test_the_head_follows_the_folder_unless_the_config_says(st_dir, tiny_bert_dir):
    task = build_task("text_classification")
    assert isinstance(task.load_model(st_dir, LABELS), MeanPoolingForSequenceClassification)
    assert isinstance(task.load_model(st_dir, LABELS, "cls"), BertForSequenceClassification)
    assert isinstance(task.load_model(tiny_bert_dir, LABELS), BertForSequenceClassification)
    assert isinstance(task.load_model(tiny_bert_dir, LABELS, "mean"), MeanPoolingForSequenceClassification)


def test_mean_pool_averages_only_the_kept_positions():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]
    torch.testing.assert_close(mean_pool(hidden, None), torch.tensor([[104 / 3, 106 / 3]]))


def test_embeddings_are_the_sentence_transformers_embeddings(st_dir):
    from sentence_transformers import SentenceTransformer

    texts = ["stocks fell sharply", "the team won the cup final"]
    model = build_task("text_classification").load_model(st_dir, LABELS).eval()
    batch = AutoTokenizer.from_pretrained(st_dir)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model.embed(**batch).numpy()
    reference = SentenceTransformer(st_dir, device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_the_head_starts_as_the_logistic_regression_of_the_labels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 5))
    y = np.arange(30) % 3
    weight, bias = fit_head(x, y, 3)
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    logits = torch.tensor(x @ weight.T + bias)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), reference.predict_proba(x), atol=1e-6)
    # two classes: scikit-learn's single weight vector becomes two logits with the same probabilities
    weight, bias = fit_head(x, y % 2, 2)
    binary = LogisticRegression(C=1.0, max_iter=1000).fit(x, y % 2)
    np.testing.assert_allclose(torch.softmax(torch.tensor(x @ weight.T + bias), -1).numpy(), binary.predict_proba(x), atol=1e-6)
    # a class without labels is never predicted
    weight, bias = fit_head(x, y % 2, 3)
    assert np.all(weight[2] == 0) and bias[2] < bias[:2].min()


def test_a_saved_classifier_loads_with_plain_transformers_and_gives_the_same_logits(st_dir, tmp_path):
    model = build_task("text_classification").load_model(st_dir, LABELS).eval()
    model.set_head(np.arange(3 * 32, dtype=np.float32).reshape(3, 32) / 100, np.array([0.1, -0.2, 0.3]))
    model.save_pretrained(tmp_path / "saved")
    AutoTokenizer.from_pretrained(st_dir).save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "mean_pooling.py").is_file()
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSequenceClassification"] == "mean_pooling.MeanPoolingForSequenceClassification"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved", trust_remote_code=True).eval()
    batch = AutoTokenizer.from_pretrained(st_dir)(["stocks fell sharply"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
    classify = pipeline("text-classification", model=str(tmp_path / "saved"), trust_remote_code=True)
    assert classify("stocks fell sharply")[0]["label"] in LABELS
    # ssl-text reloads it as the same class, with its trained head
    again = build_task("text_classification").load_model(str(tmp_path / "saved"), LABELS)
    assert isinstance(again, MeanPoolingForSequenceClassification)
    torch.testing.assert_close(again.classifier.bias, model.classifier.bias)


def test_a_run_on_a_mean_pooling_encoder_starts_from_the_labels_head(st_dir, toy_config):
    from accelerate import Accelerator

    from ssl_text.pipelines.train import prepare
    from ssl_text.training.head_init import embed_rows
    from ssl_text.training.inference import predict_logits
    from ssl_text.training.run_config import parse_config

    raw = toy_config("supervised")
    raw["model"] = {"name_or_path": st_dir, "pooling": "auto"}
    cfg = parse_config(raw, "test")
    accelerator = Accelerator()
    prepared = prepare(cfg, accelerator)
    assert isinstance(prepared.model, MeanPoolingForSequenceClassification)
    embeddings = embed_rows(accelerator, prepared.model, prepared.labeled, 16, prepared.tokenizer.pad_token_id)
    weight, bias = fit_head(embeddings, np.asarray(prepared.labeled["label"]), len(prepared.label_names))
    # the model's logits at the start are the logistic regression's decision values
    logits = predict_logits(accelerator, prepared.model, prepared.labeled, 16, prepared.tokenizer.pad_token_id)
    np.testing.assert_allclose(logits, embeddings @ weight.T + bias, atol=1e-4)
