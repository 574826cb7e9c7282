"""A run's data, assembled: every slot of `data` loaded and checked, labels mapped to ids, the
labeled set drawn by the benchmark protocol and the rest joined to the unlabeled pool (read whole,
or as a stream).

The labeled rows a run drew are recorded in RUN_DIR/labeled_rows.jsonl, one JSON object per row:
`{"index": 17, "sha256": "...", "label": "sports"}`: the row's 0-based position among the labeled
spec's rows as ssl-text reads them (after `exclude_labels` and `limit`), the SHA-256 of its text
(`text_hash`: the `text` column after `text_columns` are joined and cleaned; NER: the words joined
by spaces) and its label (a class name; NER: the tag of each word). `data.sampling.rows_from` takes
exactly those rows again, and `load_labeled_rows` reads them for peers or an active-learning round.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets

from ssl_text.config import DataConfig, DatasetSpec, SamplingConfig
from ssl_text.config.keys import ANALYSIS_LABEL, INDEX, LABELED_ROWS_FILE, PSEUDO_TARGET
from ssl_text.data.loading import (
    DataError,
    add_label_ids,
    add_text_column,
    check_no_overlap,
    check_unlabeled_is_new,
    draw_labeled,
    load_spec,
    raw_label_values,
    resolve_label_names,
)
from ssl_text.data.streamed import stream_unlabeled


@dataclass(frozen=True)
class LabeledRow:
    """One labeled row a run trained on: where it sits in the labeled spec, what its text hashes to, its label."""

    index: int  # 0-based position among the labeled spec's rows as read (after exclude_labels and limit)
    sha256: str  # text_hash of the row's text
    label: str | list[str] | None = None  # class name (NER: a tag per word); None: not recorded, not checked


@dataclass
class TextData:
    """Everything a text run trains and evaluates on, labels already mapped to ids."""

    labeled: datasets.Dataset
    unlabeled: datasets.Dataset | datasets.IterableDataset | None  # iterable: `data.unlabeled.streaming`
    validation: datasets.Dataset | None
    test: datasets.Dataset | None
    label_names: list[str]
    labeled_rows: list[LabeledRow] | None = None  # the rows of `labeled`, in order, as labeled_rows.jsonl records them


def text_hash(text: str) -> str:
    """The SHA-256 (hex) of a text's UTF-8 bytes: the content check of labeled_rows.jsonl."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def labeled_rows_jsonl(rows: list[LabeledRow]) -> str:
    """The contents of labeled_rows.jsonl: one JSON object per row."""
    return "".join(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in rows)


def labeled_rows_path(path: str | Path) -> Path:
    """The labeled_rows.jsonl of a run directory, or `path` itself when it is a file."""
    path = Path(path)
    if path.is_dir():
        path = path / LABELED_ROWS_FILE
        if not path.is_file():
            raise DataError(
                f"data.sampling.rows_from: there is no {LABELED_ROWS_FILE} in {path.parent}; point it at the output_dir "
                "of a finished run (ssl-text writes one into every run) or at such a file."
            )
    elif not path.is_file():
        raise DataError(f"data.sampling.rows_from: {str(path)!r} does not exist; give a run directory or a {LABELED_ROWS_FILE}.")
    return path


def load_labeled_rows(path: str | Path) -> list[LabeledRow]:
    """The labeled rows recorded in a run directory (or a labeled_rows.jsonl file), in file order.

    Each row needs `index` (a non-negative integer, listed once) and `sha256` (`text_hash` of its text); `label` is
    optional (a hand-made file for an active-learning round may leave it to the data)."""
    path = labeled_rows_path(path)
    rows, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"data.sampling.rows_from: {path} line {number} is not JSON ({err}).") from None
        index, digest = (record.get("index"), record.get("sha256")) if isinstance(record, dict) else (None, None)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0 or not isinstance(digest, str):
            raise DataError(
                f"data.sampling.rows_from: {path} line {number} is {line.strip()[:120]!r}; expected an object with "
                '"index" (a row position, from 0) and "sha256" (the hash of its text), e.g. '
                '{"index": 17, "sha256": "9f86...", "label": "sports"}.'
            )
        if index in seen:
            raise DataError(f"data.sampling.rows_from: {path} lists row {index} twice (again on line {number}); list each row once.")
        seen.add(index)
        rows.append(LabeledRow(index, digest, record.get("label")))
    if not rows:
        raise DataError(f"data.sampling.rows_from: {path} has no rows; a run with labels needs at least one labeled row.")
    return rows


def _check_recorded(recorded: list[LabeledRow], found: list[LabeledRow], num_rows: int, path: Path) -> None:
    """Refuse labeled data that no longer holds the recorded rows: same positions, same text, same label."""
    fix = (
        "The labeled data changed since these rows were drawn: point `data.labeled` at the data (and the same "
        "`text_columns`, `clean_text`, `exclude_labels`, `limit`) the rows were drawn from, or draw anew with "
        "`data.sampling.num_per_class`."
    )
    beyond = [r.index for r in recorded if r.index >= num_rows]
    if beyond:
        raise DataError(
            f"data.sampling.rows_from: {path} lists row {max(beyond)}, but the labeled data has only {num_rows} rows "
            f"({len(beyond)} listed rows are beyond it). {fix}"
        )
    now = {r.index: r for r in found}
    texts = [r.index for r in recorded if now[r.index].sha256 != r.sha256]
    if texts:
        raise DataError(
            f"data.sampling.rows_from: the text differs from the one recorded in {path} at {len(texts)} of "
            f"{len(recorded)} rows (row indices from 0: {texts[:5]}). {fix}"
        )
    labels = [r.index for r in recorded if r.label is not None and now[r.index].label != r.label]
    if labels:
        first = labels[0]
        raise DataError(
            f"data.sampling.rows_from: the label differs from the one recorded in {path} at {len(labels)} rows (row "
            f"{first}: {now[first].label!r} now, {next(r.label for r in recorded if r.index == first)!r} recorded). {fix}"
        )


def split_labeled_rows(
    labeled: datasets.Dataset,
    sampling: SamplingConfig,
    texts_of: Callable[[datasets.Dataset], list[str]],
    labels_of: Callable[[datasets.Dataset], list],
) -> tuple[datasets.Dataset, datasets.Dataset | None, list[LabeledRow]]:
    """The benchmark protocol on a labeled set, recorded: (the drawn rows, the rest as an unlabeled pool whose labels
    are kept aside as `analysis_label` or None, and a `LabeledRow` per drawn row). `data.sampling.rows_from` takes
    the recorded rows of another run, checked by text hash and label; `texts_of`/`labels_of` give the text and the
    label (as a name) of each row of a dataset."""
    if sampling.rows_from is not None:
        path = labeled_rows_path(sampling.rows_from)
        recorded = load_labeled_rows(path)
        chosen = sorted(r.index for r in recorded)
        if chosen[-1] >= len(labeled):
            _check_recorded(recorded, [], len(labeled), path)
        chosen_set = set(chosen)
        drawn = chosen, [i for i in range(len(labeled)) if i not in chosen_set]
    else:
        drawn = draw_labeled(labeled, sampling)
    if drawn is None:
        chosen, selected, pool = list(range(len(labeled))), labeled, None
    else:
        chosen, rest = drawn
        selected = labeled.select(chosen)
        pool = labeled.select(rest).rename_column("label", ANALYSIS_LABEL) if sampling.rest_as_unlabeled else None
    rows = [
        LabeledRow(index, text_hash(text), label)
        for index, text, label in zip(chosen, texts_of(selected), labels_of(selected), strict=True)
    ]
    if sampling.rows_from is not None:
        _check_recorded(recorded, rows, len(labeled), path)
    return selected, pool, rows



def check_streamed_slots(cfg: DataConfig) -> None:
    """Only `data.unlabeled` may be streamed: the other slots are sampled, checked and evaluated whole."""
    for slot in ("labeled", "validation", "test"):
        spec = getattr(cfg, slot)
        if spec is not None and spec.streaming:
            raise DataError(
                f"`data.{slot}.streaming` is true, but only `data.unlabeled` can be streamed: the {slot} data is "
                "read whole (sampled, checked, evaluated). Set `streaming: false` there."
            )


def load_text_data(cfg: DataConfig) -> TextData:
    """Load and check every slot of `cfg`, mapping labels to ids and applying the protocol."""
    check_streamed_slots(cfg)
    raw_lb = load_spec(cfg.labeled, "data.labeled")
    raw_lb = add_text_column(raw_lb, cfg.labeled, "data.labeled")
    label_names = resolve_label_names(cfg, raw_label_values(raw_lb, cfg.labeled, "data.labeled"), cfg.labeled, "data.labeled")
    labeled = add_label_ids(raw_lb, cfg.labeled, cfg, label_names, "data.labeled")

    labeled, pool, labeled_rows = split_labeled_rows(
        labeled, cfg.sampling, lambda ds: ds["text"], lambda ds: [label_names[i] for i in ds["label"]]
    )

    unlabeled, unlabeled_checked = None, "the unlabeled data"  # the evaluation splits must not be in it either
    if cfg.unlabeled is not None and cfg.unlabeled.streaming:  # read lazily, never whole; the pool leads the stream
        (unlabeled, unlabeled_texts), pool = stream_unlabeled(cfg, label_names, labeled["text"], pool), None
        unlabeled_checked += f" (of a stream, the {len(unlabeled_texts)} rows read up front are checked)"
    elif cfg.unlabeled is not None:
        unlabeled = add_text_column(load_spec(cfg.unlabeled, "data.unlabeled"), cfg.unlabeled, "data.unlabeled")
        lb_col = cfg.unlabeled.label_column
        if lb_col and lb_col in unlabeled.column_names:
            unlabeled = add_label_ids(unlabeled, cfg.unlabeled, cfg, label_names, "data.unlabeled", ANALYSIS_LABEL)
    if pool is not None:
        unlabeled = pool if unlabeled is None else datasets.concatenate_datasets([pool, unlabeled])
    in_memory = isinstance(unlabeled, datasets.Dataset)
    if in_memory:
        unlabeled_texts = unlabeled["text"]
    elif unlabeled is None:
        unlabeled_texts = []
    if in_memory and cfg.unlabeled is not None:
        check_unlabeled_is_new(unlabeled["text"], labeled["text"], cfg.unlabeled, "every text")
    if in_memory:
        keep = [c for c in unlabeled.column_names if c in ("text", ANALYSIS_LABEL, PSEUDO_TARGET) or c.startswith("aug_")]
        unlabeled = unlabeled.select_columns(keep)
        if INDEX in unlabeled.column_names:
            unlabeled = unlabeled.remove_columns(INDEX)
        unlabeled = unlabeled.add_column(INDEX, list(range(len(unlabeled))))

    def eval_split(spec: DatasetSpec | None, where: str):
        if spec is None:
            return None
        ds = add_text_column(load_spec(spec, where), spec, where)
        ds = add_label_ids(ds, spec, cfg, label_names, where)
        check_no_overlap(labeled["text"], ds["text"], where)
        check_no_overlap(unlabeled_texts, ds["text"], where, unlabeled_checked)
        return ds.select_columns(["text", "label"])

    validation = eval_split(cfg.validation, "data.validation")
    test = eval_split(cfg.test, "data.test")
    labeled = labeled.select_columns(["text", "label"])
    return TextData(labeled, unlabeled, validation, test, label_names, labeled_rows)
