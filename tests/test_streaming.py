"""Streaming an unlabeled corpus (`data.unlabeled.streaming: true`): exact resume of the batch
stream, disjoint ranks, bounded reading, the lazy data layer, and training runs that stream."""

from pathlib import Path

import datasets
import pytest
import torch

from ssl_text.config import ConfigError, DataConfig, DatasetSpec, SamplingConfig
from ssl_text.data.loading import DataError
from ssl_text.data.text_data import load_text_data
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config
from ssl_text.training.streaming import StreamingBatchStream
from tests.stopped_run import checkpoint_weights, stopped_copy
from tests.toy_data import make_texts, write_csv


class Recorder:
    """Tokenizes (one fake id per row) and collates, counting the rows it tokenized."""

    def __init__(self):
        self.tokenized = 0

    def tokenize(self, rows: dict) -> dict:
        self.tokenized += len(rows["text"])
        rows["input_ids"] = [[len(text)] for text in rows["text"]]
        return rows

    def collate(self, rows: dict, generator: torch.Generator) -> dict:
        return {"index": rows["index"], "input_ids": rows["input_ids"], "noise": torch.rand(3, generator=generator)}


def numbered_rows(n: int, num_shards: int = 3) -> datasets.IterableDataset:
    rows = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(n)], "index": list(range(n))})
    return rows.to_iterable_dataset(num_shards=num_shards)


def stream(dataset, recorder: Recorder, **kwargs) -> StreamingBatchStream:
    kwargs = {"batch_size": 4, "seed": 3, "salt": 2, "buffer_size": 8, **kwargs}
    return StreamingBatchStream(dataset, collate=recorder.collate, tokenize=recorder.tokenize, **kwargs)


def same_batches(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x["index"] == y["index"] and x["input_ids"] == y["input_ids"] and torch.equal(x["noise"], y["noise"])
        for x, y in zip(a, b)
    )


def test_a_resumed_stream_draws_the_batches_of_an_uninterrupted_one_without_tokenizing_the_skipped_rows():
    full = stream(numbered_rows(30), Recorder())
    batches = [next(full) for _ in range(20)]  # 80 rows: the 30 rows, three epochs
    order = [i for batch in batches for i in batch["index"]]
    assert sorted(order[:30]) == list(range(30)) and sorted(order[30:60]) == list(range(30))
    assert order[:30] != order[30:60] and order[:30] != list(range(30)), "epochs are not reshuffled"

    recorder = Recorder()
    resumed = stream(numbered_rows(30), recorder)
    resumed.load_state_dict(full.state_dict() | {"batches_drawn": 7})
    assert same_batches([next(resumed) for _ in range(13)], batches[7:])
    assert recorder.tokenized == 13 * 4, "skipped rows were tokenized"
    assert resumed.state_dict() == full.state_dict() == {"batches_drawn": 20}

    full.load_state_dict({"batches_drawn": 2})  # a stream already in use rewinds too
    assert same_batches([next(full), next(full)], batches[2:4])


def test_two_ranks_draw_disjoint_rows_that_cover_the_data():
    seen = []
    for rank in (0, 1):
        ranked = stream(numbered_rows(40), Recorder(), rank=rank, world_size=2, batch_size=5)
        seen.append([i for _ in range(4) for i in next(ranked)["index"]])  # 20 rows: one epoch of this rank
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(40))


def test_the_stream_reads_the_buffer_and_the_batches_not_the_corpus():
    read = []

    def corpus():
        for i in range(100_000):
            read.append(i)
            yield {"text": f"row {i}", "index": i}

    batches = stream(datasets.IterableDataset.from_generator(corpus), Recorder(), buffer_size=50)
    for _ in range(3):
        next(batches)
    assert 50 <= len(read) < 2_000, f"{len(read)} of 100,000 rows read for 3 batches of 4 (buffer of 50)"


def unlabeled_csv(path: Path, rows: list[tuple]) -> str:
    with open(path, "w") as f:
        f.write("label,title,body,aug_0\n")
        f.writelines(",".join(row) + "\n" for row in rows)
    return str(path)


def test_streamed_unlabeled_rows_are_joined_lazily_after_the_pool_with_their_position_as_index(toy_files, tmp_path):
    path = unlabeled_csv(tmp_path / "corpus.csv", [
        ("sports", "Goal", "team &amp; coach", "a goal"),
        ("business", "Stock", "bank #39;s profit", ""),
        ("science", "Space", "robot", "the robot"),
    ])
    cfg = DataConfig(
        labeled=DatasetSpec(path=toy_files["train"]),
        unlabeled=DatasetSpec(path=path, text_columns=["title", "body"], clean_text=True, streaming=True),
        sampling=SamplingConfig(num_per_class=4, rest_as_unlabeled=True),
    )
    data = load_text_data(cfg)
    assert isinstance(data.unlabeled, datasets.IterableDataset)
    assert data.unlabeled.column_names == ["text", "analysis_label", "aug_0", "index"]
    rows = list(data.unlabeled)
    assert [r["index"] for r in rows] == list(range(200 - 16 + 3))
    pool, corpus = rows[:-3], rows[-3:]
    assert all(r["aug_0"] is None for r in pool)
    names = data.label_names
    assert [(r["text"], names[r["analysis_label"]], r["aug_0"]) for r in corpus] == [
        ("Goal team & coach", "sports", "a goal"),
        ("Stock bank's profit", "business", None),
        ("Space robot", "science", "the robot"),
    ]
    assert list(data.unlabeled) == rows, "a second pass differs"


def test_streaming_checks_a_prefix_and_only_streams_the_unlabeled_slot(toy_files, tmp_path, monkeypatch):
    import ssl_text.data.streamed as streamed_unlabeled

    labeled = DatasetSpec(path=toy_files["train"])
    bad = unlabeled_csv(tmp_path / "bad.csv", [("sports", "Goal", "team", "")] * 3 + [("sports", "", "", "")])
    with pytest.raises(DataError, match=r"first 4 rows\): 1 empty or null texts"):
        load_text_data(DataConfig(labeled=labeled, unlabeled=DatasetSpec(path=bad, text_columns=["title", "body"], streaming=True)))
    monkeypatch.setattr(streamed_unlabeled, "PREFIX_ROWS", 3)  # past the prefix, an empty text is skipped
    data = load_text_data(DataConfig(labeled=labeled, unlabeled=DatasetSpec(path=bad, text_columns=["title", "body"], streaming=True)))
    assert [r["index"] for r in data.unlabeled] == [0, 1, 2]

    with pytest.raises(DataError, match="each of the first 3 texts .* is also in the labeled data"):
        load_text_data(DataConfig(labeled=labeled, unlabeled=DatasetSpec(path=toy_files["train"], streaming=True)))
    with pytest.raises(DataError, match="`data.validation.streaming` is true, but only `data.unlabeled`"):
        load_text_data(DataConfig(labeled=labeled, validation=DatasetSpec(path=toy_files["validation"], streaming=True)))


def streaming_config(toy_config, tmp_path, algorithm="fixmatch", **args) -> dict:
    raw = toy_config(algorithm, **args)
    corpus = write_csv(tmp_path / "corpus.csv", make_texts(60, seed=5))
    raw["data"]["unlabeled"] = {"path": str(corpus), "streaming": True, "shuffle_buffer": 16}
    return raw


def test_an_algorithm_with_per_example_state_refuses_a_streamed_pool(toy_config, tmp_path):
    raw = streaming_config(toy_config, tmp_path, "temporal_ensembling")
    with pytest.raises(ConfigError, match=r"`temporal_ensembling` keeps state for every unlabeled example.*'pi_model'"):
        train(parse_config(raw))
    assert not Path(raw["output_dir"]).exists()


def test_a_streaming_run_trains_and_resumes_exactly(toy_config, tmp_path):
    raw = streaming_config(toy_config, tmp_path, tau=0.01)  # every pseudo-label counts: the stream shapes the weights
    raw["trainer"].update(max_steps=6, eval_every=3, save_every=3, keep_checkpoints=3)
    full = train(parse_config(raw))
    full_dir = Path(raw["output_dir"])
    logs = full["last_train_logs"]
    assert full["num_unlabeled"] == "streamed" and logs["mask_rate"] == 1.0 and "pseudo_label_accuracy" in logs

    stopped = stopped_copy(full_dir, tmp_path / "stopped", step=3)
    raw["output_dir"] = str(stopped)
    resumed = train(parse_config(raw), resume=True)

    a, b = checkpoint_weights(full_dir, 6), checkpoint_weights(stopped, 6)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    step_3 = checkpoint_weights(full_dir, 3)
    assert not all(torch.equal(a[k], step_3[k]) for k in a), "steps 4 to 6 changed nothing"
    assert resumed["last_train_logs"]["loss"] == full["last_train_logs"]["loss"]
