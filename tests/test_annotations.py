"""Importing labels into the labeled file: Label Studio JSON exports (of the tasks `ssl-text suggest` writes) and CSVs
of index,label, merged without losing a labeled row; every bad export refused with its task or line and the fix; and
the merged file trains (`ssl-text train`) and is left out of the next round's suggestions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from ssl_text.cli.main import EXIT_BAD_INPUT, main
from ssl_text.config import ConfigError
from ssl_text.data.annotations import import_labels, load_pool, pool_spec, read_labeled
from ssl_text.data.loading import DataError
from ssl_text.data.text_data import load_labeled_rows, text_hash
from ssl_text.pipelines.suggest import suggest
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config

LABELS = ["business", "politics", "science", "sports"]


@pytest.fixture(scope="module")
def pool_texts(toy_files) -> list[str]:
    return load_pool(pool_spec(toy_files["train"]))


@pytest.fixture(scope="module")
def truth(toy_files) -> list[str]:
    with open(toy_files["train"], newline="") as f:
        return [row["label"] for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def suggested_tasks(toy_files, tiny_bert_dir, tmp_path_factory) -> list[dict]:
    """The Label Studio tasks of a cold-start round on the toy pool."""
    record = suggest(pool_spec(toy_files["train"]), tmp_path_factory.mktemp("al"), 8, "kmeans", encoder=tiny_bert_dir)
    return json.loads(Path(record["files"]["label_studio"]).read_text())


def annotated(tasks: list[dict], label_of, first_id: int = 1) -> list[dict]:
    """`tasks` as a Label Studio JSON export holds them once annotated: ids, one submitted annotation each whose
    choice is `label_of(task)` (None: the task was skipped, its annotation cancelled)."""
    export = []
    for number, task in enumerate(tasks, start=first_id):
        label = label_of(task)
        choice = {"id": f"r{number}", "type": "choices", "origin": "manual", "from_name": "label", "to_name": "text",
                  "value": {"choices": [label]}}
        result = [] if label is None else [choice]
        export.append({
            "id": number, "inner_id": number, "project": 1, "data": task["data"],
            "annotations": [{"id": 100 + number, "completed_by": 1, "result": result, "was_cancelled": label is None,
                             "ground_truth": False, "lead_time": 2.5, "task": number, "project": 1}],
            "predictions": task.get("predictions", []),
        })  # fmt: skip
    return export


def write_json(path: Path, obj) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


def test_label_studio_export_merges_into_a_file_that_trains_and_is_not_suggested_again(
    suggested_tasks, pool_texts, truth, toy_files, tiny_bert_dir, tmp_path
):
    export = annotated(suggested_tasks, lambda t: truth[t["data"]["pool_index"]])
    export.append({"id": 99, "data": {"text": pool_texts[0], "pool_index": 0}, "annotations": []})  # not annotated yet
    out = tmp_path / "labels.jsonl"
    summary = import_labels([write_json(tmp_path / "export.json", export)], pool_texts, LABELS, str(out))
    assert summary["added"] == summary["labeled"] == 8 and summary["without_label"] == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pool_index"] for r in rows] == [t["data"]["pool_index"] for t in suggested_tasks]
    assert all(r["text"] == pool_texts[r["pool_index"]] and r["label"] == truth[r["pool_index"]] for r in rows)

    raw = {
        "output_dir": str(tmp_path / "run"), "model": {"name_or_path": tiny_bert_dir},
        "data": {"labeled": {"path": str(out)}, "unlabeled": {"path": toy_files["train"], "label_column": None},
                 "validation": {"path": toy_files["validation"]}, "label_names": LABELS, "max_length": 32},
        "algorithm": {"name": "supervised"},
        "trainer": {"max_steps": 2, "lb_batch_size": 4, "learning_rate": 1e-3, "warmup_ratio": 0.0, "eval_every": 2,
                    "save_every": 2, "log_every": 1, "progress_bar": False},
    }  # fmt: skip
    metrics = train(parse_config(raw))
    assert metrics["validation_history"] and len(load_labeled_rows(tmp_path / "run")) == 8
    record = suggest(pool_spec(toy_files["train"]), tmp_path / "al", 20, "margin", run_dir=str(tmp_path / "run"))
    suggested = [json.loads(line) for line in Path(record["files"]["jsonl"]).read_text().splitlines()]
    assert record["labeled"] >= 8 and not {r["pool_index"] for r in suggested} & {r["pool_index"] for r in rows}


def test_csv_labels_merge_and_every_labeled_row_is_kept(suggested_tasks, pool_texts, truth, tmp_path):
    out = tmp_path / "labels.csv"
    first = annotated(suggested_tasks[:4], lambda t: truth[t["data"]["pool_index"]])
    import_labels([write_json(tmp_path / "export.json", first)], pool_texts, LABELS, str(out))
    before = out.read_text()
    again = suggested_tasks[0]["data"]["pool_index"]
    new = [i for i in range(len(pool_texts)) if i not in {t["data"]["pool_index"] for t in suggested_tasks}][:2]
    (tmp_path / "more.csv").write_text("index,label\n" + "".join(f"{i},{truth[i]}\n" for i in [again, *new]))
    summary = import_labels([str(tmp_path / "more.csv")], pool_texts, LABELS, str(out))
    assert (summary["added"], summary["already_labeled"], summary["labeled"]) == (2, 1, 6)
    assert out.read_text().startswith(before)  # the rows already there stay, first and unchanged
    rows = read_labeled(out)
    assert [r.pool_index for r in rows][4:] == new and all(r.label == truth[r.pool_index] for r in rows)


def test_the_suggestions_csv_filled_in_is_an_import(toy_files, tiny_bert_dir, pool_texts, truth, tmp_path):
    record = suggest(pool_spec(toy_files["train"]), tmp_path / "al", 5, "kmeans", encoder=tiny_bert_dir)
    with open(record["files"]["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows[:3]:  # a spreadsheet user labels three of five
        row["label"] = truth[int(row["pool_index"])]
    filled = tmp_path / "filled.csv"
    with open(filled, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = import_labels([str(filled)], pool_texts, LABELS, str(tmp_path / "labels.jsonl"))
    assert summary["added"] == 3 and summary["without_label"] == 2


def test_cli_import_labels(suggested_tasks, toy_files, truth, tmp_path, capsys):
    export = write_json(tmp_path / "export.json", annotated(suggested_tasks, lambda t: truth[t["data"]["pool_index"]]))
    out = tmp_path / "labels.jsonl"
    args = ["import-labels", export, "--pool", toy_files["train"], "--labels", ",".join(LABELS), "--out", str(out)]
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["labeled"] == 8
    bad = write_json(tmp_path / "bad.json", annotated(suggested_tasks[:1], lambda t: "weather"))
    before = out.read_bytes()
    assert main([*args[:1], bad, *args[2:]]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("ssl-text import-labels: error:") and "'weather'" in err and "--labels" in err
    assert out.read_bytes() == before


def _task(pool_texts, index, label, **data):
    """Task 7 of an export: pool row `index` annotated with `label` (a list: several choices)."""
    choices = [label] if isinstance(label, str) else label
    result = [{"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": choices}}]
    return {"id": 7, "data": {"text": pool_texts[index], "pool_index": index, **data},
            "annotations": [{"id": 1, "result": result}]}


BAD_EXPORTS = {
    "unknown label": (lambda p: [_task(p, 1, "weather")], "task 7 has label 'weather', which is not in --labels"),
    "annotators disagree": (
        lambda p: [{**_task(p, 1, "sports"), "annotations": [*_task(p, 1, "sports")["annotations"],
                                                             *_task(p, 1, "science")["annotations"]]}],
        "its annotations disagree (science, sports)"),
    "several choices": (lambda p: [_task(p, 1, ["sports", "science"])], 'choice="single"'),
    "text not in the pool": (lambda p: [{**_task(p, 1, "sports"), "data": {"text": "no such text"}}],
                             "is not in the pool"),
    "index beyond the pool": (lambda p: [{**_task(p, 1, "sports"), "data": {"pool_index": 500}}],
                              "pool_index 500 is not in the pool, which has 200 texts"),
    "index holds another text": (lambda p: [_task(p, 1, "sports", text=p[2])], "holds another text"),
    "two labels for one text": (lambda p: [_task(p, 1, "sports"), {**_task(p, 1, "science"), "id": 8}],
                                "task 8 labels the text"),
    "relabels a labeled text": (lambda p: [_task(p, 0, "science")], "labels it 'sports'; correct one of the two"),
    "not a list of tasks": (lambda p: {"tasks": []}, "not a list of tasks"),
    "minimal JSON export": (lambda p: [{"id": 3, "text": p[1], "label": "sports"}], "Export > JSON"),
}


@pytest.mark.parametrize("case", list(BAD_EXPORTS))
def test_a_bad_export_names_the_task_and_the_fix_and_keeps_the_file(case, pool_texts, tmp_path):
    make, message = BAD_EXPORTS[case]
    out = tmp_path / "labels.jsonl"
    out.write_text(json.dumps({"pool_index": 0, "text": pool_texts[0], "label": "sports"}) + "\n")
    before = out.read_bytes()
    export = write_json(tmp_path / "export.json", make(pool_texts))
    with pytest.raises(DataError, match="export.json") as err:
        import_labels([export], pool_texts, LABELS, str(out))
    assert message in str(err.value)
    assert out.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_bad_csvs_and_outputs_are_refused(pool_texts, tmp_path):
    (tmp_path / "labels.csv").write_text("row,class\n1,sports\n")
    with pytest.raises(DataError, match="`index` .* and `label`"):
        import_labels([str(tmp_path / "labels.csv")], pool_texts, LABELS, str(tmp_path / "out.jsonl"))
    (tmp_path / "labels.csv").write_text("index,label\n1,sports\nx,science\n")
    with pytest.raises(DataError, match="line 3: pool index 'x' is not a row position"):
        import_labels([str(tmp_path / "labels.csv")], pool_texts, LABELS, str(tmp_path / "out.jsonl"))
    with pytest.raises(ConfigError, match=r"\.jsonl or \.csv"):
        import_labels([str(tmp_path / "labels.csv")], pool_texts, LABELS, str(tmp_path / "out.txt"))
    hashes = tmp_path / "labeled_rows.jsonl"
    hashes.write_text(json.dumps({"index": 1, "sha256": text_hash(pool_texts[1]), "label": "sports"}) + "\n")
    with pytest.raises(DataError, match="labeled_rows.jsonl .*give the labeled file"):
        import_labels([str(tmp_path / "labels.csv")], pool_texts, LABELS, str(hashes))
    assert not (tmp_path / "out.jsonl").exists()


def test_pool_specs_inline_from_a_file_or_a_path(toy_files, tmp_path):
    inline = pool_spec(f"{{path: {toy_files['train']}, limit: 5}}")
    assert inline.path == toy_files["train"] and inline.limit == 5 and inline.label_column is None
    (tmp_path / "pool.yaml").write_text(yaml.safe_dump({"path": toy_files["train"], "text_columns": ["label", "text"]}))
    from_file = pool_spec(str(tmp_path / "pool.yaml"))
    assert load_pool(from_file)[0].split(" ", 1)[0] in LABELS  # the label joined before the text
    assert pool_spec(toy_files["train"], ["label"]).text_columns == ["label"]
    with pytest.raises(ConfigError, match="unknown key `colums`"):
        pool_spec("{path: x.csv, colums: [a]}")
