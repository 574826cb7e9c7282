"""`ssl-text self-train --agreement`: a pool text is pseudo-labeled only where the teacher's argmax is the kNN vote
of the teacher's own sentence embeddings (ssl_text/pipelines/self_training.py, ssl_text/algorithms/agreement.py)."""

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from ssl_text.algorithms.agreement import agreement_mask, knn_vote
from ssl_text.config import ConfigError
from ssl_text.pipelines.self_training import PseudoLabeling, pseudo_label_agreeing, self_train
from ssl_text.tasks.text_classification import TextClassification
from ssl_text.training.run_config import parse_config


def test_agreement_mask_compares_the_two_argmaxes():
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.5]])
    votes = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6]])
    assert agreement_mask(logits, votes).tolist() == [True, False, False]


def hand_made_pool():
    """Six pool texts of two classes: logits, the agreement of each row, and the true labels."""
    logits = np.array([[4.0, 0.0], [5.0, 0.0], [0.0, 3.0], [0.0, 6.0], [1.0, 0.0], [0.0, 0.2]])
    agree = np.array([True, False, True, False, True, True])  # rows 1 and 3, the most confident, disagree
    truth = [0, 1, 1, 1, 0, 0]
    pool = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(6)], "analysis_label": truth})
    labeled = datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [0, 0, 1, 1]})
    return logits, agree, pool, labeled


def test_disagreeing_rows_are_dropped_even_at_tau_0_and_before_the_confidence_cut():
    logits, agree, pool, labeled = hand_made_pool()
    task, names = TextClassification(), ["a", "b"]
    rows, targets, stats = pseudo_label_agreeing(task, logits, pool, names, PseudoLabeling(tau=0.0), labeled, agree)
    assert rows.tolist() == [0, 2, 4, 5] and len(targets) == 4
    assert stats["pool_size"] == 6 and stats["agreeing"] == 4 and stats["kept"] == 4
    assert stats["pool_accuracy"] == pytest.approx(4 / 6)  # the teacher on the whole pool: rows 0, 2, 3, 4 right
    assert stats["agreeing_accuracy"] == pytest.approx(3 / 4)  # on the agreeing rows 0, 2, 4, 5: all but row 5
    assert stats["pseudo_label_accuracy"] == pytest.approx(3 / 4)

    # tau selects among the agreeing rows: the confident disagreeing rows 1 and 3 stay out
    rows, _, stats = pseudo_label_agreeing(task, logits, pool, names, PseudoLabeling(tau=0.9), labeled, agree)
    assert rows.tolist() == [0, 2] and stats["agreeing"] == 4

    # balance resamples the agreeing rows only: 2 kept per class of the 50/50 prior, never a disagreeing row
    rows, targets, _ = pseudo_label_agreeing(
        task, logits, pool, names, PseudoLabeling(tau=0.0, balance=True, hard_labels=True), labeled, agree
    )
    assert sorted(rows.tolist()) == [0, 2, 4, 5] and np.asarray(targets).sum(axis=0).tolist() == [2.0, 2.0]


def test_nothing_agreeing_keeps_nothing():
    logits, _, pool, labeled = hand_made_pool()
    none = np.zeros(6, dtype=bool)
    rows, targets, stats = pseudo_label_agreeing(
        TextClassification(), logits, pool, ["a", "b"], PseudoLabeling(tau=0.0), labeled, none
    )
    assert len(rows) == 0 and targets == [] and stats is None


def test_agreement_is_refused_for_ner_before_anything_is_written(tiny_bert_dir, tmp_path):
    from tests.test_ner import ner_config
    from tests.toy_ner import make_sentences, write_conll

    files = {name: str(write_conll(tmp_path / f"{name}.txt", make_sentences(n, seed=s)))
             for name, n, s in (("train", 30, 1), ("validation", 5, 2), ("test", 5, 3))}
    raw = ner_config(tmp_path, tiny_bert_dir, files, "supervised")
    with pytest.raises(ConfigError, match=r"--agreement.* task `ner` labels every word\. Leave out --agreement"):
        self_train(parse_config(raw), 1, PseudoLabeling(agreement=True))
    assert not Path(raw["output_dir"]).exists()


def test_the_cli_flag_reaches_the_pseudo_labeling(toy_config, tmp_path, monkeypatch):
    import ssl_text.pipelines.self_training as st
    from ssl_text.cli.main import main

    seen = []
    monkeypatch.setattr(st, "self_train", lambda cfg, rounds, labeling, **kw: seen.append(labeling) or [])
    config = tmp_path / "teacher.yaml"
    config.write_text(yaml.safe_dump(toy_config("supervised")))
    assert main(["self-train", str(config), "--rounds", "1", "--agreement"]) == 0
    assert main(["self-train", str(config), "--rounds", "1"]) == 0
    assert [labeling.agreement for labeling in seen] == [True, False]


def teacher_agreement_by_hand(teacher_dir: Path, labeled_texts, labels, pool_texts) -> np.ndarray:
    """The agreement recomputed outside the pipeline: one text at a time (no padding), transformers only."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    model = AutoModelForSequenceClassification.from_pretrained(teacher_dir).eval()
    label_ids = [model.config.label2id[name] for name in labels]

    def run(texts):
        logits, embeddings = [], []
        with torch.no_grad():
            for text in texts:
                inputs = tokenizer(text, truncation=True, max_length=32, return_tensors="pt")
                logits.append(model(**inputs).logits[0])
                hidden = model.base_model(**inputs).last_hidden_state[0]
                embeddings.append(F.normalize(hidden.mean(dim=0), dim=-1))
        return torch.stack(logits).numpy(), torch.stack(embeddings).numpy()

    _, lb_embeddings = run(labeled_texts)
    logits, ulb_embeddings = run(pool_texts)
    return agreement_mask(logits, knn_vote(lb_embeddings, np.asarray(label_ids), ulb_embeddings, model.num_labels))


@pytest.mark.slow
def test_self_training_with_agreement_keeps_only_agreeing_pool_texts(toy_config, tmp_path):
    raw = toy_config("supervised")
    raw["trainer"].update(max_steps=2, eval_every=2, save_every=2)
    raw["output_dir"] = str(tmp_path / "self_train")
    out = Path(raw["output_dir"])
    labeling = PseudoLabeling(agreement=True, tau=0.0)
    records = self_train(parse_config(raw), rounds=1, labeling=labeling)

    stats = records[1]["pseudo_labels"]
    assert stats["pool_size"] == 184  # 200 rows - 4 x 4 labeled
    assert 0 < stats["agreeing"] <= stats["pool_size"] and stats["kept"] == stats["agreeing"]  # tau 0: all agreeing
    assert json.loads((out / "pools" / "round_1" / "stats.json").read_text()) == stats
    assert json.loads((out / "rounds.json").read_text())["pseudo_labeling"]["agreement"] is True

    # the saved pool is exactly the agreeing texts of the round-0 teacher
    labeled = [json.loads(line) for line in (out / "round_0" / "labeled_rows.jsonl").read_text().splitlines()]
    train = datasets.load_dataset("csv", data_files=raw["data"]["labeled"]["path"], split="train")
    lb_rows = {row["index"] for row in labeled}
    lb_texts, lb_labels = [train[row["index"]]["text"] for row in labeled], [row["label"] for row in labeled]
    pool_texts = [t for i, t in enumerate(train["text"]) if i not in lb_rows]
    agree = teacher_agreement_by_hand(out / "round_0" / "best", lb_texts, lb_labels, pool_texts)
    saved = datasets.load_from_disk(str(out / "pools" / "round_1"))
    assert sorted(saved["text"]) == sorted(t for t, a in zip(pool_texts, agree) if a)

    # a resume with another agreement setting is refused
    with pytest.raises(ConfigError, match="pseudo-labeling"):
        self_train(parse_config(raw), rounds=1, labeling=PseudoLabeling(tau=0.0), resume=True)


def test_a_run_recorded_before_the_agreement_option_resumes_without_it(tmp_path):
    from ssl_text.pipelines.self_training import _check_saved_rounds

    rounds_file = tmp_path / "rounds.json"
    old = {"tau": 0.9, "hard_labels": False, "balance": False, "lambda_u": 1.0}  # no "agreement": it ran without
    rounds_file.write_text(json.dumps({"rounds": [], "pseudo_labeling": old, "teacher": None}))
    _check_saved_rounds(rounds_file, PseudoLabeling(), None)
    with pytest.raises(ConfigError, match="resume with the same options"):
        _check_saved_rounds(rounds_file, PseudoLabeling(agreement=True), None)


def test_pool_teacher_embeddings_are_the_normalised_mean_of_the_encoder_states(toy_config, tiny_bert_dir, tmp_path):
    """Batched and padded by `predict_logits`, each embedding is that of its text alone: padding is masked out."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ssl_text.pipelines.unlabeled_pool import PoolTeacher, load_teacher_pool

    cfg = parse_config(toy_config("supervised"))
    cfg.trainer.eval_batch_size = 8
    data = load_teacher_pool(cfg, "test")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=len(data.label_names)).eval()
    model.save_pretrained(tmp_path / "teacher")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path / "teacher")
    teacher = PoolTeacher(cfg, tmp_path / "teacher", data)
    texts = ["the market", "a goal in the match", "the election", "stocks fell as the market closed lower today"]
    rows = teacher.encode(datasets.Dataset.from_dict({"text": texts}))
    assert len({len(ids) for ids in rows["input_ids"]}) > 1  # one batch, padded
    got = teacher.embeddings(rows)
    assert got.shape == (len(texts), model.config.hidden_size)
    with torch.no_grad():
        alone = [model.bert(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(dim=0) for ids in rows["input_ids"]]
    expected = F.normalize(torch.stack(alone), dim=-1).numpy()
    assert np.allclose(got, expected, atol=1e-5) and np.allclose(np.linalg.norm(got, axis=1), 1.0)
