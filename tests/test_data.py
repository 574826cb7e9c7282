"""Loading every file format, header-less CSV, label mapping, sampling and bad input."""

import json

import datasets
import pandas as pd
import pytest

from ssl_text.config import DataConfig, DatasetSpec, SamplingConfig
from ssl_text.config.keys import ANALYSIS_LABEL
from ssl_text.data.loading import DataError, clean_text, sample_fraction_per_class, sample_per_class
from ssl_text.data.text_data import load_text_data

ROWS = [("sports", "the team won the match"), ("business", "stock market rally"), ("sports", "coach and player"),
        ("business", "bank profit up"), ("sports", "league season opens"), ("business", "investor shares")]


def frame():
    return pd.DataFrame(ROWS, columns=["label", "text"])


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet", "disk"])
def test_each_format_loads(tmp_path, fmt):
    df = frame()
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, index=False, sep="\t")
    elif fmt == "json":
        path.write_text(json.dumps(df.to_dict(orient="records")))
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        df.to_parquet(path)
    else:
        datasets.Dataset.from_pandas(df).save_to_disk(str(path))
    data = load_text_data(DataConfig(labeled=DatasetSpec(path=str(path))))
    assert data.label_names == ["business", "sports"]
    assert data.labeled["text"] == [t for _, t in ROWS]
    assert data.labeled["label"] == [1, 0, 1, 0, 1, 0]


def test_headerless_csv_with_named_columns_and_label_map(tmp_path):
    path = tmp_path / "ag.csv"
    path.write_text('"3","Stocks up","Wall St. rallies\\again on  quot;good quot; news"\n"2","Cup final","A goal &amp; a win"\n')
    cfg = DataConfig(
        labeled=DatasetSpec(path=str(path), column_names=["label", "title", "description"],
                            text_columns=["title", "description"], clean_text=True),
        label_map={"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"},
    )
    data = load_text_data(cfg)
    assert data.label_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert data.labeled["label"] == [2, 1]
    assert data.labeled["text"] == ["Stocks up Wall St. rallies again on \"good\" news", "Cup final A goal & a win"]


def test_clean_text():
    assert clean_text("India #39;s growth\\Next") == "India's growth Next"
    assert clean_text("Merck  amp; Co. &lt;b&gt;up&lt;/b&gt; &lt;MRK.N&gt;") == "Merck & Co. up <MRK.N>"


def load_sampled(tmp_path, labels: list[int], sampling: SamplingConfig):
    """`load_text_data` on a CSV of `labels` with one distinct text per row, drawn by `sampling`."""
    path = tmp_path / "train.csv"
    pd.DataFrame({"label": labels, "text": [f"text number {i}" for i in range(len(labels))]}).to_csv(path, index=False)
    return load_text_data(DataConfig(labeled=DatasetSpec(path=str(path)), sampling=sampling))


def test_sampling_is_stratified_seeded_and_rest_is_unlabeled(tmp_path):
    labels = [i % 4 for i in range(100)]
    chosen, rest = sample_per_class(labels, 5, seed=0)
    assert sorted(labels[i] for i in chosen) == sorted([0, 1, 2, 3] * 5)
    assert chosen == sample_per_class(labels, 5, seed=0)[0]
    assert chosen != sample_per_class(labels, 5, seed=1)[0]
    assert sorted(chosen + rest) == list(range(100))

    data = load_sampled(tmp_path, labels, SamplingConfig(num_per_class=5, seed=0, rest_as_unlabeled=True))
    assert len(data.labeled) == 20 and len(data.unlabeled) == 80
    assert "label" not in data.unlabeled.column_names  # labels dropped, kept aside for analysis only
    assert set(data.unlabeled[ANALYSIS_LABEL]) == {0, 1, 2, 3}
    assert data.unlabeled["index"] == list(range(80))
    assert not set(data.labeled["text"]) & set(data.unlabeled["text"])


def test_fraction_per_class_keeps_the_class_shares(tmp_path):
    labels = [0] * 60 + [1] * 30 + [2] * 7 + [3] * 3  # imbalanced, as DeepLoc's classes are
    chosen, rest = sample_fraction_per_class(labels, 0.1, seed=0)
    counts = [sum(labels[i] == c for i in chosen) for c in range(4)]
    assert counts == [6, 3, 1, 1]  # round(10%), at least one row of every class
    assert chosen == sample_fraction_per_class(labels, 0.1, seed=0)[0]
    assert chosen != sample_fraction_per_class(labels, 0.1, seed=1)[0]
    assert sorted(chosen + rest) == list(range(100))

    data = load_sampled(tmp_path, labels, SamplingConfig(fraction_per_class=0.1, seed=0, rest_as_unlabeled=True))
    assert len(data.labeled) == 11 and len(data.unlabeled) == 89


def test_too_few_examples_for_sampling(tmp_path):
    with pytest.raises(DataError, match="only 3 labeled rows"):
        sample_per_class([0, 0, 0, 1, 1, 1, 1], 4, seed=0)


def write_rows(tmp_path, rows, name="d.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["label", "text"]).to_csv(path, index=False)
    return str(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=str(tmp_path / "nope.csv"))))


def test_missing_column(tmp_path):
    path = write_rows(tmp_path, ROWS)
    with pytest.raises(DataError, match=r"column 'sentence' not found .* the columns are \['label', 'text'\]"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=path, text_columns=["sentence"])))


def test_label_outside_label_set(tmp_path):
    path = write_rows(tmp_path, ROWS + [("weather", "rain today")])
    with pytest.raises(DataError, match=r"d\.csv' line 8 has label 'weather', which is not in the label set"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=path), label_names=["business", "sports"]))


def test_empty_and_null_texts(tmp_path):
    path = write_rows(tmp_path, ROWS + [("sports", ""), ("sports", None)])
    with pytest.raises(DataError, match="2 empty or null texts"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=path)))


def test_evaluation_split_overlapping_training_data(tmp_path):
    train = write_rows(tmp_path, ROWS, "train.csv")
    test = write_rows(tmp_path, ROWS[:2] + [("sports", "fresh text")], "test.csv")
    with pytest.raises(DataError, match=r"data\.test: 2 texts also appear in the labeled training data"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=train), test=DatasetSpec(path=test)))


def test_mixed_string_and_int_labels(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"label": "sports", "text": "a"}\n{"label": 1, "text": "b"}\n')
    with pytest.raises(DataError, match=r"labels in 'label' are a mix of \['int', 'str'\]"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=str(path))))


def test_hub_id_offline_fails_fast_with_a_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import time

    start = time.time()
    with pytest.raises(DataError, match="offline"):
        load_text_data(DataConfig(labeled=DatasetSpec(path="someone/not-cached-dataset-xyz")))
    assert time.time() - start < 10, "an offline Hub id must fail at once, not wait on time-outs"


def test_pad_ids_gives_the_tensors_tokenizer_pad_gives(tiny_bert_dir):
    import torch
    from transformers import AutoTokenizer

    from ssl_text.data.batching import pad_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    sequences = [[2, 7, 9, 3], [2, 3], [], [2, 5, 6, 7, 8, 3]]
    ids, mask = pad_ids(sequences, tokenizer.pad_token_id)
    padded = tokenizer.pad({"input_ids": sequences}, padding=True, padding_side="right", return_tensors="pt")
    assert torch.equal(ids, padded["input_ids"]) and torch.equal(mask, padded["attention_mask"])
    assert ids.dtype == mask.dtype == torch.long
    labels, _ = pad_ids([[1, 0], [2]], -100)  # labels too, which tokenizer.pad does not pad
    assert labels.tolist() == [[1, 0], [2, -100]]
