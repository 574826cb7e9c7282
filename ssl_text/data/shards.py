"""The one sharded, resumable, atomic writer: back-translation's paraphrases and the distillation teacher's
targets are computed in shards of rows, so that a stopped run continues with the shards it has.

Rows [0, num_rows) are cut into position-keyed shards of `shard_size` rows; shard i is the Parquet file
`shard_{start}-{end - 1}.parquet` (inclusive row range, zero-padded) in `folder`. Each is written to a
temporary name and renamed into place, so a shard file is either complete or absent; its schema metadata
carries the fingerprint of the computation (everything that changes its output) and the shard's own
statistics. A shard counts as done only when its file reads back with this fingerprint and the right
number of rows; anything else (missing, cut short by a kill, of another configuration) is computed
again, and nothing done is recomputed. Under `accelerate launch` shard i goes to process
i % world_size, and the main process merges them in row order, so the result does not depend on the
number of processes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FINGERPRINT = "fingerprint"
PARTIAL_WRITES = ".*.tmp*"  # temporary files of writes a kill interrupted


class MissingShardsError(RuntimeError):
    """The merge found shards that no process has written."""


def shard_ranges(num_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, end) of every shard, in row order."""
    if shard_size < 1:
        raise ValueError(f"shard_size is {shard_size}; expected a positive integer.")
    return [(start, min(num_rows, start + shard_size)) for start in range(0, num_rows, shard_size)]


class Shards:
    """The shards of one computation over `num_rows` rows in `folder` (see the module docstring).

    `meta_key` names the schema-metadata entry that holds a shard's statistics (each writer keeps its own,
    so that a folder of one never passes for the other)."""

    def __init__(self, folder: str | os.PathLike, num_rows: int, shard_size: int, fingerprint: str, meta_key: bytes):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.meta_key = meta_key
        self.ranges = shard_ranges(num_rows, shard_size)
        width = max(5, len(str(max(num_rows - 1, 0))))
        self.files = [self.folder / f"shard_{s:0{width}d}-{e - 1:0{width}d}.parquet" for s, e in self.ranges]

    def __len__(self) -> int:
        return len(self.ranges)

    def stats(self, i: int) -> dict | None:
        """The statistics written with shard i, or None when it is not done (absent, unreadable, foreign)."""
        path, (start, end) = self.files[i], self.ranges[i]
        try:
            stats = json.loads(pq.read_schema(path).metadata[self.meta_key])
            rows = pq.read_metadata(path).num_rows
        except (FileNotFoundError, OSError, KeyError, TypeError, ValueError, pa.ArrowException):
            return None
        if stats.get(FINGERPRINT) != self.fingerprint or rows != end - start:
            return None
        return stats

    def scan(self) -> list[dict | None]:
        """`stats(i)` of every shard, in row order."""
        return [self.stats(i) for i in range(len(self))]

    def todo(self, rank: int = 0, world_size: int = 1) -> list[int]:
        """The shards of process `rank` (i % world_size == rank) that are not done."""
        return [i for i in range(rank, len(self), world_size) if self.stats(i) is None]

    def write(self, i: int, table: pa.Table, stats: dict | None = None) -> dict:
        """Write shard i (its `end - start` rows) atomically; `stats` (JSON) are stored with it. Returns them,
        with the fingerprint and the row range added."""
        start, end = self.ranges[i]
        if table.num_rows != end - start:
            raise ValueError(f"shard {i} holds rows [{start}, {end}), {end - start} of them; got a table of {table.num_rows}.")
        stats = {**(stats or {}), FINGERPRINT: self.fingerprint, "start": start, "end": end}
        table = table.replace_schema_metadata({self.meta_key: json.dumps(stats).encode()})
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.files[i]
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        return stats

    def remove_partial_writes(self) -> None:
        """Delete the temporary files of writes that a kill interrupted (the main process, before any write)."""
        if self.folder.is_dir():
            for stale in self.folder.glob(PARTIAL_WRITES):
                stale.unlink(missing_ok=True)

    def merged(self) -> pa.Table:
        """Every shard's rows, in row order, without their metadata; refuses when a shard is not done."""
        missing = [str(f) for i, f in enumerate(self.files) if self.stats(i) is None]
        if missing:
            raise MissingShardsError(f"{len(missing)} of {len(self)} shards are missing or incomplete, e.g. {missing[0]}")
        return pa.concat_tables([pq.read_table(f).replace_schema_metadata(None) for f in self.files])


def save_dataset_atomic(dataset, folder: str | os.PathLike, files: dict[str, str] | None = None) -> None:
    """`dataset.save_to_disk(folder)` plus the text `files` (name -> content) beside it, all or nothing: written
    to a temporary sibling and renamed into place, replacing an earlier `folder`."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dataset.save_to_disk(str(tmp))
    for name, text in (files or {}).items():
        (tmp / name).write_text(text)
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, folder)
