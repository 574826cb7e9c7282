"""Loading labeled, unlabeled and evaluation text from the Hub or local files.

The data layer knows nothing of algorithms: it turns `DatasetSpec`s into `datasets.Dataset`s
with a `text` column (and `label` ids where labels exist), checks them, and applies the
benchmark protocol (N labels per class, the rest as the unlabeled pool).
"""

from __future__ import annotations

import glob
import hashlib
import html
import os
import re
from pathlib import Path

import datasets
import numpy as np

from ssl_text.config import DataConfig, DatasetSpec
from ssl_text.config.keys import ANALYSIS_LABEL

_EXTENSION_BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
    ".arrow": "arrow",
}


# Streamed text/JSON files are read in chunks of this many bytes: with datasets' default, 10 MB, a pass
# over a 1,000,000-line file peaked ~200 MB above one over a 10,000-line file; with 1 MB, ~30 MB.
STREAM_CHUNK_BYTES = 1 << 20


class DataError(ValueError):
    """The data does not match its spec; the message says what was found and what to do."""


def _local_files(spec: DatasetSpec) -> list[str] | None:
    """The local files a spec names, or None when `path` is a Hub id or a builder name."""
    if spec.data_files:
        files = []
        for pattern in spec.data_files:
            found = sorted(glob.glob(pattern))
            if not found:
                raise DataError(f"data file {pattern!r} does not exist; check `data_files` of the spec.")
            files.extend(found)
        return files
    if os.path.isfile(spec.path):
        return [spec.path]
    if any(ch in spec.path for ch in "*?["):
        found = sorted(glob.glob(spec.path))
        if not found:
            raise DataError(f"no file matches {spec.path!r}; check the `path` of the spec.")
        return found
    if Path(spec.path).suffix.lower() in _EXTENSION_BUILDERS or spec.path.startswith((".", "/", "~")):
        raise DataError(
            f"data file {spec.path!r} does not exist; give an existing local file or a Hub dataset id."
        )
    return None


def _builder_for(files: list[str], spec: DatasetSpec) -> tuple[str, dict]:
    ext = Path(files[0]).suffix.lower()
    builder = spec.path if spec.path in ("csv", "json", "parquet", "text", "arrow") else None
    builder = builder or _EXTENSION_BUILDERS.get(ext)
    if builder is None:
        raise DataError(
            f"cannot tell the format of {files[0]!r} (extension {ext!r}); use one of "
            f"{sorted(_EXTENSION_BUILDERS)} or set `path` to a builder name (csv, json, parquet)."
        )
    kwargs: dict = {}
    if builder == "csv":
        if ext == ".tsv":
            kwargs["sep"] = "\t"
        if spec.column_names:
            kwargs["column_names"] = spec.column_names
            kwargs["header"] = None
    if spec.streaming and builder in ("text", "json"):
        kwargs["chunksize"] = STREAM_CHUNK_BYTES
    return builder, kwargs


def load_spec(spec: DatasetSpec) -> datasets.Dataset | datasets.IterableDataset:
    """Load the raw rows a spec names: a save_to_disk folder, local files, or a Hub dataset."""
    fasta_files = _fasta_files(spec)
    if fasta_files is not None:
        return _load_fasta_spec(spec, fasta_files)
    if os.path.isdir(spec.path) and (
        os.path.exists(os.path.join(spec.path, "dataset_info.json"))
        or os.path.exists(os.path.join(spec.path, "state.json"))
        or os.path.exists(os.path.join(spec.path, "dataset_dict.json"))
    ):
        ds = datasets.load_from_disk(spec.path)
        if isinstance(ds, datasets.DatasetDict):
            if spec.split not in ds:
                raise DataError(f"{spec.path} has splits {list(ds)}, not {spec.split!r}; set `split`.")
            ds = ds[spec.split]
    else:
        files = _local_files(spec)
        try:
            if files is not None:
                builder, kwargs = _builder_for(files, spec)
                for file in files:
                    _check_readable(file, builder)
                try:
                    ds = datasets.load_dataset(
                        builder, data_files={"train": files}, split="train", streaming=spec.streaming, **kwargs
                    )
                except Exception as err:  # the builders raise many types; name the file and the cause
                    raise DataError(
                        f"could not read {files[0]!r}{' and others' if len(files) > 1 else ''} as {builder}: "
                        f"{_root_cause(err)}. Check the file format (and `column_names` for a CSV without header)."
                    ) from err
            else:
                ds = datasets.load_dataset(
                    spec.path,
                    spec.name,
                    split=spec.split,
                    revision=spec.revision,
                    streaming=spec.streaming,
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


def _fasta_files(spec: DatasetSpec) -> list[str] | None:
    """The FASTA files (.fa/.fasta/.faa, optionally .gz) a spec names, or None for any other source."""
    from ssl_text.data.fasta import is_fasta_path

    names = spec.data_files or [spec.path]
    if not any(is_fasta_path(name) for name in names):
        return None  # `fasta_label_regex` / `file_labels` are ignored (e.g. `ssl-text evaluate --data x.csv`)
    files = _local_files(spec)
    if files is None:
        raise DataError(f"FASTA file {spec.path!r} does not exist; give an existing local file or glob.")
    other = [f for f in files if not is_fasta_path(f)]
    if other:
        raise DataError(f"{other[0]!r} is not a FASTA file but is named with FASTA files; use one format per spec.")
    return files


def _load_fasta_spec(spec: DatasetSpec, files: list[str]):
    """FASTA files as a Dataset with id, description, sequence, text (= sequence) and label columns."""
    from ssl_text.data.fasta import FastaError, load_fasta

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


def _check_readable(path: str, builder: str) -> None:
    """Refuse empty files and text files that are not UTF-8, naming the file and the fix."""
    if os.path.getsize(path) == 0:
        raise DataError(f"data file {path!r} is empty; point the spec at a file with rows.")
    if builder not in ("csv", "json", "text"):
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
            f"{where}: {len(empty)} empty or null texts in {spec.path!r} (first rows: {empty[:5]}); "
            "remove those rows or point `text_columns` at the column that holds the text."
        )
    return ds


def raw_label_values(ds: datasets.Dataset, spec: DatasetSpec, where: str) -> list:
    _check_columns(ds, spec, [spec.label_column], where)
    values = ds[spec.label_column]
    kinds = {type(v).__name__ for v in values if v is not None}
    if None in values:
        raise DataError(
            f"{where}: {values.count(None)} rows of {spec.path!r} have no label in {spec.label_column!r}; "
            "remove them or move them to the unlabeled data."
        )
    if len(kinds) > 1:
        raise DataError(
            f"{where}: labels in {spec.label_column!r} are a mix of {sorted(kinds)}; "
            "write every label the same way (all class names or all integer ids)."
        )
    return values


def label_name_of(value, cfg: DataConfig) -> str:
    if cfg.label_map is not None:
        return cfg.label_map.get(str(value), f"<unmapped {value!r}>")
    if cfg.label_names is not None and isinstance(value, (int, np.integer)):
        if 0 <= value < len(cfg.label_names):
            return cfg.label_names[value]
        return f"<id {value} outside label_names>"
    return str(value)


def resolve_label_names(cfg: DataConfig, labeled_values: list) -> list[str]:
    if cfg.label_names is not None:
        return list(cfg.label_names)
    if cfg.label_map is not None:
        return list(dict.fromkeys(cfg.label_map.values()))
    return sorted({label_name_of(v, cfg) for v in labeled_values})


def add_label_ids(ds, spec: DatasetSpec, cfg: DataConfig, label_names: list[str], where: str, column="label"):
    values = raw_label_values(ds, spec, where)
    label2id = {name: i for i, name in enumerate(label_names)}
    ids = []
    for row, value in enumerate(values):
        name = label_name_of(value, cfg)
        if name not in label2id:
            raise DataError(
                f"{where}: row {row} has label {value!r}, which is not in the label set {label_names}; "
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


def split_labeled(labeled: datasets.Dataset, sampling) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """The benchmark protocol on a labeled set: (the drawn rows, the rest as an unlabeled pool whose labels
    are kept aside as `analysis_label`, or None when `rest_as_unlabeled` is off or nothing was drawn)."""
    drawn = draw_labeled(labeled, sampling)
    if drawn is None:
        return labeled, None
    chosen, rest = drawn
    pool = labeled.select(rest).rename_column("label", ANALYSIS_LABEL) if sampling.rest_as_unlabeled else None
    return labeled.select(chosen), pool


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


def check_no_overlap(train_texts: list[str], eval_texts: list[str], where: str) -> None:
    shared = _fingerprints(train_texts) & _fingerprints(eval_texts)
    if shared:
        raise DataError(
            f"{where}: {len(shared)} texts also appear in the labeled training data; evaluating on "
            "them overstates accuracy. Remove them from one of the two sets."
        )


# ---------------------------------------------------------------------------------------
# The whole data setup of a run
# ---------------------------------------------------------------------------------------
