"""`algorithm.knn_agreement` (FixMatch, UDA, pseudo_label): an online target counts only where the kNN vote of the
text in the start model's embedding space agrees with it (ssl_text/algorithms/agreement.py; the pipeline adds the
votes, ssl_text/pipelines/train.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssl_text.algorithms.agreement import knn_vote, vote_agreement
from ssl_text.config import ConfigError
from ssl_text.config.keys import KNN_VOTE, ULB_KNN_VOTES
from tests.test_algorithms import STATE, TABLE, TableModel, batch, lb_loss, make
from tests.test_mean_pooling import st_dir  # noqa: F401  (fixture)

VOTES = torch.tensor([[0.2, 0.8], [0.9, 0.1]])  # weak views 2 (class 0, confident) and 3: the vote says 1, then 0


def test_vote_agreement_compares_the_pseudo_label_with_the_votes_argmax():
    assert vote_agreement(torch.tensor([0, 1, 2]), torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0, 0, 1.0]])).tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("name", ["fixmatch", "uda", "pseudo_label"])
def test_a_confident_target_the_vote_disagrees_with_is_masked(name):
    args = {"tau": 0.6, "lambda_u": 1.0} | ({"rampup_steps": 1} if name == "pseudo_label" else {})
    plain = make(name, **args).compute_loss(TableModel(TABLE), batch(), STATE)
    assert plain.mask.tolist() == [1.0, 1.0]  # both weak views pass tau 0.6 (p = 0.9933 and 0.62), class 0
    filtered = make(name, knn_agreement=True, **args).compute_loss(TableModel(TABLE), batch() | {ULB_KNN_VOTES: VOTES},
                                                                   STATE)
    assert filtered.mask.tolist() == [0.0, 1.0]
    assert filtered.parts["loss_ulb"].item() < plain.parts["loss_ulb"].item()
    if name == "fixmatch":  # only the strong view of text 3, [0, 3], trained towards class 0, over mu*B = 2
        unsup = F.cross_entropy(torch.tensor([[0.0, 3.0]]), torch.tensor([0])).item() / 2
        assert filtered.total.item() == pytest.approx(lb_loss().item() + unsup)


def test_without_the_option_the_algorithms_ignore_votes_and_ask_for_none():
    algorithm = make("fixmatch", tau=0.6)
    assert not algorithm.needs_knn_votes and make("fixmatch", tau=0.6, knn_agreement=True).needs_knn_votes
    out = algorithm.compute_loss(TableModel(TABLE), batch() | {ULB_KNN_VOTES: VOTES}, STATE)
    assert out.mask.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("pooling", ["auto", "cls"])
def test_a_run_adds_the_start_encoders_votes_to_the_pool_and_trains(st_dir, toy_config, pooling):  # noqa: F811
    """With either head the votes come from the encoder's mean-pooled last hidden states (for a sentence-transformers
    encoder: its sentence embeddings), before training."""
    from accelerate import Accelerator
    from sentence_transformers import SentenceTransformer

    from ssl_text.pipelines.train import prepare, train
    from ssl_text.training.run_config import parse_config

    raw = toy_config("fixmatch", tau=0.5, knn_agreement=True)
    raw["model"] = {"name_or_path": st_dir, "pooling": pooling}
    cfg = parse_config(raw, "test")
    prepared = prepare(cfg, Accelerator())
    st = SentenceTransformer(st_dir, device="cpu")
    st.max_seq_length = cfg.data.max_length

    def embed(rows):
        return st.encode(list(rows["text"]), normalize_embeddings=True, convert_to_numpy=True)

    expected = knn_vote(embed(prepared.labeled), np.asarray(prepared.labeled["label"]), embed(prepared.unlabeled),
                        len(prepared.label_names))
    np.testing.assert_allclose(np.asarray(prepared.unlabeled[KNN_VOTE]), expected, atol=1e-4)
    metrics = train(cfg)
    assert metrics["test_last_step"]["accuracy"] >= 0 and "mask_rate" in metrics["last_train_logs"]


def test_a_streamed_pool_is_refused_before_anything_is_written(toy_config, toy_files):
    from ssl_text.pipelines.train import train
    from ssl_text.training.run_config import parse_config

    raw = toy_config("uda", knn_agreement=True)
    raw["data"]["sampling"]["rest_as_unlabeled"] = False
    raw["data"]["unlabeled"] = {"path": toy_files["train"], "streaming": True}
    with pytest.raises(ConfigError, match=r"knn_agreement.*whole unlabeled pool.*`data.unlabeled.streaming: false`"):
        train(parse_config(raw, "test"))
    assert not Path(raw["output_dir"]).exists()


def test_a_token_level_task_is_refused_at_load(tiny_bert_dir, tmp_path):
    from ssl_text.training.run_config import parse_config
    from tests.test_ner import ner_config
    from tests.toy_ner import make_sentences, write_conll

    files = {name: str(write_conll(tmp_path / f"{name}.txt", make_sentences(n, seed=s)))
             for name, n, s in (("train", 30, 1), ("validation", 5, 2), ("test", 5, 3))}
    raw = ner_config(tmp_path, tiny_bert_dir, files, "fixmatch")
    raw["algorithm"]["knn_agreement"] = True
    with pytest.raises(ConfigError, match=r"knn_agreement.*labels every token; set `algorithm.knn_agreement: false`"):
        parse_config(raw, "test")
