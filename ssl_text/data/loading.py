"""Loading labeled, unlabeled and evaluation text from the Hub or local files.

The data layer knows nothing of algorithms: it turns `DatasetSpec`s into `datasets.Dataset`s
with a `text` column (and `label` ids where labels exist), checks them, and draws the
benchmark protocol's labeled rows (N per class, N at random, a share per class; see `draw_labeled`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import hashlib
import html
import os
import re
import typing
from pathlib import Path
from typing import Callable, Iterator

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ssl_text.config import DataConfig, DatasetSpec
from ssl_text.config.schema import DataFormat
from ssl_text.data.fasta import FASTA_EXTENSIONS, FastaError, is_fasta_path, load_fasta, record_lines

# How each `format` is read by `datasets`, and the format a file suffix stands for when a spec sets none.
_BUILDERS = {"csv": "csv", "tsv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "text": "text", "arrow": "arrow"}
SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet", ".txt": "text", ".arrow": "arrow"
}  # fmt: skip
# CoNLL files (`word ... tag` lines) as `task: ner` reads them; other tasks read `.txt` one row per line.
CONLL_SUFFIXES = (".txt", ".conll", ".iob", ".iob2", ".bio")
DATA_FORMATS = typing.get_args(DataFormat)
SAVE_TO_DISK_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")  # one of them marks a save_to_disk folder


# Streamed text/JSON files are read in chunks of this many bytes: with datasets' default, 10 MB, a pass
# over a 1,000,000-line file peaked ~200 MB above one over a 10,000-line file; with 1 MB, ~30 MB.
STREAM_CHUNK_BYTES = 1 << 20


SHOWN_ROWS = 5  # rows an error message points at
_INTEGER = re.compile(r"[+-]?\d+")


class DataError(ValueError):
    """The data does not match its spec; the message says what was found and what to do."""


def known_suffixes() -> str:
    """Every file suffix whose format ssl-text infers, for error messages."""
    fasta = ", ".join(FASTA_EXTENSIONS)
    return f"{', '.join(SUFFIX_FORMATS)}; FASTA {fasta} (also .gz); CoNLL {', '.join(CONLL_SUFFIXES)} (task: ner)"


def _format_of_file(path: str) -> str | None:
    return "fasta" if is_fasta_path(path) else SUFFIX_FORMATS.get(Path(path).suffix.lower())


def _looks_local(spec: DatasetSpec) -> bool:
    """Whether a `path` that is no file must have meant one (and is then missing) rather than a Hub id."""
    suffix = Path(spec.path).suffix.lower()
    return (
        spec.format not in (None, "hub")
        or suffix in SUFFIX_FORMATS or suffix in CONLL_SUFFIXES or is_fasta_path(spec.path)
        or spec.path.startswith((".", "/", "~"))
    )  # fmt: skip


def _is_saved_dataset(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.exists(os.path.join(path, name)) for name in SAVE_TO_DISK_FILES)


def _directory_error(path: str) -> DataError:
    entries = sorted(os.listdir(path))
    held = f" (it holds {entries[:5]}{' ...' if len(entries) > 5 else ''})" if entries else " (it is empty)"
    return DataError(
        f"{path!r} is a directory, not a data file{held}. A folder is read only when `Dataset.save_to_disk` wrote it, "
        f"and this one lacks what that writes ({' / '.join(SAVE_TO_DISK_FILES)}); point `path` at a file in it, or "
        f"at several with a glob, e.g. `data_files: ['{path.rstrip('/')}/*.csv']`."
    )


def _local_files(spec: DatasetSpec) -> list[str] | None:
    """The local files a spec names, or None when `path` is a Hub id or a builder name."""
    if spec.data_files:
        files = []
        for pattern in spec.data_files:
            found = sorted(glob.glob(pattern))
            if not found:
                raise DataError(f"data file {pattern!r} does not exist; check `data_files` of the spec.")
            files.extend(found)
    elif os.path.isfile(spec.path):
        files = [spec.path]
    elif os.path.isdir(spec.path):
        raise _directory_error(spec.path)
    elif any(ch in spec.path for ch in "*?["):
        files = sorted(glob.glob(spec.path))
        if not files:
            raise DataError(f"no file matches {spec.path!r}; check the `path` of the spec.")
    elif _looks_local(spec):
        raise DataError(
            f"data file {spec.path!r} does not exist; give an existing local file or a Hub dataset id."
        )
    else:
        return None
    folders = [f for f in files if os.path.isdir(f)]
    if folders:
        raise _directory_error(folders[0])
    return files


def _inferred_format(spec: DatasetSpec, files: list[str]) -> str:
    """The format of local files from their suffixes (or a builder name in `path`), when `format` is not set."""
    by_suffix = {_format_of_file(f) for f in files}
    if spec.path in (*_BUILDERS, "fasta"):  # `path: csv` with `data_files`; `.tsv` files stay tab-separated
        found = by_suffix.pop() if len(by_suffix) == 1 else None
        return found if found and _BUILDERS.get(found, found) == _BUILDERS.get(spec.path, spec.path) else spec.path
    unknown = next((f for f in files if _format_of_file(f) is None), None)
    if unknown is not None:
        raise DataError(
            f"cannot tell the format of {unknown!r} from its suffix {Path(unknown).suffix.lower()!r}; the known suffixes "
            f"are {known_suffixes()}. Set `format:` in the spec (one of {list(DATA_FORMATS)}), e.g. `format: conll` "
            "for CoNLL files named otherwise."
        )
    if len(by_suffix) > 1:
        raise DataError(
            f"the spec names files of several formats ({sorted(by_suffix)}: {files[:3]}); use one format per spec, "
            "e.g. one spec per format with `data_files`."
        )
    return by_suffix.pop()


def spec_source(spec: DatasetSpec) -> tuple[str, list[str] | None]:
    """How a spec is read (its `format`, or the one inferred) and its local files: None for a save_to_disk
    folder or a Hub dataset."""
    if spec.format == "hub":
        return "hub", None
    if spec.format == "save_to_disk" or (spec.format is None and not spec.data_files and _is_saved_dataset(spec.path)):
        if not os.path.exists(spec.path):
            raise DataError(f"data folder {spec.path!r} does not exist; `format: save_to_disk` reads a folder written by `Dataset.save_to_disk`.")
        if not _is_saved_dataset(spec.path):
            what = "a file" if os.path.isfile(spec.path) else f"a directory that lacks {' / '.join(SAVE_TO_DISK_FILES)}"
            raise DataError(
                f"{spec.path!r} is {what}, but `format: save_to_disk` reads a folder written by `Dataset.save_to_disk`; "
                f"point `path` at such a folder, or set `format` to the format of the files (one of {list(DATA_FORMATS)})."
            )
        return "save_to_disk", None
    files = _local_files(spec)
    if files is None:
        return "hub", None
    return spec.format or _inferred_format(spec, files), files


def load_spec(spec: DatasetSpec, where: str | None = None) -> datasets.Dataset | datasets.IterableDataset:
    """Load the raw rows a spec names: a save_to_disk folder, local files, or a Hub dataset.
    `where` (the spec's slot, e.g. `data.test`) leads every error message."""
    with naming_slot(where):
        return _load_spec(spec)


@contextlib.contextmanager
def naming_slot(where: str | None):
    """Lead the message of a `DataError` raised inside with the spec's slot (`data.test: ...`)."""
    try:
        yield
    except DataError as err:
        if where is None or str(err).startswith(f"{where}:"):
            raise
        raise DataError(f"{where}: {err}") from err


def _load_spec(spec: DatasetSpec) -> datasets.Dataset | datasets.IterableDataset:
    fmt, files = spec_source(spec)
    if fmt == "fasta":
        return _load_fasta_spec(spec, files)
    if fmt == "conll":
        raise DataError(
            f"{spec.path!r} has `format: conll` (`word ... tag` lines), which only `task: ner` reads; for texts with "
            f"one label each use another format ({', '.join(f for f in DATA_FORMATS if f != 'conll')})."
        )
    if fmt == "save_to_disk":
        ds = datasets.load_from_disk(spec.path)
        if isinstance(ds, datasets.DatasetDict):
            if spec.split not in ds:
                raise DataError(f"{spec.path} has splits {list(ds)}, not {spec.split!r}; set `split`.")
            ds = ds[spec.split]
    else:
        try:
            ds = _load_files(spec, fmt, files) if files is not None else datasets.load_dataset(
                spec.path, spec.name, split=spec.split, revision=spec.revision, streaming=spec.streaming
            )
        except (FileNotFoundError, ConnectionError, OSError) as err:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
            hint = (
                " The Hub is offline here (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE=1) and the dataset is not "
                "in the local cache: download it once with network access, or point `path` at local files."
                if offline
                else " Check the dataset id, config name and split, or point `path` at local files."
            )
            raise DataError(f"could not load dataset {spec.path!r} (split {spec.split!r}): {err}.{hint}") from err
    ds = _drop_excluded_labels(ds, spec)
    if spec.streaming and isinstance(ds, datasets.Dataset):  # a save_to_disk folder loads whole
        ds = ds.to_iterable_dataset()
    if spec.limit is not None:
        ds = ds.take(spec.limit) if spec.streaming else ds.select(range(min(spec.limit, len(ds))))
    return ds


def _load_files(spec: DatasetSpec, fmt: str, files: list[str]):
    builder = _BUILDERS[fmt]
    kwargs: dict = {}
    if builder == "csv":
        if fmt == "tsv":
            kwargs["sep"] = "\t"
        if spec.column_names:
            kwargs["column_names"] = spec.column_names
            kwargs["header"] = None
    if spec.streaming and builder in ("text", "json"):
        kwargs["chunksize"] = STREAM_CHUNK_BYTES
    for file in files:
        _check_readable(file, fmt, header=builder == "csv" and not spec.column_names)
    try:
        return datasets.load_dataset(builder, data_files={"train": files}, split="train", streaming=spec.streaming, **kwargs)
    except Exception as err:  # the builders raise many types; name the file and the cause
        raise DataError(
            f"could not read {files[0]!r}{' and others' if len(files) > 1 else ''} as {fmt}: "
            f"{_root_cause(err)}. Check the file format (`format:` in the spec, and `column_names` for a CSV "
            "without header)."
        ) from err


def _load_fasta_spec(spec: DatasetSpec, files: list[str]):
    """FASTA files as a Dataset with id, description, sequence, text (= sequence) and label columns."""
    try:
        ds, _ = load_fasta(files, spec.fasta_label_regex, spec.file_labels)
    except (FastaError, re.error) as err:
        raise DataError(f"could not read FASTA {files[0]!r}{' and others' if len(files) > 1 else ''}: {err}") from err
    ds = _drop_excluded_labels(ds, spec)
    if spec.limit is not None:
        ds = ds.select(range(min(spec.limit, len(ds))))
    return ds.to_iterable_dataset() if spec.streaming else ds


def _drop_excluded_labels(ds, spec: DatasetSpec):
    """Drop the rows whose raw label is listed in `exclude_labels` (e.g. DeepLoc's Cytoplasm-Nucleus)."""
    if not spec.exclude_labels:
        return ds
    column = spec.label_column
    if not column or (ds.column_names is not None and column not in ds.column_names):
        raise DataError(
            f"{spec.path!r}: `exclude_labels` is set but there is no label column {column!r}; "
            "set `label_column` (or `fasta_label_regex` / `file_labels` for FASTA)."
        )
    drop = {str(v) for v in spec.exclude_labels}
    return ds.filter(lambda batch: [str(v) not in drop for v in batch[column]], batched=True)


def _root_cause(err: BaseException) -> str:
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    return f"{type(err).__name__}: {err}"


def _check_readable(path: str, fmt: str, header: bool) -> None:
    """Refuse empty files, text files that are not UTF-8 and tables without rows, naming the file and the fix."""
    if os.path.getsize(path) == 0:
        raise DataError(f"data file {path!r} is empty; point the spec at a file with rows.")
    if fmt in ("parquet", "arrow"):
        if fmt == "parquet" and _parquet_rows(path) == 0:
            raise DataError(f"data file {path!r} has columns but no rows; point the spec at a file with rows.")
        return
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not just a multi-byte character cut at the chunk end
            raise DataError(
                f"data file {path!r} is not UTF-8 text (byte {head[err.start]:#04x} at offset {err.start}); "
                f"re-encode it, e.g. `iconv -f latin1 -t utf-8 {path} > fixed.csv`."
            ) from None
    if fmt in ("csv", "tsv") and not _has_csv_record(path, fmt, header):
        only = "a header line but " if header else ""
        raise DataError(
            f"data file {path!r} has {only}no rows; add rows, or drop the file from the spec"
            + ("." if header else " (with `column_names`, the first line is a row, not a header).")
        )
    if fmt in ("json", "jsonl") and (not head.strip() or re.fullmatch(rb"\s*\[\s*\]\s*", head)):
        raise DataError(f"data file {path!r} holds no records; add rows, or drop the file from the spec.")


def _parquet_rows(path: str) -> int | None:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError):  # not Parquet after all: the loader names the file and the cause
        return None


def _has_csv_record(path: str, fmt: str, header: bool) -> bool:
    try:
        return next(iter(_csv_record_lines(path, fmt, header)), None) is not None
    except csv.Error:  # e.g. a field beyond the csv module's size limit, which pandas reads: leave it to the loader
        return True


# ---------------------------------------------------------------------------------------
# Where a row is: editor line numbers for errors
# ---------------------------------------------------------------------------------------


def _csv_record_lines(path: str, fmt: str, header: bool) -> Iterator[int]:
    """The line (from 1) on which each CSV/TSV data record starts; blank lines are skipped, as pandas does."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter="\t" if fmt == "tsv" else ",")
        end = 0
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue
            if header:
                header = False
                continue
            yield start


def _row_places(path: str, fmt: str, spec: DatasetSpec) -> Iterator[tuple[str, int]]:
    """("line", N) or ("row", N), both counting from 1, for each row `datasets` reads from one file, in order."""
    if fmt in ("csv", "tsv"):
        yield from (("line", n) for n in _csv_record_lines(path, fmt, header=not spec.column_names))
    elif fmt == "fasta":
        yield from (("line", n) for n in record_lines(path))
    elif fmt == "text" or (fmt in ("json", "jsonl") and not _is_json_array(path)):
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from (("line", n) for n, line in enumerate(f, 1) if fmt == "text" or line.strip())
    else:  # a JSON array, Parquet, Arrow: no lines to point at
        rows = datasets.load_dataset(_BUILDERS[fmt], data_files=[path], split="train")
        yield from (("row", n) for n in range(1, len(rows) + 1))


def _is_json_array(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(4096).lstrip().startswith("[")


def describe_places(files: list[str], places_of: Callable[[str], Iterator[tuple[str, int]]], rows: list[int]) -> str:
    """`rows` (positions in the concatenated files) as `'a.csv' lines 8, 12; 'b.csv' line 3`, `places_of(file)`
    giving ("line" or "row", number) for each row of one file."""
    wanted, found, position = set(rows), {}, 0
    for path in files:
        for place in places_of(path):
            if position in wanted:
                found[position] = (path, *place)
            position += 1
            if len(found) == len(wanted):
                break
        if len(found) == len(wanted):
            break
    groups: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        path, kind, number = found.get(row, ("", "row", row + 1))
        groups.setdefault((path, kind), []).append(number)
    return "; ".join(
        f"{f'{path!r} ' if path else ''}{kind}{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
        for (path, kind), numbers in groups.items()
    )


def describe_rows(spec: DatasetSpec, rows: list[int]) -> str:
    """Where rows of `load_spec(spec)` (positions, from 0) are, as one finds them: `'d.csv' line 8` in the line
    formats (CSV/TSV with their header, JSONL, text; a FASTA record's header line), else `'d.parquet' row 8`
    counting from 1, or `row 7 (counting from 0)` of a Hub dataset or save_to_disk folder."""
    try:
        fmt, files = spec_source(spec)
        if files is None:
            return f"{spec.path!r} row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))} (counting from 0)"
        return describe_places(files, lambda path: _row_places(path, fmt, spec), _unfiltered(spec, rows))
    except Exception:  # a location must never hide the error it is part of
        return f"row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))} (counting from 0)"


def _unfiltered(spec: DatasetSpec, rows: list[int]) -> list[int]:
    """The positions of `rows` before `exclude_labels` dropped rows."""
    if not spec.exclude_labels:
        return rows
    raw = _load_spec(dataclasses.replace(spec, exclude_labels=None, limit=None))
    values = raw[spec.label_column] if isinstance(raw, datasets.Dataset) else (r[spec.label_column] for r in raw)
    drop, kept = {str(v) for v in spec.exclude_labels}, []
    for position, value in enumerate(values):
        if str(value) not in drop:
            kept.append(position)
            if len(kept) > max(rows):
                break
    return [kept[row] for row in rows]


# ---------------------------------------------------------------------------------------
# Text and labels
# ---------------------------------------------------------------------------------------

# Entities whose "&" became a space (AG News: "India #39;s", "Merck  amp; Co.", "past  #36;46"):
# the space that replaced the "&" is dropped with it.
_BARE_ENTITY = re.compile(
    r" ?(?<![&\w;])(#\d{1,6}|#[xX][0-9a-fA-F]{1,6}|quot|amp|lt|gt|nbsp|apos|hellip|mdash|ndash"
    r"|lsquo|rsquo|ldquo|rdquo);"
)
_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]{0,300})?/?>")  # not tickers like <AZN.L>
_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "ul", "ol", "tr", "td", "h1", "h2", "h3", "hr"})


def _drop_tag(m: re.Match) -> str:
    return " " if m.group(1).lower() in _BLOCK_TAGS else ""


def clean_text(text: str) -> str:
    """Undo AG-News-style escaping: literal backslashes (former line breaks) become spaces,
    HTML entities are unescaped (also those whose ``&`` was lost, such as `` #39;``), HTML
    tags are dropped and whitespace is collapsed."""
    text = text.replace("\\", " ")
    text = _BARE_ENTITY.sub(r"&\1;", text)
    text = html.unescape(html.unescape(text))  # some entities are escaped twice (&amp;lt;)
    text = _TAG.sub(_drop_tag, text)
    return " ".join(text.split())


def valid_unicode(text: str) -> str:
    """Replace lone surrogates (unencodable in UTF-8, fatal to Arrow and tokenizers) with `?`."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _check_columns(ds, spec: DatasetSpec, needed: list[str], where: str) -> None:
    columns = ds.column_names or []
    for col in needed:
        if col not in columns:
            raise DataError(
                f"{where}: column {col!r} not found in {spec.path!r}; the columns are {columns}. "
                f"Set `text_columns`/`label_column` (or `column_names` for a CSV without header)."
            )


def join_text_columns(batch: dict, spec: DatasetSpec) -> list[str]:
    """The text of each row of `batch`: its `text_columns` joined by `text_separator`, stripped or cleaned."""
    texts = []
    for i in range(len(batch[spec.text_columns[0]])):
        parts = ["" if batch[c][i] is None else str(batch[c][i]) for c in spec.text_columns]
        text = spec.text_separator.join(p for p in parts if p.strip())
        texts.append(clean_text(text) if spec.clean_text else text.strip())
    return texts


def add_text_column(ds: datasets.Dataset, spec: DatasetSpec, where: str) -> datasets.Dataset:
    """Join `text_columns` into one `text` column; refuse empty or null texts."""
    _check_columns(ds, spec, spec.text_columns, where)
    ds = ds.map(lambda batch: {"text": join_text_columns(batch, spec)}, batched=True, desc=f"text ({where})")
    empty = [i for i, t in enumerate(ds["text"]) if not t]
    if empty:
        raise DataError(
            f"{where}: {len(empty)} empty or null texts (first at {describe_rows(spec, empty[:SHOWN_ROWS])}); "
            "remove those rows or point `text_columns` at the column that holds the text."
        )
    return ds


def raw_label_values(ds: datasets.Dataset, spec: DatasetSpec, where: str) -> list:
    _check_columns(ds, spec, [spec.label_column], where)
    values = ds[spec.label_column]
    kinds = {type(v).__name__ for v in values if v is not None}
    if None in values:
        missing = [i for i, v in enumerate(values) if v is None]
        raise DataError(
            f"{where}: {len(missing)} rows have no label in {spec.label_column!r} (first at "
            f"{describe_rows(spec, missing[:SHOWN_ROWS])}); remove them or move them to the unlabeled data."
        )
    if len(kinds) > 1:
        raise DataError(
            f"{where}: labels in {spec.label_column!r} are a mix of {sorted(kinds)}; "
            "write every label the same way (all class names or all integer ids)."
        )
    return values


def _is_number(value) -> bool:
    return isinstance(value, str) and _INTEGER.fullmatch(value.strip()) is not None


def label_name_of(value, cfg: DataConfig) -> str:
    if cfg.label_map is not None:
        return cfg.label_map.get(str(value), f"<unmapped {value!r}>")
    if cfg.label_names is not None and isinstance(value, (int, np.integer)):
        if 0 <= value < len(cfg.label_names):
            return cfg.label_names[value]
        return f"<id {value} outside label_names>"
    return str(value)


def resolve_label_names(cfg: DataConfig, labeled_values: list, spec: DatasetSpec, where: str) -> list[str]:
    """`data.label_names`, else the classes of `data.label_map`, else the labels seen, sorted. Labels that mix
    numbers and class names (`1`, `business`) are refused there: each number would become a class of its own."""
    if cfg.label_names is not None:
        return list(cfg.label_names)
    if cfg.label_map is not None:
        return list(dict.fromkeys(cfg.label_map.values()))
    distinct = list(dict.fromkeys(v for v in labeled_values if isinstance(v, str)))
    numbers, names = [v for v in distinct if _is_number(v)], [v for v in distinct if not _is_number(v)]
    if numbers and names:
        raise DataError(
            f"{where}: the label column {spec.label_column!r} of {spec.path!r} mixes numbers ({numbers[:3]}) and class "
            f"names ({names[:3]}), so each number would train as a class of its own. Map every raw value to its "
            f"class with `data.label_map`, e.g. {{'{numbers[0]}': {names[0]}, {names[0]}: {names[0]}}}, or list the "
            "classes in `data.label_names` (a row with another label is then refused, with its line), or write "
            "every label the same way."
        )
    return sorted({label_name_of(v, cfg) for v in labeled_values})


def add_label_ids(ds, spec: DatasetSpec, cfg: DataConfig, label_names: list[str], where: str, column="label"):
    values = raw_label_values(ds, spec, where)
    label2id = {name: i for i, name in enumerate(label_names)}
    ids = []
    for row, value in enumerate(values):
        name = label_name_of(value, cfg)
        if name not in label2id:
            raise DataError(
                f"{where}: {describe_rows(spec, [row])} has label {value!r}, which is not in the label set {label_names}; "
                "fix the row, or list every class in `data.label_names` / `data.label_map`."
            )
        ids.append(label2id[name])
    if column in ds.column_names:
        ds = ds.remove_columns(column)
    return ds.add_column(column, ids)


def _draw_per_class(labels: list[int], seed: int, size_of) -> tuple[list[int], list[int]]:
    """Draw `size_of(cls, class_rows)` row indices of each class (seeded); return (chosen, rest), both sorted."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    chosen = []
    for cls in sorted(set(labels)):
        rows = np.flatnonzero(labels_arr == cls)
        chosen.extend(rng.choice(rows, size=size_of(cls, len(rows)), replace=False).tolist())
    chosen_set = set(chosen)
    return sorted(chosen), [i for i in range(len(labels)) if i not in chosen_set]


def sample_per_class(labels: list[int], num_per_class: int, seed: int) -> tuple[list[int], list[int]]:
    """Draw `num_per_class` row indices of each class (seeded); return (chosen, rest), both sorted."""

    def size_of(cls: int, class_rows: int) -> int:
        if class_rows < num_per_class:
            raise DataError(
                f"class {cls} has only {class_rows} labeled rows but `sampling.num_per_class` is "
                f"{num_per_class}; lower it or add labeled data."
            )
        return num_per_class

    return _draw_per_class(labels, seed, size_of)


def sample_fraction_per_class(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Draw round(`fraction` x class size) row indices of each class, at least one (seeded): the
    labeled set keeps the class shares of the data. Return (chosen, rest), both sorted."""
    return _draw_per_class(labels, seed, lambda cls, class_rows: max(1, round(fraction * class_rows)))


def sample_rows(num_rows: int, num_examples: int, seed: int) -> tuple[list[int], list[int]]:
    """Draw `num_examples` of `num_rows` row indices at random (seeded); return (chosen, rest), both sorted."""
    if num_examples > num_rows:
        raise DataError(
            f"`sampling.num_examples` is {num_examples} but the labeled data has only {num_rows} rows; "
            "lower it or add labeled data."
        )
    chosen = np.sort(np.random.default_rng(seed).choice(num_rows, size=num_examples, replace=False))
    chosen_set = set(chosen.tolist())
    return chosen.tolist(), [i for i in range(num_rows) if i not in chosen_set]


def draw_labeled(labeled, sampling) -> tuple[list[int], list[int]] | None:
    """The benchmark protocol's (chosen, rest) rows of the labeled set, or None to keep every row."""
    if sampling.num_per_class is not None:
        return sample_per_class(labeled["label"], sampling.num_per_class, sampling.seed)
    if sampling.num_examples is not None:
        return sample_rows(len(labeled), sampling.num_examples, sampling.seed)
    if sampling.fraction_per_class is not None:
        return sample_fraction_per_class(labeled["label"], sampling.fraction_per_class, sampling.seed)
    return None


def tokenize_column(
    dataset: datasets.Dataset, task, tokenizer, max_length: int, column: str, out: str, missing_as_empty: bool = False
):
    """Cached `datasets.map` tokenization of one text column into token ids (`task.tokenize`).
    With `missing_as_empty`, an empty or null text gets no ids at all (an augmentation column whose
    paraphrase is missing: the collator then falls back to the original text)."""

    def encode(batch):
        texts = [t if t else "" for t in batch[column]]
        ids = task.tokenize(tokenizer, texts, max_length)["input_ids"]
        if missing_as_empty:
            ids = [i if t else [] for i, t in zip(ids, texts)]
        return {out: ids}

    return dataset.map(encode, batched=True, desc=f"tokenize {column}")


def _fingerprints(texts: list[str]) -> set[str]:
    return {hashlib.sha1(t.strip().lower().encode()).hexdigest() for t in texts}


def check_unlabeled_is_new(unlabeled_texts: list[str], labeled_texts: list[str], spec: DatasetSpec, scope: str) -> None:
    """Refuse unlabeled data whose texts (`scope`: "every text", or a prefix) are all labeled texts."""
    unlabeled_prints = _fingerprints(unlabeled_texts)
    if unlabeled_prints and unlabeled_prints <= _fingerprints(labeled_texts):
        raise DataError(
            f"data.unlabeled: {scope} of {spec.path!r} is also in the labeled data, so there is "
            "nothing new to learn from; point `data.unlabeled` at text without labels."
        )


LABELED_DATA = "the labeled training data"


def check_no_overlap(train_texts: list[str], eval_texts: list[str], where: str, other: str = LABELED_DATA) -> None:
    """Refuse evaluation texts that the run also trains on: `other` says which training texts (labeled, or the
    unlabeled pool, whose texts a model learns from through its own pseudo-labels)."""
    shared = _fingerprints(train_texts) & _fingerprints(eval_texts)
    if shared:
        example = next(t for t in eval_texts if _fingerprints([t]) <= shared)
        raise DataError(
            f"{where}: {len(shared)} texts also appear in {other} (e.g. {example[:80]!r}); evaluating on "
            "them overstates accuracy. Remove them from one of the two sets."
        )


# ---------------------------------------------------------------------------------------
# The whole data setup of a run
# ---------------------------------------------------------------------------------------
