"""`ssl-text suggest`: cold and warm start on the tiny BERT, the files it writes (CSV, JSONL, Label Studio tasks),
labeled texts never suggested again, determinism, the feature cache, the stopping signal, and every bad input stopped
before a write with the fix named."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from ssl_text.active.strategies import STRATEGIES
from ssl_text.cli.main import EXIT_BAD_INPUT, main
from ssl_text.data.annotations import load_pool, pool_spec
from ssl_text.data.text_data import load_labeled_rows, text_hash
from ssl_text.pipelines import suggest as suggest_module
from ssl_text.pipelines.suggest import (
    CACHE,
    HISTORY,
    LABEL_STUDIO_TASKS,
    META_KEY,
    STOP_SET,
    cold_model,
    get_checked_strategy,
    pool_features,
    stopping_signal,
    suggest,
)
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["business", "politics", "science", "sports"]


def run_raw(tiny_bert_dir: str, toy_files: dict, out: Path, seed: int = 0) -> dict:
    """A few supervised steps on 4 labels per class of the toy training file, the rest its unlabeled pool."""
    return {
        "output_dir": str(out),
        "model": {"name_or_path": tiny_bert_dir},
        "data": {"labeled": {"path": toy_files["train"]}, "validation": {"path": toy_files["validation"]},
                 "sampling": {"num_per_class": 4, "seed": seed, "rest_as_unlabeled": True}, "max_length": 32},
        "algorithm": {"name": "supervised"},
        "trainer": {"max_steps": 2, "lb_batch_size": 4, "learning_rate": 1e-3, "warmup_ratio": 0.0, "eval_every": 2,
                    "save_every": 2, "log_every": 1, "progress_bar": False, "seed": seed},
    }  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tiny_bert_dir, toy_files, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("suggest_run") / "run"
    train(parse_config(run_raw(tiny_bert_dir, toy_files, out)))
    return str(out)


@pytest.fixture
def pool(toy_files):
    return pool_spec(toy_files["train"])


def read_round(record: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """(JSONL records, CSV rows, Label Studio tasks) of a round."""
    files = record["files"]
    jsonl = [json.loads(line) for line in Path(files["jsonl"]).read_text().splitlines()]
    with open(files["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    return jsonl, rows, json.loads(Path(files["label_studio"]).read_text())


def test_cold_start_suggests_from_embeddings_alone(pool, tiny_bert_dir, toy_files, tmp_path):
    record = suggest(pool, tmp_path / "al", 8, "kmeans", encoder=tiny_bert_dir, labels=LABELS)
    jsonl, rows, tasks = read_round(record)
    texts = load_pool(pool)
    assert record["round"] == 0 and record["computed_rows"] == len(texts) == 200 and record["stopping"] is None
    assert [r["rank"] for r in jsonl] == list(range(1, 9))
    assert len({r["pool_index"] for r in jsonl}) == 8 and all(texts[r["pool_index"]] == r["text"] for r in jsonl)
    assert "predicted_label" not in jsonl[0]  # no model, no predictions
    assert list(rows[0]) == ["rank", "pool_index", "score", "text", "label"]
    assert [int(r["pool_index"]) for r in rows] == [r["pool_index"] for r in jsonl]
    assert tasks == [{"data": {"text": r["text"], "pool_index": r["pool_index"]}} for r in jsonl]
    config = (Path(record["files"]["label_config"])).read_text()
    assert '<Choices name="label" toName="text" choice="single"' in config and '<Choice value="sports"/>' in config
    assert len((tmp_path / "al" / HISTORY).read_text().splitlines()) == 1


def test_cold_embeddings_are_mean_pooled_like_sentence_transformers(pool, tiny_bert_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    texts = load_pool(pool)[:20]
    model = cold_model(tiny_bert_dir, get_checked_strategy("kmeans"), None)
    features, computed = pool_features(tmp_path, model, texts, "pool-20", mc=False, batch_size=7)
    reference = SentenceTransformer(tiny_bert_dir, device="cpu").encode(texts, normalize_embeddings=True)
    assert computed == 20 and set(features) == {"embedding"}
    np.testing.assert_allclose(features["embedding"], reference, atol=1e-5)


def test_warm_start_predicts_and_never_suggests_a_labeled_text(pool, trained_run, tmp_path):
    labeled = load_labeled_rows(trained_run)
    record = suggest(pool, tmp_path / "al", 10, "margin", run_dir=trained_run)
    jsonl, rows, tasks = read_round(record)
    assert record["labeled"] == len(labeled) == 16 and record["candidates"] <= 200 - 16
    assert not {r["pool_index"] for r in jsonl} & {r.index for r in labeled}  # the run's labels come from this pool
    assert not {text_hash(r["text"]) for r in jsonl} & {r.sha256 for r in labeled}
    for r in jsonl:
        assert r["predicted_label"] in LABELS and sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        assert r["predicted_label"] == max(r["probabilities"], key=r["probabilities"].get)
    scores = [r["score"] for r in jsonl]
    assert scores == sorted(scores, reverse=True)  # best first
    assert list(rows[0]) == ["rank", "pool_index", "score", "predicted_label", *(f"p_{n}" for n in LABELS), "text",
                             "label"]
    task = tasks[0]
    assert set(task) == {"data", "predictions"} and task["data"] == {"text": jsonl[0]["text"],
                                                                     "pool_index": jsonl[0]["pool_index"]}
    (prediction,) = task["predictions"]
    assert prediction["model_version"].startswith("run-") and isinstance(prediction["score"], float)
    assert prediction["result"] == [{"from_name": "label", "to_name": "text", "type": "choices",
                                     "value": {"choices": [jsonl[0]["predicted_label"]]}}]
    assert record["stopping"]["changed_share"] is None and "first round with a model" in record["stopping"]["message"]
    everything = suggest(pool, tmp_path / "al", record["candidates"], "random", run_dir=trained_run)
    assert not {text_hash(r["text"]) for r in read_round(everything)[0]} & {r.sha256 for r in labeled}


def test_a_labeled_file_is_left_out_by_index_and_by_text(pool, tiny_bert_dir, tmp_path):
    texts = load_pool(pool)
    labeled = tmp_path / "labels.jsonl"
    rows = [{"pool_index": 3, "text": texts[3], "label": "sports"},
            {"pool_index": None, "text": texts[7], "label": "science"}]  # by index and text; by text alone
    labeled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    unlabeled = {text_hash(t) for t in texts} - {text_hash(texts[3]), text_hash(texts[7])}
    distinct = len(unlabeled)
    record = suggest(pool, tmp_path / "al", distinct, "random", labeled=str(labeled), encoder=tiny_bert_dir)
    picked = {r["pool_index"] for r in read_round(record)[0]}
    assert record["candidates"] == distinct and not picked & {3, 7}
    assert {text_hash(texts[i]) for i in picked} == unlabeled  # each unlabeled text once


def test_same_seed_same_suggestions_from_the_cache(pool, trained_run, tmp_path, monkeypatch):
    first = suggest(pool, tmp_path / "al", 6, "balanced_kmeans", run_dir=trained_run, seed=3)
    shards = sorted((tmp_path / "al" / CACHE).rglob("*.parquet"))
    written = {p: p.stat().st_mtime_ns for p in shards}
    jsonl = Path(first["files"]["jsonl"]).read_text()
    monkeypatch.setattr(suggest_module, "_forward", lambda *a, **k: pytest.fail("features were computed again"))
    again = suggest(pool, tmp_path / "al", 6, "balanced_kmeans", run_dir=trained_run, seed=3)
    assert again["computed_rows"] == 0 and first["computed_rows"] == 200 and shards
    assert {p: p.stat().st_mtime_ns for p in shards} == written
    assert Path(again["files"]["jsonl"]).read_text() == jsonl
    assert again["round"] == first["round"] == 0  # same model, same labels: the round is redone, not a new one
    assert len((tmp_path / "al" / HISTORY).read_text().splitlines()) == 1
    other = suggest(pool, tmp_path / "al", 6, "random", run_dir=trained_run, seed=4)
    assert other["computed_rows"] == 0 and Path(other["files"]["jsonl"]).read_text() != jsonl


def test_every_strategy_runs_on_a_warm_start(pool, trained_run, tmp_path):
    labeled = {r.sha256 for r in load_labeled_rows(trained_run)}
    for name in STRATEGIES:
        record = suggest(pool, tmp_path / "al", 5, name, run_dir=trained_run, seed=1)
        picked = read_round(record)[0]
        assert len({r["pool_index"] for r in picked}) == 5, name
        assert not {text_hash(r["text"]) for r in picked} & labeled, name
    assert any((tmp_path / "al" / CACHE / "mc_dropout").rglob("*.parquet"))  # bald's dropout passes, cached apart


def perturbed_copy(run: str, dest: Path) -> str:
    """The run with its classifier biased to the first class: another model, with known predictions."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(run, dest)
    weights = dest / "best" / "model.safetensors"
    tensors = load_file(weights)
    tensors["classifier.bias"] = tensors["classifier.bias"] + 100.0 * (np.arange(len(LABELS)) == 0)
    save_file({k: v.contiguous().float() for k, v in tensors.items()}, weights, metadata={"format": "pt"})
    return str(dest)


def test_stopping_signal_compares_the_fixed_sample_between_models(pool, trained_run, tmp_path):
    out = tmp_path / "al"
    cold = suggest(pool, out, 4, "kmeans", encoder=trained_run + "/best")
    first = suggest(pool, out, 4, "margin", run_dir=trained_run)
    second = suggest(pool, out, 4, "margin", run_dir=perturbed_copy(trained_run, tmp_path / "run2"))
    assert [cold["round"], first["round"], second["round"]] == [0, 1, 2]
    before = json.loads((out / first["stop_set"]).read_text())
    after = json.loads((out / second["stop_set"]).read_text())
    assert before["pool_index"] == after["pool_index"] and len(after["pool_index"]) == 200  # the whole toy pool
    assert set(after["predicted_label"]) == {LABELS[0]}
    stopping = second["stopping"]
    assert stopping["compared_with_round"] == 1 and not stopping["stop"]
    assert stopping["changed_share"] == pytest.approx(np.mean(np.asarray(before["predicted_label"]) != LABELS[0]))
    history = [json.loads(line) for line in (out / HISTORY).read_text().splitlines()]
    assert [h["stopping"] and h["stopping"]["changed_share"] for h in history][2] == stopping["changed_share"]


def test_stopping_is_advised_after_three_stable_rounds(tmp_path):
    labels = ["a", "b"] * 50
    (tmp_path / "r").mkdir()
    same = {"pool": "p", "pool_index": list(range(100)), "predicted_label": labels}
    (tmp_path / "r" / STOP_SET).write_text(json.dumps(same))
    earlier = [{"round": 1, "model_fingerprint": "m1", "stop_set": f"r/{STOP_SET}", "stopping": {"kappa": 0.995}},
               {"round": 2, "model_fingerprint": "m2", "stop_set": f"r/{STOP_SET}", "stopping": {"kappa": 0.999}}]
    signal = stopping_signal(tmp_path, earlier, same, "m3")
    assert (signal["changed_share"], signal["kappa"], signal["stop"], signal["compared_with_round"]) == (0, 1, True, 2)
    flipped = {**same, "predicted_label": ["a"] * 10 + labels[10:]}  # 5 of 100 changed
    signal = stopping_signal(tmp_path, earlier, flipped, "m3")
    assert signal["changed_share"] == pytest.approx(0.05) and signal["kappa"] == pytest.approx(0.9)
    assert not signal["stop"]
    assert "5.0% of a fixed sample of 100" in signal["message"]
    assert stopping_signal(tmp_path, earlier, {**same, "pool": "other"}, "m3")["changed_share"] is None


# ---------------------------------------------------------------------------------------
# Bad input: exit 2, the fix named, nothing written
# ---------------------------------------------------------------------------------------


def ner_run(trained_run: str, dest: Path) -> str:
    """A run directory whose config is a NER run's."""
    from tests.toy_ner import make_sentences, write_conll

    shutil.copytree(trained_run, dest)
    raw = yaml.safe_load((dest / "config.yaml").read_text())
    conll = write_conll(dest / "train.txt", make_sentences(20, 1))
    raw.update(task="ner", views={"strong": {"mask_prob": 0.2, "delete_prob": 0.0}})
    raw["data"] = {"labeled": {"path": str(conll)}, "max_length": 32}
    (dest / "config.yaml").write_text(yaml.safe_dump(raw))
    return str(dest)


BAD = {
    "pool without its text column": (["--text-columns", "body", "--strategy", "kmeans"], "--text-columns"),
    "unknown strategy": (["--strategy", "smartest"], "choose one of random, least_confidence"),
    "model strategy on a cold start": (["--strategy", "margin"], "pass --run RUN_DIR"),
    "labels needed on a cold start": (["--strategy", "balanced_kmeans"], "pass --labeled FILE"),
    "more texts than the pool has": (["--strategy", "kmeans", "--n", "201"], "lower --n"),
    "not a run directory": (["--strategy", "margin", "--run", "{tmp}"], "not a finished ssl-text run"),
    "a run of another task": (["--strategy", "margin", "--run", "{ner}"], "output_dir of a text-classification run"),
    "encoder with a run": (["--strategy", "margin", "--run", "{run}", "--encoder", "x"], "drop one"),
    "labels unlike the run's": (["--strategy", "margin", "--run", "{run}", "--labels", "a,b"], "drop --labels"),
    "missing labeled file": (["--strategy", "kmeans", "--labeled", "{tmp}/nope.jsonl"], "does not exist"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_stops_before_writing_with_the_fix(case, trained_run, tiny_bert_dir, toy_files, tmp_path, capsys):
    args, message = BAD[case]
    ner = ner_run(trained_run, tmp_path / "ner") if "{ner}" in args else ""
    places = {"tmp": str(tmp_path), "run": trained_run, "ner": ner}
    args = [a.format(**places) for a in args]
    if "--run" not in args:
        args += ["--encoder", tiny_bert_dir]
    n = [] if "--n" in args else ["--n", "4"]
    code = main(["suggest", "--pool", toy_files["train"], "--out", str(tmp_path / "al"), *n, *args])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.startswith("ssl-text suggest: error:") and message in err, err
    assert not (tmp_path / "al").exists()


def test_cli_prints_the_round_and_reads_an_inline_streamed_pool_spec(tiny_bert_dir, toy_files, tmp_path, capsys):
    spec = f"{{path: {toy_files['train']}, text_columns: [text], streaming: true, limit: 50}}"  # read up to limit
    code = main(["suggest", "--pool", spec, "--n", "3", "--strategy", "typicality", "--encoder", tiny_bert_dir,
                 "--out", str(tmp_path / "al")])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["pool_size"] == 50 and record["n"] == 3
    assert len(json.loads(Path(record["files"]["label_studio"]).read_text())) == 3


@pytest.mark.slow
def test_two_processes_share_the_pool_and_suggest_what_one_does(tiny_bert_dir, toy_files, tmp_path):
    """Under `accelerate launch` each process embeds its shards; the main process merges and writes the same round."""
    from tests.test_launch import free_port

    script = tmp_path / "suggest_small_shards.py"
    script.write_text("import sys\nimport ssl_text.pipelines.suggest as s\nfrom ssl_text.cli.main import main\n"
                      "s.SHARD_ROWS = 30\nsys.exit(main(['suggest', *sys.argv[1:]]))\n")
    args = ["--pool", toy_files["train"], "--n", "5", "--strategy", "kmeans", "--encoder", tiny_bert_dir]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "ACCELERATE_USE_CPU": "true"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    two = subprocess.run([*launch, str(script), *args, "--out", str(tmp_path / "two")], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("\"round\"") == 1, two.stdout  # the main process prints the round
    one = subprocess.run([sys.executable, str(script), *args, "--out", str(tmp_path / "one")], capture_output=True,
                         text=True, timeout=600, env=env, cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    shards = sorted((tmp_path / "two" / CACHE).rglob("*.parquet"))
    written_by = [json.loads(pq.read_schema(p).metadata[META_KEY])["process"] for p in shards]
    assert written_by == [0, 1, 0, 1, 0, 1, 0]  # 200 rows in shards of 30, shared out
    picked = [(tmp_path / d / "round_00" / "suggestions.jsonl").read_text() for d in ("one", "two")]
    assert picked[0] == picked[1]
    assert json.loads((tmp_path / "two" / "round_00" / LABEL_STUDIO_TASKS).read_text())
