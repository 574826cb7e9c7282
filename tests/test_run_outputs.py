"""What every finished `ssl-text train` run leaves on disk: the labeled rows it drew (and how a later run takes
exactly those), a Hub-ready `best/` with its model card, and a tokenizer that truncates to the run's max_length."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from ssl_text.cli.main import main as cli_main
from ssl_text.config import ConfigError, DataConfig, DatasetSpec, SamplingConfig
from ssl_text.config.keys import BEST, CONFIG_FILE, LABELED_ROWS_FILE, METRICS_FILE, MODEL_CARD_FILE
from ssl_text.data.loading import DataError
from ssl_text.data.text_data import LabeledRow, labeled_rows_jsonl, load_labeled_rows, load_text_data, text_hash
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config

MAX_LENGTH = 32
NUM_PER_CLASS = 4


@pytest.fixture(scope="module")
def finished_run(tiny_bert_dir, toy_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("outputs") / "run"
    train(parse_config({
        "output_dir": str(out),
        "model": {"name_or_path": tiny_bert_dir},
        "data": {
            "labeled": {"path": toy_files["train"]},
            "sampling": {"num_per_class": NUM_PER_CLASS, "seed": 0, "rest_as_unlabeled": True},
            "validation": {"path": toy_files["validation"]},
            "test": {"path": toy_files["test"]},
            "max_length": MAX_LENGTH,
        },
        "algorithm": {"name": "supervised"},
        "trainer": {"max_steps": 2, "lb_batch_size": 4, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                    "eval_every": 2, "save_every": 2, "log_every": 1, "progress_bar": False},
    }))
    return out


def csv_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def labeled_spec(path) -> DatasetSpec:
    return DatasetSpec(path=str(path))


# ---------------------------------------------------------------------------------------
# The drawn labeled rows
# ---------------------------------------------------------------------------------------


def test_every_run_records_the_labeled_rows_it_drew(finished_run, toy_files):
    rows = load_labeled_rows(finished_run)
    assert rows == load_labeled_rows(finished_run / LABELED_ROWS_FILE)  # a run directory or the file itself
    source = csv_rows(toy_files["train"])
    assert len(rows) == 4 * NUM_PER_CLASS and Counter(r.label for r in rows) == {
        name: NUM_PER_CLASS for name in ("business", "politics", "science", "sports")}
    for row in rows:  # each entry points at its row of the labeled file, by position, text hash and label
        assert text_hash(source[row.index]["text"]) == row.sha256
        assert source[row.index]["label"] == row.label
    drawn = load_text_data(DataConfig(labeled=labeled_spec(toy_files["train"]),
                                      sampling=SamplingConfig(num_per_class=NUM_PER_CLASS, seed=0)))
    assert drawn.labeled_rows == rows
    assert [source[r.index]["text"] for r in rows] == drawn.labeled["text"]


def test_rows_from_a_run_takes_exactly_its_labeled_rows(finished_run, toy_files):
    again = load_text_data(DataConfig(labeled=labeled_spec(toy_files["train"]),
                                      sampling=SamplingConfig(rows_from=str(finished_run), rest_as_unlabeled=True)))
    source = csv_rows(toy_files["train"])
    rows = load_labeled_rows(finished_run)
    assert again.labeled["text"] == [source[r.index]["text"] for r in rows]
    assert [again.label_names[i] for i in again.labeled["label"]] == [r.label for r in rows]
    assert len(again.unlabeled) == len(source) - len(rows)  # the rest still joins the pool
    assert not set(again.unlabeled["text"]) & set(again.labeled["text"])
    assert again.labeled_rows == rows


def test_rows_from_a_hand_made_file_needs_no_label(toy_files, tmp_path):
    """An active-learning round lists the rows to label by position and text hash; the label comes from the data."""
    source = csv_rows(toy_files["train"])
    picks = [3, 0, 150]
    rows_file = tmp_path / "round_1.jsonl"
    rows_file.write_text("".join(json.dumps({"index": i, "sha256": text_hash(source[i]["text"])}) + "\n" for i in picks))
    data = load_text_data(DataConfig(labeled=labeled_spec(toy_files["train"]), sampling=SamplingConfig(rows_from=str(rows_file))))
    assert data.labeled["text"] == [source[i]["text"] for i in sorted(picks)]
    assert data.labeled_rows == [LabeledRow(i, text_hash(source[i]["text"]), source[i]["label"]) for i in sorted(picks)]


def _copy_with(source: list[dict], path: Path, change) -> Path:
    rows = [dict(r) for r in source]
    change(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["label", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    "change,says",
    [
        (lambda rows, i: rows[i].update(text=rows[i]["text"] + " edited"), "text differs"),
        (lambda rows, i: rows.insert(0, {"label": "sports", "text": "a new first row."}), "text differs"),
        (lambda rows, i: rows[i].update(label="politics" if rows[i]["label"] != "politics" else "sports"), "label"),
        (lambda rows, i: rows.__delitem__(slice(i, None)), "has only"),
    ],
    ids=["edited", "shifted", "relabeled", "truncated"],
)
def test_rows_from_refuses_labeled_data_that_changed(finished_run, toy_files, tmp_path, change, says):
    source = csv_rows(toy_files["train"])
    last = max(r.index for r in load_labeled_rows(finished_run))
    changed = _copy_with(source, tmp_path / "train.csv", lambda rows: change(rows, last))
    with pytest.raises(DataError, match="data.sampling.rows_from") as err:
        load_text_data(DataConfig(labeled=labeled_spec(changed), sampling=SamplingConfig(rows_from=str(finished_run))))
    assert says in str(err.value) and LABELED_ROWS_FILE in str(err.value)


def test_rows_from_names_a_missing_or_broken_file(tmp_path, toy_files):
    cfg = DataConfig(labeled=labeled_spec(toy_files["train"]), sampling=SamplingConfig(rows_from=str(tmp_path)))
    with pytest.raises(DataError, match=f"no {LABELED_ROWS_FILE}"):
        load_text_data(cfg)
    bad = tmp_path / "rows.jsonl"
    for text, says in (("", "no rows"), ('{"index": 1}\n', "sha256"), ('{"index": 1, "sha256": "x"}\n' * 2, "twice"),
                       ("not json\n", "line 1")):
        bad.write_text(text)
        with pytest.raises(DataError, match=says):
            load_labeled_rows(bad)


def test_rows_from_excludes_the_other_ways_to_draw():
    base = {"output_dir": "x", "data": {"labeled": {"path": "a.csv"}}}
    for other in ({"num_per_class": 4}, {"num_examples": 10}, {"fraction_per_class": 0.1}):
        raw = {**base, "data": {**base["data"], "sampling": {"rows_from": "runs/a", **other}}}
        with pytest.raises(ConfigError, match="data.sampling.rows_from"):
            parse_config(raw)
    cfg = parse_config({**base, "data": {**base["data"], "sampling": {"rows_from": "runs/a"}}})
    assert cfg.data.sampling.rows_from == "runs/a" and cfg.data.sampling.draws()


def test_ner_records_sentences_and_takes_them_back(tmp_path):
    from ssl_text.tasks.ner_data import load_ner_data
    from tests.toy_ner import make_sentences, write_conll

    sentences = make_sentences(30, seed=1)
    train_file = write_conll(tmp_path / "train.txt", sentences)
    drawn = load_ner_data(DataConfig(labeled=labeled_spec(train_file), sampling=SamplingConfig(num_examples=5, seed=3)))
    rows = drawn.labeled_rows
    assert [r.index for r in rows] == sorted(r.index for r in rows) and len(rows) == 5
    for row, words in zip(rows, drawn.labeled["tokens"]):
        assert [w for w, _ in sentences[row.index]] == words and row.sha256 == text_hash(" ".join(words))
        assert row.label == [t for _, t in sentences[row.index]]
    (tmp_path / LABELED_ROWS_FILE).write_text(labeled_rows_jsonl(rows))
    again = load_ner_data(DataConfig(labeled=labeled_spec(train_file), sampling=SamplingConfig(rows_from=str(tmp_path))))
    assert again.labeled["tokens"] == drawn.labeled["tokens"] and again.labeled_rows == rows
    retagged = [list(s) for s in sentences]
    retagged[rows[0].index] = [(w, "O") for w, _ in retagged[rows[0].index]]
    with pytest.raises(DataError, match="label differs"):
        load_ner_data(DataConfig(labeled=labeled_spec(write_conll(tmp_path / "retagged.txt", retagged)),
                                 sampling=SamplingConfig(rows_from=str(tmp_path))))


# ---------------------------------------------------------------------------------------
# best/: a complete Hub-ready model folder with its card
# ---------------------------------------------------------------------------------------


def test_best_holds_the_model_card_and_the_files_it_names(finished_run):
    from huggingface_hub import ModelCard

    best = finished_run / BEST
    card = ModelCard.load(best / MODEL_CARD_FILE)
    assert card.data.pipeline_tag == "text-classification" and card.data.library_name == "transformers"
    assert card.data.model_name == finished_run.name
    assert f'pipeline("text-classification", model="{finished_run.name}/best", truncation=True)' in card.text
    assert (best / "training_config.yaml").read_bytes() == (finished_run / CONFIG_FILE).read_bytes()
    assert (best / METRICS_FILE).read_bytes() == (finished_run / METRICS_FILE).read_bytes()
    linked = [line.split("](", 1)[1].rstrip(")") for line in card.text.splitlines() if line.startswith("![")]
    assert linked and all((best / link).is_file() for link in linked)  # every image the card shows is in the folder
    assert str(finished_run.parent) not in (best / MODEL_CARD_FILE).read_text()  # no local paths


def test_card_command_previews_the_card_offline(finished_run, tmp_path, capsys):
    assert cli_main(["card", str(finished_run)]) == 0
    assert capsys.readouterr().out == (finished_run / BEST / MODEL_CARD_FILE).read_text()
    assert cli_main(["card", str(finished_run), "--repo-id", "me/toy-model"]) == 0
    out = capsys.readouterr().out
    assert "# toy-model" in out and 'model="me/toy-model", truncation=True' in out
    assert cli_main(["card", str(tmp_path)]) == 2
    assert "not a finished ssl-text run" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# The saved tokenizer truncates to the run's max_length
# ---------------------------------------------------------------------------------------


def test_saved_model_classifies_a_text_longer_than_the_model_allows(finished_run):
    """README's `pipeline(..., truncation=True)` on a text far beyond the position limit (128 in the tiny model)."""
    from transformers import pipeline

    best = finished_run / BEST
    assert json.loads((best / "tokenizer_config.json").read_text())["model_max_length"] == MAX_LENGTH
    classify = pipeline("text-classification", model=str(best), truncation=True)
    long_text = " ".join(["the market and the bank report a profit"] * 300)  # about 2,400 tokens
    (result,) = classify(long_text)
    assert result["label"] in json.loads((finished_run / METRICS_FILE).read_text())["label_names"]


# ---------------------------------------------------------------------------------------
# The order of a run's files: labeled rows first, the metrics file (the mark of a finished run) last
# ---------------------------------------------------------------------------------------


def small_run(tiny_bert_dir, toy_files, out: Path) -> dict:
    return {
        "output_dir": str(out),
        "model": {"name_or_path": tiny_bert_dir},
        "data": {"labeled": {"path": toy_files["train"]},
                 "sampling": {"num_per_class": NUM_PER_CLASS, "seed": 0, "rest_as_unlabeled": True},
                 "validation": {"path": toy_files["validation"]}, "max_length": MAX_LENGTH},
        "algorithm": {"name": "supervised"},
        "trainer": {"max_steps": 2, "lb_batch_size": 4, "learning_rate": 1e-3, "warmup_ratio": 0.0, "eval_every": 2,
                    "save_every": 2, "log_every": 1, "progress_bar": False},
    }  # fmt: skip


def test_a_crashed_run_still_names_the_labeled_rows_it_drew(tiny_bert_dir, toy_files, tmp_path, monkeypatch):
    from ssl_text.training.trainer import Trainer

    def crash(self, resume=False):
        raise RuntimeError("crashed while training")

    monkeypatch.setattr(Trainer, "fit", crash)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="crashed while training"):
        train(parse_config(small_run(tiny_bert_dir, toy_files, out)))
    assert len(load_labeled_rows(out)) == 4 * NUM_PER_CLASS and not (out / METRICS_FILE).exists()


def test_a_run_killed_before_its_model_card_is_not_finished(tiny_bert_dir, toy_files, tmp_path, monkeypatch):
    """The metrics file marks a finished run (--resume then keeps it and writes nothing): it must come after the
    card and the rest of best/, or a kill in between leaves a 'finished' run without them."""
    import ssl_text.pipelines.train as train_module

    def killed(run_dir, metrics=None):
        raise KeyboardInterrupt  # a kill while best/ is being completed

    raw = small_run(tiny_bert_dir, toy_files, tmp_path / "run")
    real = train_module.write_model_folder
    monkeypatch.setattr(train_module, "write_model_folder", killed)
    with pytest.raises(KeyboardInterrupt):
        train(parse_config(raw))
    out = Path(raw["output_dir"])
    assert not (out / METRICS_FILE).exists() and not (out / BEST / MODEL_CARD_FILE).exists()
    monkeypatch.setattr(train_module, "write_model_folder", real)
    metrics = train(parse_config(raw), resume=True)  # not finished: it continues, and completes best/
    assert (out / BEST / MODEL_CARD_FILE).is_file() and json.loads((out / METRICS_FILE).read_text()) == metrics
    assert (out / BEST / METRICS_FILE).read_bytes() == (out / METRICS_FILE).read_bytes()
