"""The one sharded writer (back-translation, distillation targets): a shard is complete or absent, a resume
computes only what is missing, and a merge refuses gaps. On hand-made shards, no model involved."""

import os

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ssl_text.data.shards import MissingShardsError, Shards, save_dataset_atomic

KEY = b"test.shards"


def table(start: int, end: int) -> pa.Table:
    return pa.table({"row": list(range(start, end)), "value": [f"v{i}" for i in range(start, end)]})


def write_all(shards: Shards, only=None) -> None:
    for i in only if only is not None else range(len(shards)):
        shards.write(i, table(*shards.ranges[i]), {"seconds": 0.5})


def test_shards_are_position_keyed_and_resume_with_what_is_missing(tmp_path):
    shards = Shards(tmp_path, 10, 4, "fp-a", KEY)
    assert shards.ranges == [(0, 4), (4, 8), (8, 10)]
    assert [f.name for f in shards.files] == ["shard_00000-00003.parquet", "shard_00004-00007.parquet", "shard_00008-00009.parquet"]
    assert shards.todo() == [0, 1, 2] and shards.todo(rank=1, world_size=2) == [1]
    stats = shards.write(0, table(0, 4), {"seconds": 0.5})
    assert stats == {"seconds": 0.5, "fingerprint": "fp-a", "start": 0, "end": 4} == shards.stats(0)
    written = shards.files[0].stat().st_mtime_ns
    assert shards.todo() == [1, 2] and shards.todo(rank=0, world_size=2) == [2]
    with pytest.raises(MissingShardsError, match="2 of 3 shards"):
        shards.merged()
    again = Shards(tmp_path, 10, 4, "fp-a", KEY)  # a resumed run: shard 0 is kept, not rewritten
    write_all(again, again.todo())
    assert again.files[0].stat().st_mtime_ns == written and again.todo() == []
    merged = again.merged()
    assert merged.column("row").to_pylist() == list(range(10)) and merged.schema.metadata is None


def test_a_write_killed_midway_leaves_no_shard_only_a_partial_file_that_is_cleared(tmp_path, monkeypatch):
    shards = Shards(tmp_path, 10, 4, "fp-a", KEY)
    real = pq.write_table

    def killed(tbl, where, **kwargs):
        real(tbl, where, **kwargs)
        with open(where, "r+b") as f:  # the process dies with half the file on disk
            f.truncate(os.path.getsize(where) // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", killed)
    with pytest.raises(KeyboardInterrupt):
        shards.write(1, table(4, 8))
    monkeypatch.setattr(pq, "write_table", real)
    assert not shards.files[1].exists() and shards.stats(1) is None and shards.todo() == [0, 1, 2]
    partial = list(tmp_path.glob(".shard_*.tmp*"))
    assert len(partial) == 1
    shards.remove_partial_writes()
    assert not partial[0].exists() and shards.todo() == [0, 1, 2]


def test_broken_foreign_or_misfit_shard_files_are_not_done(tmp_path):
    shards = Shards(tmp_path, 10, 4, "fp-a", KEY)
    shards.files[0].write_bytes(b"PAR1 not really parquet")  # e.g. copied in half
    Shards(tmp_path, 10, 4, "fp-b", KEY).write(1, table(4, 8))  # another configuration's shard
    misfit = table(8, 9).replace_schema_metadata({KEY: b'{"fingerprint": "fp-a"}'})
    pq.write_table(misfit, shards.files[2])  # right name and fingerprint, one row short
    assert shards.scan() == [None, None, None] and shards.todo() == [0, 1, 2]
    assert Shards(tmp_path, 10, 4, "fp-a", b"another.writer").stats(1) is None
    with pytest.raises(ValueError, match="rows \\[8, 10\\), 2 of them; got a table of 1"):
        shards.write(2, table(8, 9))
    write_all(shards)
    assert shards.merged().column("value").to_pylist() == [f"v{i}" for i in range(10)]


def test_a_dataset_folder_is_replaced_all_or_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "pool"
    save_dataset_atomic(datasets.Dataset.from_dict({"x": [1, 2]}), folder, {"stats.json": "{}"})
    assert datasets.load_from_disk(str(folder))["x"] == [1, 2] and (folder / "stats.json").read_text() == "{}"

    def killed(self, path, **kwargs):
        os.makedirs(path, exist_ok=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", killed)
    with pytest.raises(KeyboardInterrupt):
        save_dataset_atomic(datasets.Dataset.from_dict({"x": [3]}), folder, {"stats.json": "{}"})
    monkeypatch.undo()
    assert datasets.load_from_disk(str(folder))["x"] == [1, 2]  # the earlier folder is intact
    save_dataset_atomic(datasets.Dataset.from_dict({"x": [3]}), folder)
    assert datasets.load_from_disk(str(folder))["x"] == [3] and not (folder / "stats.json").exists()
