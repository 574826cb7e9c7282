"""An unlabeled corpus read as a stream (`data.unlabeled.streaming: true`), never whole.

`stream_unlabeled` turns `data.unlabeled` into a `datasets.IterableDataset` with the columns
of the in-memory path (`text`, `index`, and `analysis_label`, `pseudo_target`, `aug_*` where
the corpus has them), computed row by row as the corpus is read:

- the text columns are joined and cleaned with the per-row logic of `add_text_column`;
- raw labels become analysis label ids;
- `index` is the row's position in the stream. The `rest_as_unlabeled` pool (in memory
  anyway) leads the stream, then the corpus in file order. The stream keeps that order
  (`skip(0)`: `datasets` never reorders the files of a stream that skips or takes rows), so
  a row has the same index in every epoch and on every process.

Checks that would read the whole corpus run on its first `PREFIX_ROWS` rows: the columns
exist, no text is empty, analysis labels are in the label set, and not every text is a
labeled one; the evaluation splits are checked against those texts and the pool's. Past the
prefix, rows with an empty text are skipped.
"""

from __future__ import annotations

import datasets

from ssl_text.config import DataConfig
from ssl_text.config.keys import ANALYSIS_LABEL, INDEX, PSEUDO_TARGET
from ssl_text.data.loading import (
    DataError,
    add_label_ids,
    add_text_column,
    check_unlabeled_is_new,
    join_text_columns,
    label_name_of,
    load_spec,
)

PREFIX_ROWS = 1000  # rows of a streamed corpus read up front for the checks
WHERE = "data.unlabeled"


def stream_unlabeled(
    cfg: DataConfig, label_names: list[str], labeled_texts: list[str], pool: datasets.Dataset | None
) -> tuple[datasets.IterableDataset, list[str]]:
    """The unlabeled rows of `cfg` (the `rest_as_unlabeled` `pool` first, if any) as a lazy stream, and the
    texts read up front (the pool's and the checked prefix's), which no evaluation text may repeat."""
    spec = cfg.unlabeled
    raw = load_spec(spec, WHERE)
    prefix, prefix_texts = checked_prefix(raw, cfg, label_names, labeled_texts)
    with_labels = bool(spec.label_column) and spec.label_column in prefix.column_names
    carried = [c for c in prefix.column_names if c == PSEUDO_TARGET or c.startswith("aug_")]
    features = datasets.Features({"text": datasets.Value("string")})
    if with_labels:
        features[ANALYSIS_LABEL] = datasets.Value("int64")
    for column in carried:
        features[column] = prefix.features[column] if column == PSEUDO_TARGET else datasets.Value("string")

    label2id = {name: i for i, name in enumerate(label_names)}

    def rows(batch: dict) -> dict:
        texts = join_text_columns(batch, spec)
        keep = [i for i, text in enumerate(texts) if text]  # the prefix had none; later empty texts are skipped
        out = {"text": [texts[i] for i in keep]}
        if with_labels:
            out[ANALYSIS_LABEL] = [analysis_label_id(batch[spec.label_column][i], label2id, cfg) for i in keep]
        for column in carried:
            out[column] = [batch[column][i] for i in keep]
        return out

    stream = raw.map(rows, batched=True, remove_columns=prefix.column_names, features=features)
    if pool is not None:
        stream = datasets.concatenate_datasets([pool_like(pool, features), stream])
    indexed = stream.map(
        lambda batch, positions: {INDEX: positions},
        batched=True,
        with_indices=True,
        features=datasets.Features({**features, INDEX: datasets.Value("int64")}),
    )
    read = (list(pool["text"]) if pool is not None else []) + list(prefix_texts)
    return indexed.skip(0), read  # skip(0) fixes the order of the sources, hence each row's index (module docstring)


def checked_prefix(
    raw, cfg: DataConfig, label_names: list[str], labeled_texts: list[str]
) -> tuple[datasets.Dataset, list[str]]:
    """The first `PREFIX_ROWS` raw rows, in memory, after the checks the in-memory path runs on every row; and their texts."""
    spec = cfg.unlabeled
    prefix = datasets.Dataset.from_list(list(raw.take(PREFIX_ROWS)))
    if len(prefix) == 0:
        raise DataError(f"{WHERE}: {spec.path!r} has no rows; point `data.unlabeled` at a corpus with text.")
    where = f"{WHERE} (its first {len(prefix)} rows)"
    texts = add_text_column(prefix, spec, where)
    if spec.label_column and spec.label_column in prefix.column_names:
        add_label_ids(texts, spec, cfg, label_names, where, ANALYSIS_LABEL)
    check_unlabeled_is_new(texts["text"], labeled_texts, spec, f"each of the first {len(prefix)} texts")
    return prefix, texts["text"]


def analysis_label_id(value, label2id: dict[str, int], cfg: DataConfig) -> int:
    name = label_name_of(value, cfg)
    if name not in label2id:
        raise DataError(
            f"{WHERE}: a row after the first {PREFIX_ROWS} of {cfg.unlabeled.path!r} has label {value!r}, which is "
            f"not in the label set {list(label2id)}; fix the row, drop `label_column` from `data.unlabeled`, or "
            "list every class in `data.label_names` / `data.label_map`."
        )
    return label2id[name]


def pool_like(pool: datasets.Dataset, features: datasets.Features) -> datasets.IterableDataset:
    """The in-memory `rest_as_unlabeled` rows with the stream's columns, to lead the stream."""
    if PSEUDO_TARGET in features:
        raise DataError(
            f"{WHERE} has `{PSEUDO_TARGET}` (a teacher's targets) but the rows `data.sampling.rest_as_unlabeled` adds "
            "have none; set `data.sampling.rest_as_unlabeled: false`."
        )
    pool = pool.select_columns([c for c in features if c in pool.column_names])  # no analysis labels if the corpus has none
    for column in features:
        if column not in pool.column_names:  # aug_* texts: none for the pool's rows
            pool = pool.add_column(column, [None] * len(pool))
    return pool.cast(features).to_iterable_dataset()
