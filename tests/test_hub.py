"""Pushing runs and datasets to a Hub-compatible server on 127.0.0.1, through the real `huggingface_hub` client.

`tests/hub_server.py` stands in for huggingface.co. huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE,
HF_HOME and the token path when it is imported, so the `hub_env` fixture patches those constants
(as well as the environment) for the duration of a test; the dataset round trip loads the pushed
dataset in a fresh interpreter whose environment points at the server.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, constants

from ssl_text.cli.main import main as cli_main
from ssl_text.config import ConfigError
from ssl_text.hub.push import HubError, push_dataset, push_run
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config
from tests.hub_server import FakeHub, point_hub_clients_at

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hub():
    server = FakeHub(max_requests=1000).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hub_env(hub, monkeypatch, tmp_path):
    """Point huggingface_hub (env and import-time constants) at the local server, with a fresh cache."""
    home = tmp_path / "hf_home"
    point_hub_clients_at(hub, home, monkeypatch)
    return home


def run_config(tiny_bert_dir, toy_files, output_dir, **extra) -> dict:
    raw = {
        "output_dir": str(output_dir),
        "model": {"name_or_path": tiny_bert_dir},
        "data": {
            "labeled": {"path": toy_files["train"]},
            "sampling": {"num_per_class": 4, "seed": 0, "rest_as_unlabeled": True},
            "validation": {"path": toy_files["validation"]},
            "test": {"path": toy_files["test"]},
            "max_length": 32,
        },
        "algorithm": {"name": "fixmatch", "tau": 0.5},
        "views": {"strong": {"mask_prob": 0.25, "delete_prob": 0.1}},
        "trainer": {"max_steps": 4, "lb_batch_size": 4, "mu": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                    "eval_every": 2, "save_every": 4, "log_every": 1, "progress_bar": False},
    }
    raw.update(copy.deepcopy(extra))
    return raw


@pytest.fixture(scope="module")
def trained_run(tiny_bert_dir, toy_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub_run") / "run"
    train(parse_config(run_config(tiny_bert_dir, toy_files, out)))
    return out


def front_matter(readme: bytes) -> dict:
    text = readme.decode()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---", 2)[1])


def logits_of(model, tokenizer, texts):
    model.eval()
    with torch.no_grad():
        return model(**tokenizer(texts, return_tensors="pt", padding=True)).logits


def test_push_run_uploads_everything_and_loads_back(hub, hub_env, trained_run, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    url = push_run(trained_run, "toy-fixmatch")  # a bare name goes to the token owner's namespace
    assert url.startswith(f"{hub.url}/tester/toy-fixmatch/commit/")
    files = hub.files("tester/toy-fixmatch")
    best = trained_run / "best"  # the run already completed it into the Hub-ready folder that is pushed
    in_best = {p.relative_to(best).as_posix() for p in best.rglob("*") if p.is_file()}
    expected = {"README.md", "training_config.yaml", "metrics.json", "plots/training_curves.png",
                "plots/confusion_matrix.png", "model.safetensors", "config.json", "tokenizer_config.json"}
    assert expected <= in_best and set(files) == in_best | {".gitattributes"}, sorted(files)
    for name in in_best - {"README.md"}:  # the pushed card names the repo; the one in best/ names the run
        assert files[name] == (best / name).read_bytes(), name
    assert files["metrics.json"] == (trained_run / "metrics.json").read_bytes()
    assert files["training_config.yaml"] == (trained_run / "config.yaml").read_bytes()
    assert json.loads(files["config.json"])["id2label"] == {"0": "business", "1": "politics", "2": "science", "3": "sports"}
    # Small files only: the server asked for inline ("regular") uploads, no LFS or Xet transfer happened.
    assert not hub.unhandled, hub.unhandled

    # The card: Hub metadata in the front matter, and a body that says how the model was made.
    metrics = json.loads((trained_run / "metrics.json").read_text())
    meta = front_matter(files["README.md"])
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert meta["tags"] == ["ssl-text", "semi-supervised", "fixmatch"]
    assert "base_model" not in meta and "datasets" not in meta  # a local model and local files: no Hub ids
    (index,) = meta["model-index"]
    assert index["name"] == "toy-fixmatch"
    by_split = {
        r["dataset"]["split"]: {m["type"]: m["value"] for m in r["metrics"]} for r in index["results"]
    }
    assert by_split["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-4)
    assert by_split["test"]["f1"] == pytest.approx(metrics["test"]["macro_f1"], abs=1e-4)
    assert by_split["validation"]["accuracy"] == pytest.approx(metrics["validation"]["accuracy"], abs=1e-4)
    card = ModelCard(files["README.md"].decode())
    assert {r.dataset_split for r in card.data.eval_results} == {"validation", "test"}
    body = card.text
    for needle in ("fixmatch", "`tau` = 0.5", f"{metrics['num_labeled']} labeled", f"{metrics['num_unlabeled']} unlabeled",
                   "| strong | `token_dropout(mask_prob=0.25, delete_prob=0.1)` |", "used for model selection", metrics["hardware"],
                   'pipeline("text-classification", model="tester/toy-fixmatch", truncation=True)', "plots/confusion_matrix.png"):
        assert needle in body, needle
    assert str(Path(trained_run).parent) not in files["README.md"].decode()  # no local paths in the card

    # The pushed model loads back from the server, with a fresh cache, and computes the same logits.
    cache = tmp_path / "cache"
    remote = AutoModelForSequenceClassification.from_pretrained("tester/toy-fixmatch", cache_dir=cache)
    remote_tok = AutoTokenizer.from_pretrained("tester/toy-fixmatch", cache_dir=cache)
    local = AutoModelForSequenceClassification.from_pretrained(best)
    local_tok = AutoTokenizer.from_pretrained(best)
    texts = ["stock market and bank profit", "the team won the league match"]
    assert torch.equal(logits_of(remote, remote_tok, texts), logits_of(local, local_tok, texts))
    assert remote.config.id2label == local.config.id2label
    assert any(cache.rglob("model.safetensors")), "the model did not come through the fresh cache"


def test_cli_push_to_a_branch(hub, hub_env, trained_run, capsys):
    assert ("model", "tester/toy-branch") not in hub.repos
    assert cli_main(["push", str(trained_run), "tester/toy-branch", "--private", "--revision", "experiment"]) == 0
    assert "/tester/toy-branch/commit/" in capsys.readouterr().out
    repo = hub.repos[("model", "tester/toy-branch")]
    assert repo.private and set(repo.branches) == {"main", "experiment"}
    assert "model.safetensors" in hub.files("tester/toy-branch", "experiment")
    assert set(hub.files("tester/toy-branch", "main")) == {".gitattributes"}  # main untouched


def test_missing_token_fails_before_anything_is_uploaded(hub, hub_env, trained_run, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")
    repos_before, writes_before = set(hub.repos), len(hub.write_requests())
    with pytest.raises(HubError, match="no Hugging Face token found") as err:
        push_run(trained_run, "tester/no-token")
    assert "HF_TOKEN" in str(err.value) and "hf auth login" in str(err.value)
    assert cli_main(["push", str(trained_run), "tester/no-token"]) == 2
    assert "no Hugging Face token found" in capsys.readouterr().err
    assert set(hub.repos) == repos_before and len(hub.write_requests()) == writes_before


def test_rejected_token_fails_with_a_clear_message(hub, hub_env, trained_run, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_the_right_one")
    repos_before, writes_before = set(hub.repos), len(hub.write_requests())
    with pytest.raises(HubError, match="rejected") as err:
        push_run(trained_run, "tester/bad-token")
    message = str(err.value)
    assert "401" in message and "HF_TOKEN environment variable" in message and "settings/tokens" in message
    assert set(hub.repos) == repos_before and len(hub.write_requests()) == writes_before
    assert hub.requests[-1] == ("GET", "/api/whoami-v2")


def test_hub_config_is_validated():
    base = {"output_dir": "x", "data": {"labeled": {"path": "a.csv"}}}
    with pytest.raises(ConfigError, match="hub.repo_id"):
        parse_config({**base, "hub": {"push_to_hub": True}})
    with pytest.raises(ConfigError, match="hub.repo_id"):
        parse_config({**base, "hub": {"repo_id": "a/b/c"}})
    cfg = parse_config({**base, "hub": {"push_to_hub": True, "repo_id": "me/model", "private": True, "revision": "v1"}})
    assert (cfg.hub.repo_id, cfg.hub.private, cfg.hub.revision) == ("me/model", True, "v1")


def test_train_with_push_to_hub(hub, hub_env, tiny_bert_dir, toy_files, tmp_path, monkeypatch):
    hub_section = {"push_to_hub": True, "repo_id": "tester/pushed-at-end", "private": True}
    raw = run_config(tiny_bert_dir, toy_files, tmp_path / "bad", hub=hub_section)
    monkeypatch.setenv("HF_TOKEN", "hf_not_the_right_one")
    with pytest.raises(HubError, match="rejected"):
        train(parse_config(raw))  # before any training or any write
    assert not (tmp_path / "bad").exists()

    monkeypatch.setenv("HF_TOKEN", hub.token)
    raw = run_config(tiny_bert_dir, toy_files, tmp_path / "good", hub=hub_section)
    raw["trainer"].update(max_steps=2, eval_every=2, save_every=2)
    metrics = train(parse_config(raw))
    files = hub.files("tester/pushed-at-end")
    assert hub.repos[("model", "tester/pushed-at-end")].private
    assert json.loads(files["metrics.json"])["test"] == metrics["test"]
    assert {"model.safetensors", "README.md", "plots/training_curves.png"} <= set(files)


def test_push_dataset_round_trip(hub, hub_env, tmp_path):
    import datasets

    folder = tmp_path / "augmented"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["the match", "the bank"], "aug_0": ["a match", "a bank"]}),
            "test": datasets.Dataset.from_dict({"text": ["the vote"], "aug_0": ["a vote"]}),
        }
    ).save_to_disk(str(folder))
    assert cli_main(["push-dataset", str(folder), "tester/agnews-bt"]) == 0
    files = hub.files("tester/agnews-bt", repo_type="dataset")
    assert {"data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet", "README.md"} <= set(files)
    meta = front_matter(files["README.md"])
    assert [s["split"] for s in meta["configs"][0]["data_files"]] == ["train", "test"]

    single = tmp_path / "single"
    datasets.Dataset.from_dict({"text": ["x"]}).save_to_disk(str(single))
    push_dataset(single, "tester/single", split="unlabeled")
    assert "data/unlabeled-00000-of-00001.parquet" in hub.files("tester/single", repo_type="dataset")

    # A fresh interpreter loads the pushed dataset from the server with plain `datasets`.
    code = (
        "import json, datasets; ds = datasets.load_dataset('tester/agnews-bt'); "
        "print(json.dumps({s: ds[s].to_dict() for s in ds}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(hub_env), HF_TOKEN=hub.token, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == {"train": {"text": ["the match", "the bank"], "aug_0": ["a match", "a bank"]},
                      "test": {"text": ["the vote"], "aug_0": ["a vote"]}}


def test_card_metadata_names_hub_models_and_datasets():
    from ssl_text.hub.model_card import build_card_data

    cfg = parse_config({
        "output_dir": "x",
        "model": {"name_or_path": "packaged:all-MiniLM-L6-v2"},
        "data": {
            "labeled": {"path": "fancyzhx/ag_news", "split": "train"},
            "validation": {"path": "examples/data/ag_news/validation.csv"},
            "test": {"path": "fancyzhx/ag_news", "split": "test"},
        },
        "algorithm": {"name": "uda"},
    })
    metrics = {"validation": {"step": 10, "accuracy": 0.8, "macro_f1": 0.7}, "test": {"accuracy": 0.75, "mcc": 0.6}}
    meta = build_card_data(cfg, metrics, "me/agnews-uda").to_dict()
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["fancyzhx/ag_news"]
    assert meta["tags"] == ["ssl-text", "semi-supervised", "uda"]
    results = {(r["dataset"]["type"], r["dataset"]["split"]): r for r in meta["model-index"][0]["results"]}
    assert set(results) == {("validation.csv", "validation"), ("fancyzhx/ag_news", "test")}
    assert {m["type"]: m["value"] for m in results[("fancyzhx/ag_news", "test")]["metrics"]} == {
        "accuracy": 0.75, "matthews_correlation": 0.6}


def test_unreachable_or_offline_hub_fails_clearly(hub_env, trained_run, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    with pytest.raises(HubError, match="could not reach the Hugging Face Hub"):
        push_run(trained_run, "tester/unreachable")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="unset HF_HUB_OFFLINE"):
        push_run(trained_run, "tester/offline")
    with pytest.raises(HubError, match="not a finished ssl-text run"):
        push_run(trained_run / "best", "tester/not-a-run")


@pytest.mark.parametrize(
    "sampling,says",
    [
        ({"num_per_class": 10}, "10 per class drawn with seed 3"),
        ({"num_examples": 40}, "40 drawn at random with seed 3"),
        ({"fraction_per_class": 0.125}, "12.5% of each class drawn with seed 3"),
    ],
)
def test_card_says_how_the_labels_were_drawn_and_where_the_rest_went(sampling, says, tmp_path):
    from ssl_text.hub.model_card import _card_body

    cfg = parse_config({
        "output_dir": str(tmp_path),
        "model": {"name_or_path": "packaged:all-MiniLM-L6-v2"},
        "data": {"labeled": {"path": "train.csv"}, "sampling": {**sampling, "seed": 3, "rest_as_unlabeled": True}},
        "algorithm": {"name": "fixmatch"},
    })
    metrics = {"num_labeled": 40, "num_unlabeled": 960, "test": {"accuracy": 0.8}}
    body = _card_body(cfg, metrics, ["a", "b"], "me/run", "text-classification", tmp_path)
    assert says in body
    assert "| unlabeled | the labeled file's remaining rows, labels removed |" in body


@pytest.mark.parametrize("layer_decay,says", [(0.65, "weight decay 0.01, layer-wise learning-rate decay 0.65 |"), (None, "weight decay 0.01 |")])
def test_card_names_the_layer_wise_learning_rate_decay_when_set(layer_decay, says, tmp_path):
    from ssl_text.hub.model_card import _card_body

    cfg = parse_config({
        "output_dir": str(tmp_path),
        "model": {"name_or_path": "packaged:all-MiniLM-L6-v2"},
        "data": {"labeled": {"path": "train.csv"}},
        "algorithm": {"name": "fixmatch"},
        "trainer": {"layer_decay": layer_decay},
    })
    body = _card_body(cfg, {"num_labeled": 40, "num_unlabeled": 960}, ["a", "b"], "me/run", "text-classification", tmp_path)
    assert says in body


def test_card_says_when_the_labels_came_from_another_run(tmp_path):
    from ssl_text.hub.model_card import _card_body

    cfg = parse_config({
        "output_dir": str(tmp_path),
        "model": {"name_or_path": "packaged:all-MiniLM-L6-v2"},
        "data": {"labeled": {"path": "train.csv"}, "sampling": {"rows_from": "runs/earlier", "rest_as_unlabeled": True}},
        "algorithm": {"name": "fixmatch"},
    })
    body = _card_body(cfg, {"num_labeled": 40, "num_unlabeled": 960}, ["a", "b"], "me/run", "text-classification", tmp_path)
    assert "40 (the rows another run drew, listed in its `labeled_rows.jsonl`; the rest of the labeled file" in body
    assert "runs/earlier" not in body  # no local paths in the card


def test_push_of_a_run_finished_before_best_held_its_card(hub, hub_env, trained_run, tmp_path):
    import shutil

    old = tmp_path / "old_run"
    shutil.copytree(trained_run, old)
    for name in ("README.md", "training_config.yaml", "metrics.json", "plots"):
        target = old / "best" / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    push_run(old, "tester/old-run")
    files = hub.files("tester/old-run")
    assert {"README.md", "training_config.yaml", "metrics.json", "plots/confusion_matrix.png", "model.safetensors"} <= set(files)
    assert 'model="tester/old-run", truncation=True' in files["README.md"].decode()
