"""Back-translation (ssl_text.augment): splitting, alignment, determinism, resume, two
processes, Apertium end to end. Uses a tiny random Marian pair built in-process; conftest.py
sets HF_HUB_OFFLINE / HF_DATASETS_OFFLINE."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from datasets import Dataset, load_from_disk

from ssl_text.augment import back_translation as bt
from ssl_text.augment.back_translation import (
    ApertiumBackend,
    ApertiumNotFoundError,
    BackTranslationError,
    MarianBackend,
    back_translate,
    join_sentences,
    paraphrase_texts,
    split_sentences,
)
from ssl_text.augment.testing import build_tiny_marian_pair
from ssl_text.cli.augment import load_data, main, prepare_text_column
from ssl_text.data.loading import clean_text

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses:UserWarning")
REPO = Path(__file__).resolve().parents[1]
HAS_APERTIUM = shutil.which("apertium") is not None
needs_apertium = pytest.mark.skipif(
    not HAS_APERTIUM, reason=f"apertium binary not installed ({bt.APERTIUM_INSTALL})"
)

TEXTS = [
    "The cat sat on the mat. It was happy.",
    "",
    "Oil prices fell for the third day! Traders worried. Mr. Smith said the U.S. market was calm.",
    "Apple released a security update yesterday.",
    "   ",
    "Stocks rose sharply on Monday after the report.\nThe team won the final.",
    "Short one",
    "Scientists found water on a distant planet. The government announced new taxes. Rain fell.",
]


def make_dataset(n: int) -> Dataset:
    texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
    return Dataset.from_dict({"id": list(range(n)), "text": texts})


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # tiny models: threads only add overhead, and the shared CPU makes spinning threads crawl
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _need_sentencepiece():
    pytest.importorskip("sentencepiece", reason="pip install sentencepiece (builds the tiny Marian tokenizer)")


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    _need_sentencepiece()
    return build_tiny_marian_pair(tmp_path_factory.mktemp("tiny_marian"))


@pytest.fixture(scope="module")
def peaked_marian(tmp_path_factory):
    _need_sentencepiece()
    return build_tiny_marian_pair(tmp_path_factory.mktemp("peaked_marian"), init_std=1.0)


def marian(models, **kw) -> MarianBackend:
    kw = {"pivot": "xx", "batch_size": 8, "max_new_tokens": 8, "device": "cpu", **kw}
    return MarianBackend(models[0], models[1], **kw)


class FakeParaphraser:
    """Reverses each sentence and tags it; sentences containing FAIL are untranslatable."""

    name = "fake"

    def __init__(self, pivot="zz"):
        self.pivot = pivot

    def config(self):
        return {"backend": self.name, "pivot": self.pivot}

    def paraphrase(self, sentences, k, seed):
        return [[None if "FAIL" in s else f"{s[::-1]}|{self.pivot}{j}" for s in sentences] for j in range(k)]


class Counting:
    """Wraps a paraphraser: counts the sentences it is asked for and can die after N calls."""

    def __init__(self, inner, die_after: int | None = None):
        self.inner, self.die_after = inner, die_after
        self.name, self.pivot = inner.name, inner.pivot
        self.calls, self.sentences = 0, 0

    def config(self):
        return self.inner.config()

    def paraphrase(self, sentences, k, seed):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        self.sentences += len(sentences)
        return self.inner.paraphrase(sentences, k, seed)


def read_out(path) -> dict:
    return load_from_disk(str(path)).to_dict()


# ---------------------------------------------------------------------------------------
# text helpers
# ---------------------------------------------------------------------------------------


def test_split_sentences_and_join():
    assert split_sentences("Mr. Smith went to Washington. He met the U.S. president! Did he? Yes.") == [
        "Mr. Smith went to Washington.", "He met the U.S. president!", "Did he?", "Yes."]
    assert split_sentences('He said "Stop." Then he left (quietly.) Done') == [
        'He said "Stop."', "Then he left (quietly.)", "Done"]
    assert split_sentences("It costs 3.5 dollars. Cheap, e.g. for J. Doe.") == [
        "It costs 3.5 dollars.", "Cheap, e.g. for J. Doe."]
    assert split_sentences("First line\nsecond line.\n\nThird.") == ["First line second line.", "Third."]
    assert split_sentences("") == [] and split_sentences(" \n\t ") == []
    for text in TEXTS:
        sents = split_sentences(text)
        assert all("\n" not in s and s == s.strip() and s for s in sents)
        assert join_sentences(sents) == " ".join(text.split())


def test_clean_text_ag_news_escapes():
    # real AG News snippets: the "&" of each entity became a space, "\\" was a line break
    assert clean_text("India #39;s development") == "India's development"
    assert clean_text("Drug maker Merck  amp; Co. Inc.") == "Drug maker Merck & Co. Inc."
    assert clean_text("prices surged past  #36;46\\a barrel") == "prices surged past $46 a barrel"
    assert clean_text("planet-bearing stars  #151; an important") == "planet-bearing stars \u2014 an important"
    assert clean_text("a  quot;true partnership quot; with") == 'a "true partnership" with'
    assert clean_text("rain washes out &lt;b&gt;...&lt;/b&gt;") == "rain washes out ..."
    assert clean_text("AT&amp;T &amp;lt;b&amp;gt;") == "AT&T"
    assert clean_text("Co. &lt;A HREF=\"\"http://x.com/q?t=BK.N\"\"&gt;BK.N&lt;/A&gt;, which") == "Co. BK.N, which"
    assert clean_text("AstraZeneca &lt;AZN.L&gt; fell.&lt;p&gt;Next") == "AstraZeneca <AZN.L> fell. Next"
    assert clean_text("an ampersand; stays, so does x#39;") == "an ampersand; stays, so does x#39;"


# ---------------------------------------------------------------------------------------
# alignment, empty and untranslatable texts (fake backend, exact expectations)
# ---------------------------------------------------------------------------------------


def test_paraphrase_texts_alignment_and_kept_original():
    texts = ["One. Two!", "", None, "Keep FAIL here. Fine.", "   ", "Three?"]
    cols, stats = paraphrase_texts(texts, [FakeParaphraser("p"), FakeParaphraser("q")], k=2, seed=0)
    assert len(cols) == 4  # 2 pivots x K=2, pivot-major
    for c, tag in enumerate(["p0", "p1", "q0", "q1"]):
        assert cols[c][0] == f".enO|{tag} !owT|{tag}"
        assert cols[c][5] == f"?eerhT|{tag}"
        assert cols[c][1] == "" and cols[c][2] is None and cols[c][4] == "   "  # empty: original kept
        assert cols[c][3] == "Keep FAIL here. Fine."  # one sentence untranslatable: original kept
    assert stats == {"n_texts": 6, "n_sentences": 5, "n_kept_original": 4, "n_cells_kept_original": 16}


def test_back_translate_writes_columns_summary_and_parquet(tmp_path):
    ds = make_dataset(20)
    summary = back_translate(ds, tmp_path / "out", [FakeParaphraser()], num_paraphrases=3, shard_size=6)
    out = read_out(tmp_path / "out")
    assert list(out) == ["id", "text", "aug_0", "aug_1", "aug_2"]
    assert out["id"] == list(range(20)) and out["text"] == ds["text"]
    for i, text in enumerate(ds["text"]):
        sents = split_sentences(text)
        expected = " ".join(f"{s[::-1]}|zz1" for s in sents) if sents else text
        assert out["aug_1"][i] == expected
    n_empty = sum(not t.strip() for t in ds["text"])
    assert summary["n_texts"] == 20 and summary["n_kept_original"] == n_empty == 5
    assert summary["n_cells_kept_original"] == 3 * n_empty
    assert summary["n_sentences"] == sum(len(split_sentences(t)) for t in ds["text"])
    assert summary["backend"] == "fake" and summary["pivot"] == ["zz"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    assert pq.read_table(tmp_path / "out" / "data.parquet").to_pydict() == out
    shards = sorted(p.name for p in (tmp_path / "out" / "shards").iterdir())
    assert shards == ["shard_00000-00005.parquet", "shard_00006-00011.parquet",
                      "shard_00012-00017.parquet", "shard_00018-00019.parquet"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and all(s["done"] for s in manifest["shards"])


# ---------------------------------------------------------------------------------------
# Marian backend (tiny random model)
# ---------------------------------------------------------------------------------------


def test_marian_restores_order_after_length_sorting(peaked_marian):
    # temperature ~0 makes sampling greedy, so a sentence's output no longer depends on its
    # batch: translating all at once (sorted by length, padded) must equal one at a time
    sents = [s for t in TEXTS for s in split_sentences(t)]
    batched = marian(peaked_marian, temperature=1e-4, batch_size=4).translate(sents)
    single = [marian(peaked_marian, temperature=1e-4, batch_size=1).translate([s])[0] for s in sents]
    assert batched == single
    assert len(set(batched)) > len(sents) // 2  # different inputs, different outputs


def test_marian_deterministic_given_seed(tiny_marian, tmp_path):
    ds = make_dataset(24)
    kw = dict(num_paraphrases=2, shard_size=8)
    s1 = back_translate(ds, tmp_path / "a", [marian(tiny_marian)], seed=1, **kw)
    back_translate(ds, tmp_path / "b", [marian(tiny_marian)], seed=1, **kw)
    back_translate(ds, tmp_path / "c", [marian(tiny_marian)], seed=2, **kw)
    a, b, c = read_out(tmp_path / "a"), read_out(tmp_path / "b"), read_out(tmp_path / "c")
    assert a == b
    assert a["id"] == list(range(24)) and a["text"] == ds["text"]
    nonempty = [i for i, t in enumerate(ds["text"]) if t.strip()]
    assert sum(a["aug_0"][i] != a["aug_1"][i] for i in nonempty) > len(nonempty) // 2  # K samples differ
    assert sum(a["aug_0"][i] != c["aug_0"][i] for i in nonempty) > len(nonempty) // 2  # seed matters
    for i, t in enumerate(ds["text"]):
        if not t.strip():
            assert a["aug_0"][i] == a["aug_1"][i] == t
    assert s1["n_kept_original"] >= 6 and s1["backend"] == "marian" and s1["sentences_per_second"] > 0


def test_resume_after_kill_equals_clean_run_and_skips_done_shards(tiny_marian, tmp_path):
    ds = make_dataset(40)  # 5 shards of 8
    kw = dict(num_paraphrases=2, shard_size=8, seed=3)
    back_translate(ds, tmp_path / "clean", [marian(tiny_marian)], **kw)
    clean = read_out(tmp_path / "clean")

    killed = Counting(marian(tiny_marian), die_after=2)
    with pytest.raises(KeyboardInterrupt):
        back_translate(ds, tmp_path / "run", [killed], **kw)
    shard_dir = tmp_path / "run" / "shards"
    assert len(list(shard_dir.glob("shard_*.parquet"))) == 2
    assert not (tmp_path / "run" / "data.parquet").exists()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [s["done"] for s in manifest["shards"]] == [True, True, False, False, False]
    first_two = {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("shard_*.parquet")}
    (shard_dir / ".shard_00016-00023.parquet.tmp999").write_bytes(b"half a file")  # killed mid-write

    resumed = Counting(marian(tiny_marian))
    back_translate(ds, tmp_path / "run", [resumed], **kw)
    assert resumed.calls == 3
    assert resumed.sentences == sum(len(split_sentences(t)) for t in ds["text"][16:])
    assert read_out(tmp_path / "run") == clean
    assert pq.read_table(tmp_path / "run" / "data.parquet").equals(pq.read_table(tmp_path / "clean" / "data.parquet"))
    assert {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("shard_*.parquet") if p.name in first_two} == first_two
    assert not list(shard_dir.glob(".*tmp*"))

    # lose the last shard and its manifest entry: only that shard is recomputed
    (shard_dir / "shard_00032-00039.parquet").unlink()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:-1]
    (tmp_path / "run" / "manifest.json").write_text(json.dumps(manifest))
    again = Counting(marian(tiny_marian))
    back_translate(ds, tmp_path / "run", [again], **kw)
    assert again.calls == 1 and read_out(tmp_path / "run") == clean

    # a finished run is not recomputed; another configuration needs --overwrite
    idle = Counting(marian(tiny_marian))
    back_translate(ds, tmp_path / "run", [idle], **kw)
    assert idle.calls == 0 and read_out(tmp_path / "run") == clean
    with pytest.raises(BackTranslationError, match="--overwrite"):
        back_translate(ds, tmp_path / "run", [marian(tiny_marian)], **{**kw, "seed": 4})
    back_translate(ds, tmp_path / "run", [marian(tiny_marian)], overwrite=True, **{**kw, "seed": 4})
    assert read_out(tmp_path / "run") != clean


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tiny_marian, tmp_path):
    make_dataset(22).to_json(tmp_path / "in.jsonl")
    args = ["back-translate", "--data", str(tmp_path / "in.jsonl"), "--forward-model", tiny_marian[0],
            "--backward-model", tiny_marian[1], "--pivot", "xx", "--num-paraphrases", "2", "--shard-size", "4",
            "--batch-size", "4", "--max-new-tokens", "8", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0

    # `accelerate launch --cpu --num_processes 2` starts ONE process unless mpirun is set up
    # (--mpirun_hostfile); torchrun-style workers with ACCELERATE_USE_CPU=1 give MULTI_CPU (gloo)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(REPO / "scripts" / "augment.py"), *args,
           "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "process 0/2: 3 of its 3 shards" in proc.stderr and "process 1/2: 3 of its 3 shards" in proc.stderr
    one, two = read_out(tmp_path / "one"), read_out(tmp_path / "two")
    assert one == two and one["id"] == list(range(22))
    assert pq.read_table(tmp_path / "one" / "data.parquet").equals(pq.read_table(tmp_path / "two" / "data.parquet"))
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["num_processes"] == 2


# ---------------------------------------------------------------------------------------
# CLI input handling
# ---------------------------------------------------------------------------------------


def test_cli_headerless_csv_text_columns_and_clean(tmp_path):
    csv = tmp_path / "ag.csv"
    csv.write_text('"3","Merck  amp; Co. gains","Shares rose\\to  #36;49. Analysts  #39;cheered #39;."\n'
                   '"1","Rain","Rain &lt;b&gt;fell&lt;/b&gt;."\n"2","","Only a description."\n', encoding="utf-8")
    ds = prepare_text_column(load_data(str(csv), column_names=["label", "title", "description"]),
                             "text", ["title", "description"], clean=True)
    assert ds.column_names == ["label", "title", "description", "text"]
    assert ds["label"] == [3, 1, 2]
    assert ds["text"] == ["Merck & Co. gains Shares rose to $49. Analysts 'cheered'.", "Rain Rain fell.",
                          "Only a description."]

    rc = main(["back-translate", "--data", str(csv), "--column-names", "label,title,description",
               "--out", str(tmp_path / "o"), "--backend", "marian"])
    assert rc == 2  # no text column; the message names --text-column / --column-names
    with pytest.raises(BackTranslationError, match="--column-names"):
        prepare_text_column(load_data(str(csv)), "text", ["title"], clean=False)
    with pytest.raises(BackTranslationError, match="no such file"):
        load_data(str(tmp_path / "missing.csv"))


def test_cli_missing_text_column_message(tmp_path, capsys):
    make_dataset(3).to_json(tmp_path / "in.jsonl")
    rc = main(["back-translate", "--data", str(tmp_path / "in.jsonl"), "--text-column", "body",
               "--out", str(tmp_path / "o"), "--forward-model", "x", "--backward-model", "y"])
    assert rc == 2 and "'body' not in the data (columns: id, text)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Apertium
# ---------------------------------------------------------------------------------------


def test_missing_apertium_binary_names_install_command():
    with pytest.raises(ApertiumNotFoundError, match="apt-get install -y apertium apertium-eng-spa"):
        ApertiumBackend(binary="no-such-apertium-binary")


ENGLISH = ["the", "of", "and", "to", "in", "a", "is", "was", "for", "on", "that", "with"]
SPANISH = ["el", "la", "de", "que", "y", "en", "los", "las", "del", "por", "un", "una", "con"]


def _share(texts, words):
    tokens = [w.strip(".,!?\"'()").lower() for t in texts for w in t.split()]
    return sum(t in words for t in tokens) / max(1, len(tokens))


@needs_apertium
def test_apertium_end_to_end(tmp_path):
    ap = ApertiumBackend("spa")
    sents = [s for t in TEXTS for s in split_sentences(t)]
    mid = ap.translate(sents, "forward")
    assert len(mid) == len(sents) and all(mid)
    assert _share(mid, SPANISH) > 0.15 and _share(mid, ENGLISH) < 0.05  # really went through Spanish
    back = ap.translate(mid, "backward")
    assert len(back) == len(sents) and all(back)
    assert _share(back, ENGLISH) > 0.15 and _share(back, SPANISH) < 0.05  # English again
    assert sum(b != s for b, s in zip(back, sents)) >= len(sents) // 3  # real paraphrases

    ds = make_dataset(len(TEXTS))
    summary = back_translate(ds, tmp_path / "ap", [ap], num_paraphrases=2, shard_size=3)
    out = read_out(tmp_path / "ap")
    assert out["aug_0"] == out["aug_1"]  # deterministic backend: the K columns are identical
    assert out["aug_0"][3] == back[sents.index("Apple released a security update yesterday.")]
    assert out["aug_0"][1] == "" and out["aug_0"][4] == "   "
    assert summary["n_kept_original"] == 2 and "identical" in summary["note"]
    assert summary["n_sentences"] == len(sents)


def test_apertium_error_marks_are_dropped():
    assert bt._strip_markers("had realised sooner", "had darse# cuenta sooner") == "had darse cuenta sooner"
    assert bt._strip_markers("The #1 and @home", "The #1 and @house") == "The #1 and @house"
    assert bt._strip_markers("x", "#") is None


@needs_apertium
def test_apertium_line_count_fallback(monkeypatch):
    ap = ApertiumBackend("spa")
    lines = ["The cat sat on the mat.", "Oil prices fell.", "Hello world"]
    expected = ap.translate(lines)
    real_run = ApertiumBackend._run
    batch_calls = []

    def diverging(self, mode, chunk, exact=True):
        if len(chunk) > 1:
            batch_calls.append(len(chunk))
            return None  # as if apertium had merged or split lines
        return real_run(self, mode, chunk, exact)

    monkeypatch.setattr(ApertiumBackend, "_run", diverging)
    assert ap.translate(lines) == expected and batch_calls == [3]


def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(tiny_marian, tmp_path):
    """A real process killed with SIGKILL after some shards: the rerun keeps them and matches a clean run."""
    import signal
    import time

    make_dataset(40).to_json(tmp_path / "in.jsonl")
    args = ["back-translate", "--data", str(tmp_path / "in.jsonl"), "--forward-model", tiny_marian[0],
            "--backward-model", tiny_marian[1], "--pivot", "xx", "--num-paraphrases", "1", "--shard-size", "2",
            "--batch-size", "2", "--max-new-tokens", "8", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "clean")]) == 0

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "ssl_text.cli.augment", *args, "--out", str(tmp_path / "killed")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    shards = tmp_path / "killed" / "shards"
    deadline = time.time() + 120
    while not (shards.is_dir() and len(list(shards.glob("*.parquet"))) >= 3):
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.parquet")}
    assert 3 <= len(done) < 20
    assert main([*args, "--out", str(tmp_path / "killed")]) == 0
    assert read_out(tmp_path / "killed") == read_out(tmp_path / "clean")
    kept = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.parquet") if p.name in done}
    assert kept == done, "shards written before the kill were recomputed"
