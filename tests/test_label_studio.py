"""The active-learning loop through a real Label Studio server on 127.0.0.1 (issue #19).

`ssl-text suggest` writes tasks and a labeling config; a Label Studio project is made from them; a simulated annotator
(the pool's hidden labels) labels the tasks through the REST API, skipping one; the project's JSON export goes through
`ssl-text import-labels` into a labeled file, and `ssl-text train` trains a semi-supervised run on it. The second round
starts from that run: its tasks carry the model's labels as pre-annotations, which the annotator accepts or corrects.

The server runs from a venv of its own (tests/label_studio_server.py says how to install it); without it the loop
test skips. Cost on 2 cores: about 35 s to start the server with a fresh database, about 10 s for the loop. The
exports that a real server wrote (tests/fixtures/label_studio_export*.json) are checked without a server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from ssl_text.cli.main import main as cli_main
from ssl_text.data.annotations import import_labels
from ssl_text.data.loading import DataError
from tests.label_studio_server import (
    BINARY_ENV,
    DEFAULT_BINARY,
    choice_result,
    find_binary,
    fixture_pool,
    start_label_studio,
)
from tests.toy_data import make_texts, write_csv

FIXTURES = Path(__file__).parent / "fixtures"

POOL_SIZE = 60
POOL_SEED = 21
PER_ROUND = 8  # texts suggested per round
COLD_STRATEGY, WARM_STRATEGY = "kmeans", "margin"


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    binary = find_binary()
    if binary is None:
        where = f"{BINARY_ENV}={os.environ[BINARY_ENV]!r} is not an executable" if os.environ.get(BINARY_ENV) else (
            f"{DEFAULT_BINARY} does not exist and {BINARY_ENV} is not set"
        )
        pytest.skip(f"Label Studio is not installed ({where}): "
                    '`python3 -m venv .venv-ls && .venv-ls/bin/pip install "label-studio==1.23.*"`')
    server = start_label_studio(binary, tmp_path_factory.mktemp("label_studio"))
    try:
        yield server
    finally:
        server.stop()


def run_cli(capsys, *argv: str) -> dict:
    """An `ssl-text` command in this process; its JSON report on stdout."""
    capsys.readouterr()
    code = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def annotate_round(label_studio, project: int, tasks_file: Path, hidden: list[str], skip: int) -> dict[int, str]:
    """Import a round's tasks and label them as a person would, from what the server shows; skip the `skip`-th task.
    pool_index -> label of the tasks labeled."""
    tasks = json.loads(tasks_file.read_text())
    labeled = {}
    for n, task_id in enumerate(label_studio.import_tasks(project, tasks)):
        task = label_studio.task(task_id)
        assert task["data"] == tasks[n]["data"] and task["total_predictions"] == len(tasks[n].get("predictions", []))
        if n == skip:
            label_studio.annotate(task_id, None)
        else:
            index = task["data"]["pool_index"]
            labeled[index] = hidden[index]
            assert label_studio.annotate(task_id, hidden[index])["result"] == choice_result(hidden[index])
    return labeled


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.label_studio
@pytest.mark.slow
def test_active_learning_loop_through_label_studio(label_studio, tiny_bert_dir, toy_files, tmp_path, capsys):
    rows = make_texts(POOL_SIZE, seed=POOL_SEED)
    hidden = [label for label, _ in rows]
    label_names = sorted(set(hidden))
    pool = str(write_csv(tmp_path / "pool.csv", rows))  # `suggest` reads the text column only
    loop, labels_file, export = tmp_path / "loop", tmp_path / "labels.jsonl", tmp_path / "export.json"
    common = ["--pool", pool, "--n", PER_ROUND, "--out", loop]
    importing = ["import-labels", export, "--pool", pool, "--labels", ",".join(label_names), "--out", labels_file]

    # Round 0, cold start: no model, so no pre-annotations; the labeling config comes from --labels.
    cold = run_cli(capsys, "suggest", *common, "--strategy", COLD_STRATEGY, "--encoder", tiny_bert_dir,
                   "--labels", ",".join(label_names))  # fmt: skip
    project = label_studio.create_project("ssl-text round trip", Path(cold["files"]["label_config"]).read_text())
    parsed = label_studio.request("GET", f"/api/projects/{project}")["parsed_label_config"]
    assert [c["labels"] for c in parsed.values()] == [label_names]
    tasks_file = Path(cold["files"]["label_studio"])
    assert not any("predictions" in task for task in json.loads(tasks_file.read_text()))
    first = annotate_round(label_studio, project, tasks_file, hidden, skip=0)

    export.write_text(json.dumps(label_studio.export_json(project)))
    report = run_cli(capsys, *importing)
    assert (report["labeled"], report["added"], report["without_label"]) == (PER_ROUND - 1, PER_ROUND - 1, 1)
    assert {r["pool_index"]: r["label"] for r in read_jsonl(labels_file)} == first
    assert all(r["text"] == rows[r["pool_index"]][1] for r in read_jsonl(labels_file))

    # Train semi-supervised on the exported labels, with the pool as the unlabeled data.
    config = {
        "output_dir": str(tmp_path / "run"),
        "model": {"name_or_path": tiny_bert_dir},
        "data": {
            "labeled": {"path": str(labels_file)},
            "label_names": label_names,
            "unlabeled": {"path": pool, "label_column": None},
            "validation": {"path": toy_files["validation"]},
            "max_length": 32,
        },
        "algorithm": {"name": "fixmatch", "tau": 0.5},
        "trainer": {"max_steps": 2, "lb_batch_size": 4, "mu": 2, "eval_every": 2, "save_every": 2,
                    "progress_bar": False},
    }  # fmt: skip
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert cli_main(["train", str(config_file)]) == 0, capsys.readouterr().err

    # Round 1, warm start from the run: the model's labels come as pre-annotations; nothing labeled is suggested again.
    warm = run_cli(capsys, "suggest", *common, "--strategy", WARM_STRATEGY, "--run", tmp_path / "run",
                   "--labeled", labels_file)  # fmt: skip
    tasks_file = Path(warm["files"]["label_studio"])
    tasks = json.loads(tasks_file.read_text())
    assert len(tasks) == PER_ROUND and not {t["data"]["pool_index"] for t in tasks} & set(first)
    assert all(len(t["predictions"]) == 1 for t in tasks)
    second = annotate_round(label_studio, project, tasks_file, hidden, skip=PER_ROUND - 1)

    export_all = label_studio.export_json(project, all_tasks=True)
    sent = {t["data"]["pool_index"]: t["predictions"][0] for t in tasks}
    for task in export_all:  # a pre-annotation comes back with the annotation made on top of it
        for annotation in task["annotations"]:
            if task["data"]["pool_index"] in sent:
                prediction, expected = annotation["prediction"], sent[task["data"]["pool_index"]]
                assert (prediction["result"], prediction["score"]) == (expected["result"], expected["score"])
                assert prediction["model_version"] == expected["model_version"]

    export.write_text(json.dumps(label_studio.export_json(project)))
    report = run_cli(capsys, *importing)
    assert (report["added"], report["already_labeled"]) == (PER_ROUND - 1, PER_ROUND - 1)
    assert {r["pool_index"]: r["label"] for r in read_jsonl(labels_file)} == {**first, **second}


def test_saved_exports_of_a_real_server_import(tmp_path):
    """The fixtures' scenario is in tests/label_studio_server.py (write_fixtures): tasks for pool rows 0-7, 0-4
    labeled, 5 skipped, 6-7 not annotated; then a disagreement, a label outside the set and a text not in the pool."""
    pool = fixture_pool()
    texts, label_names = [text for _, text in pool], sorted({label for label, _ in pool})
    out = tmp_path / "labels.jsonl"
    summary = import_labels([str(FIXTURES / "label_studio_export.json")], texts, label_names, str(out))
    assert (summary["labeled"], summary["without_label"]) == (5, 3)
    assert {r["pool_index"]: r["label"] for r in read_jsonl(out)} == {i: pool[i][0] for i in range(5)}

    problems = json.loads((FIXTURES / "label_studio_export_problems.json").read_text())
    for task, message in zip(problems, ["disagree", "'weather', which is not in --labels", "999 is not in the pool"]):
        export = tmp_path / f"task_{task['id']}.json"
        export.write_text(json.dumps([task]))
        with pytest.raises(DataError, match=message):
            import_labels([str(export)], texts, label_names, str(out))
    assert len(read_jsonl(out)) == 5  # nothing already labeled is lost
