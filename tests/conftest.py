"""Shared fixtures: a tiny random BERT with the shipped vocabulary, and toy data files."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import copy
import sys
from pathlib import Path

import datasets
import pytest
import torch
import transformers
from transformers import BertConfig, BertModel, BertTokenizer

from tests.toy_data import make_texts, write_csv

transformers.logging.set_verbosity_error()
datasets.disable_progress_bars()
torch.set_num_threads(2)

FIXTURES = Path(__file__).parent / "fixtures"
# Scripts-only helpers (peer baselines, the moons study) live in scripts/, which tests import by name as the scripts do.
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT encoder (no head) and its WordPiece tokenizer."""
    path = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = BertTokenizer(vocab=str(FIXTURES / "vocab.txt"))
    assert tokenizer.convert_tokens_to_ids("market") != tokenizer.unk_token_id, "vocabulary not loaded"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory) -> dict[str, str]:
    """Toy topic data as CSV: a training file (labels to sample from), validation and test."""
    root = tmp_path_factory.mktemp("toy")
    return {
        "train": str(write_csv(root / "train.csv", make_texts(200, seed=1, noise=0.1))),
        "validation": str(write_csv(root / "validation.csv", make_texts(40, seed=2))),
        "test": str(write_csv(root / "test.csv", make_texts(80, seed=3))),
    }


@pytest.fixture
def toy_config(tiny_bert_dir, toy_files, tmp_path):
    """A raw config dict for a few-step run on toy data; tests edit a copy."""

    def make(algorithm: str = "supervised", **algorithm_args) -> dict:
        return copy.deepcopy(
            {
                "output_dir": str(tmp_path / f"run_{algorithm}"),
                "model": {"name_or_path": tiny_bert_dir},
                "data": {
                    "labeled": {"path": toy_files["train"]},
                    "sampling": {"num_per_class": 4, "seed": 0, "rest_as_unlabeled": True},
                    "validation": {"path": toy_files["validation"]},
                    "test": {"path": toy_files["test"]},
                    "max_length": 32,
                },
                "algorithm": {"name": algorithm, **algorithm_args},
                "trainer": {
                    "max_steps": 4,
                    "lb_batch_size": 4,
                    "mu": 2,
                    "learning_rate": 1e-3,
                    "warmup_ratio": 0.0,
                    "eval_every": 2,
                    "save_every": 2,
                    "log_every": 1,
                    "progress_bar": False,
                },
            }
        )

    return make


def assert_scores_match_confusion_matrix(metrics: dict, num_rows: int) -> None:
    """The test split was scored whole and once (its confusion matrix counts `num_rows` rows), and accuracy
    and macro-F1 are those of that matrix. Dropped or duplicated rows of a sharded evaluation, or a metric
    computed on other predictions, break it; a range check such as 0 <= accuracy <= 1 cannot fail."""
    cm = metrics["confusion_matrix"]["matrix"]
    total = sum(map(sum, cm))
    assert metrics["confusion_matrix"]["split"] == "test" and total == num_rows, (total, num_rows)
    tp = [cm[i][i] for i in range(len(cm))]
    assert metrics["test"]["accuracy"] == pytest.approx(sum(tp) / total)
    # F1 = 2 TP / (2 TP + FP + FN): row sum TP + FN, column sum TP + FP
    f1 = [2 * tp[i] / max(sum(cm[i]) + sum(row[i] for row in cm), 1) for i in range(len(cm))]
    assert metrics["test"]["macro_f1"] == pytest.approx(sum(f1) / len(cm))
