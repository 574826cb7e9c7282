"""Data mistakes a new user makes, each refused with the slot, the file, the place and the fix (issue 17)."""

import json

import datasets
import pandas as pd
import pytest

from ssl_text.config import ConfigError, DataConfig, DatasetSpec, SamplingConfig, ViewConfig, from_dict
from ssl_text.data import streamed
from ssl_text.data.loading import DataError, load_spec
from ssl_text.data.text_data import load_text_data
from ssl_text.tasks.ner_data import load_ner_data
from tests.toy_ner import make_sentences, write_conll

ROWS = [("sports", "the team won the match"), ("business", "stock market rally"), ("sports", "coach and player"),
        ("business", "bank profit up"), ("sports", "league season opens"), ("business", "investor shares")]


def write_csv(path, rows, header=("label", "text")):
    pd.DataFrame(rows, columns=list(header)).to_csv(path, index=False)
    return str(path)


# ---------------------------------------------------------------------------------------
# Labels that mix numbers and class names
# ---------------------------------------------------------------------------------------


def test_a_label_column_mixing_numbers_and_class_names_is_refused(tmp_path):
    path = write_csv(tmp_path / "mixed.csv", ROWS + [("1", "rain today")])  # one row labeled by id, as another tool wrote it
    with pytest.raises(DataError) as err:
        load_text_data(DataConfig(labeled=DatasetSpec(path=path)))
    message = str(err.value)
    assert "data.labeled: the label column 'label'" in message and "mixes numbers (['1'])" in message
    assert "'sports'" in message and "label_names" in message and "label_map" in message
    # the fixes it names: label_names makes the odd rows errors that point at their lines; label_map maps them
    with pytest.raises(DataError, match=r"mixed\.csv' line 8 has label '1', which is not in the label set"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=path), label_names=["business", "sports"]))
    by_map = load_text_data(DataConfig(
        labeled=DatasetSpec(path=path), label_map={"1": "sports", "sports": "sports", "business": "business"}
    ))
    assert by_map.label_names == ["sports", "business"] and by_map.labeled["label"][-1] == 0


# ---------------------------------------------------------------------------------------
# Evaluation texts that sit in the unlabeled pool
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("slot", ["validation", "test"])
def test_evaluation_texts_in_the_unlabeled_data_are_refused(tmp_path, slot):
    train = write_csv(tmp_path / "train.csv", ROWS)
    pool = write_csv(tmp_path / "pool.csv", [("fresh text one",), ("a shared sentence",)], header=("text",))
    held_out = write_csv(tmp_path / "held_out.csv", [("sports", "a shared sentence"), ("business", "new words")])
    cfg = DataConfig(labeled=DatasetSpec(path=train), unlabeled=DatasetSpec(path=pool))
    setattr(cfg, slot, DatasetSpec(path=held_out))
    with pytest.raises(DataError, match=rf"data\.{slot}: 1 texts also appear in the unlabeled data \(e\.g\. 'a shared"):
        load_text_data(cfg)


def test_evaluation_texts_in_the_rest_as_unlabeled_pool_are_refused(tmp_path):
    train = write_csv(tmp_path / "train.csv", ROWS)
    sampling = SamplingConfig(num_per_class=1, seed=0, rest_as_unlabeled=True)
    pool_text = load_text_data(DataConfig(labeled=DatasetSpec(path=train), sampling=sampling)).unlabeled["text"][0]
    test = write_csv(tmp_path / "test.csv", [("sports", pool_text), ("business", "new words")])
    with pytest.raises(DataError, match=r"data\.test: 1 texts also appear in the unlabeled data"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=train), sampling=sampling, test=DatasetSpec(path=test)))


def test_evaluation_texts_in_a_streamed_pool_are_refused_on_the_rows_read_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(streamed, "PREFIX_ROWS", 2)
    train = write_csv(tmp_path / "train.csv", ROWS)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["one", "two", "late repeat"]))

    def load(test_text):
        test = write_csv(tmp_path / "test.csv", [("sports", test_text)])
        return load_text_data(DataConfig(
            labeled=DatasetSpec(path=train), unlabeled=DatasetSpec(path=str(corpus), streaming=True),
            test=DatasetSpec(path=test),
        ))

    with pytest.raises(DataError, match=r"data\.test: 1 texts also appear in the unlabeled data \(of a stream, the 2 rows"):
        load("two")
    assert load("late repeat").test["text"] == ["late repeat"]  # past the checked rows: a stream is not read whole


def test_ner_evaluation_sentences_in_the_unlabeled_pool_are_refused(tmp_path):
    sentences = make_sentences(40, seed=1)
    train = write_conll(tmp_path / "train.txt", sentences)
    test = write_conll(tmp_path / "test.txt", make_sentences(6, seed=5) + sentences[-4:])  # 4 of 10: the pool's
    cfg = DataConfig(
        labeled=DatasetSpec(path=str(train)), test=DatasetSpec(path=str(test)),
        sampling=SamplingConfig(num_examples=5, seed=0, rest_as_unlabeled=True),
    )
    with pytest.raises(DataError, match=r"data\.test: \d+ texts also appear in the unlabeled data"):
        load_ner_data(cfg)


# ---------------------------------------------------------------------------------------
# `format:` instead of the file suffix
# ---------------------------------------------------------------------------------------


def test_a_conll_file_named_otherwise_needs_format_and_loads_with_it(tmp_path):
    path = write_conll(tmp_path / "train.annotated", make_sentences(8, seed=1))
    with pytest.raises(DataError) as err:
        load_ner_data(DataConfig(labeled=DatasetSpec(path=str(path))))
    message = str(err.value)
    assert message.startswith("data.labeled: cannot tell the format of") and "'.annotated'" in message
    for suffix in (".csv", ".tsv", ".jsonl", ".parquet", ".fasta", ".conll", ".iob2"):
        assert suffix in message
    assert "Set `format:`" in message and "format: conll" in message
    data = load_ner_data(DataConfig(labeled=DatasetSpec(path=str(path), format="conll")))
    assert len(data.labeled) == 8


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_format_reads_a_file_whatever_its_suffix(tmp_path, fmt):
    df = pd.DataFrame(ROWS, columns=["label", "text"])
    path = tmp_path / "export.dat"
    if fmt == "parquet":
        df.to_parquet(path)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")
    data = load_text_data(DataConfig(labeled=DatasetSpec(path=str(path), format=fmt)))
    assert data.labeled["text"] == [t for _, t in ROWS]


def test_format_fasta_and_save_to_disk(tmp_path):
    seqs = tmp_path / "seqs.txt"
    seqs.write_text(">a AMP\nKLLK\n>b DECOY\nMSTA\n")
    assert load_spec(DatasetSpec(path=str(seqs), format="fasta", fasta_label_regex=r" (\S+)$"))["label"] == ["AMP", "DECOY"]
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["x"], "label": ["a"]}).save_to_disk(str(saved))
    assert load_spec(DatasetSpec(path=str(saved), format="save_to_disk"))["text"] == ["x"]
    with pytest.raises(DataError, match="is a file, but `format: save_to_disk` reads a folder"):
        load_spec(DatasetSpec(path=str(seqs), format="save_to_disk"))


def test_format_mistakes_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"`data\.labeled\.format` is 'cvs'; expected one of \['csv', 'tsv'"):
        from_dict(DataConfig, {"labeled": {"path": "x.csv", "format": "cvs"}}, "c.yaml", "data.")
    with pytest.raises(DataError, match="only `task: ner` reads"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=str(write_conll(tmp_path / "a.conll", [])), format="conll")))
    with pytest.raises(DataError, match="'ag_news' does not exist"):  # a file format names a file, never a Hub id
        load_spec(DatasetSpec(path="ag_news", format="csv"))


# ---------------------------------------------------------------------------------------
# Header-only files, directories
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("slot", ["labeled", "test"])
def test_a_header_only_csv_names_its_slot_and_file(tmp_path, slot):
    train = write_csv(tmp_path / "train.csv", ROWS)
    empty = tmp_path / "empty.csv"
    empty.write_text("label,text\n")
    cfg = DataConfig(labeled=DatasetSpec(path=train))
    setattr(cfg, slot, DatasetSpec(path=str(empty)))
    with pytest.raises(DataError, match=rf"^data\.{slot}: data file '.*empty\.csv' has a header line but no rows") as err:
        load_text_data(cfg)
    assert "Instruction" not in str(err.value) and "split" not in str(err.value)


def test_empty_json_and_a_header_only_file_among_others(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("[ ]\n")
    with pytest.raises(DataError, match="empty.json' holds no records"):
        load_spec(DatasetSpec(path=str(empty)))
    (tmp_path / "a.csv").write_text("label,text\nsports,x\n")
    (tmp_path / "b.csv").write_text("label,text\n")
    with pytest.raises(DataError, match="b.csv' has a header line but no rows"):
        load_spec(DatasetSpec(path=str(tmp_path / "*.csv")))


def test_a_directory_given_for_a_file_is_called_a_directory(tmp_path):
    folder = tmp_path / "agnews"
    folder.mkdir()
    write_csv(folder / "train.csv", ROWS)
    for load in (lambda spec: load_text_data(DataConfig(labeled=spec)), lambda spec: load_ner_data(DataConfig(labeled=spec))):
        with pytest.raises(DataError) as err:
            load(DatasetSpec(path=str(folder)))
        message = str(err.value)
        assert message.startswith("data.labeled: ") and "is a directory, not a data file (it holds ['train.csv'])" in message
        assert "does not exist" not in message and "dataset_info.json" in message and "/agnews/*.csv" in message
    with pytest.raises(DataError, match="is a directory that lacks dataset_info.json / state.json / dataset_dict.json"):
        load_spec(DatasetSpec(path=str(folder), format="save_to_disk"))


# ---------------------------------------------------------------------------------------
# Editor line numbers
# ---------------------------------------------------------------------------------------


def test_errors_point_at_editor_lines(tmp_path):
    multiline = tmp_path / "multi.csv"  # header on line 1, a blank line, a record over two lines
    multiline.write_text('label,text\n\nsports,"two\nlines"\nbusiness,ok\nweather,rain\n')
    with pytest.raises(DataError, match=r"multi\.csv' line 6 has label 'weather'"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=str(multiline)), label_names=["business", "sports"]))
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("sports,a\nweather,b\n")
    with pytest.raises(DataError, match=r"headerless\.csv' line 2 has label 'weather'"):
        load_text_data(DataConfig(
            labeled=DatasetSpec(path=str(headerless), column_names=["label", "text"]), label_names=["sports"]
        ))
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"label": "sports", "text": "a"}\n\n{"label": "sports", "text": ""}\n{"label": "sports", "text": null}\n')
    with pytest.raises(DataError, match=r"2 empty or null texts \(first at '.*rows\.jsonl' lines 3, 4\)"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=str(jsonl))))
    parquet = tmp_path / "rows.parquet"
    pd.DataFrame([("sports", "a"), ("weather", "b")], columns=["label", "text"]).to_parquet(parquet)
    with pytest.raises(DataError, match=r"rows\.parquet' row 2 has label 'weather'"):
        load_text_data(DataConfig(labeled=DatasetSpec(path=str(parquet)), label_names=["sports"]))


def test_line_numbers_count_the_rows_exclude_labels_dropped_and_every_file(tmp_path):
    write_csv(tmp_path / "a.csv", [("sports", "a"), ("drop", "b"), ("drop", "c")])
    write_csv(tmp_path / "b.csv", [("drop", "d"), ("weather", "e")])
    spec = DatasetSpec(path=str(tmp_path / "*.csv"), exclude_labels=["drop"])
    with pytest.raises(DataError, match=r"b\.csv' line 3 has label 'weather'"):
        load_text_data(DataConfig(labeled=spec, label_names=["sports"]))


def test_ner_errors_point_at_the_line_of_the_sentence(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text("-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn E-PER\n")
    with pytest.raises(DataError, match=r"the sentence at '.*train\.conll' line 6 has the tag 'E-PER'"):
        load_ner_data(DataConfig(labeled=DatasetSpec(path=str(path))))
    path.write_text("-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n")
    with pytest.raises(DataError, match=r"the sentence at '.*train\.conll' line 3 has the tag 'B-ORG', which is not in"):
        load_ner_data(DataConfig(labeled=DatasetSpec(path=str(path)), label_names=["O", "B-PER", "I-PER"]))


# ---------------------------------------------------------------------------------------
# Paraphrase columns the unlabeled data lacks
# ---------------------------------------------------------------------------------------


def test_a_misspelt_aug_column_stops_the_run_before_anything_is_written(tmp_path, toy_config):
    from ssl_text.pipelines.train import train
    from ssl_text.training.run_config import parse_config

    raw = toy_config("fixmatch", tau=0.9)
    raw["views"] = {"strong": {"aug_columns": ["aug_O"], "mask_prob": 0.1}}
    cfg = parse_config(raw, "test")
    with pytest.raises(DataError) as err:
        train(cfg)
    message = str(err.value)
    assert message.startswith("data.unlabeled: views name `aug_columns` ['aug_O'], but the unlabeled data has no column")
    assert "'text'" in message and "ssl-text augment back-translate" in message
    assert not (tmp_path / "run_fixmatch").exists()


def test_the_simple_form_refuses_a_named_column_the_data_lacks(tmp_path):
    from transformers import BertTokenizer

    from ssl_text.augment.collate import TextCollator
    from ssl_text.config import ViewsConfig
    from tests.conftest import FIXTURES

    tokenizer = BertTokenizer(vocab=str(FIXTURES / "vocab.txt"))
    corpus = datasets.Dataset.from_dict({"text": ["the market"], "aug_0": ["a market"]})
    views = ViewsConfig(strong=ViewConfig(aug_columns=["aug_1"]))
    with pytest.raises(ConfigError, match=r"`views\.strong` \(back_translation\): the unlabeled data has no column \['aug_1'\]"):
        TextCollator(tokenizer, views, ("ulb_strong",), encode=lambda texts: tokenizer(texts)["input_ids"], corpus=corpus)
