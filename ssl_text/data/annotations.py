"""The pool and the labels of an active-learning loop: the pool `ssl-text suggest` ranks, and labels made in Label
Studio (its JSON export) or in a spreadsheet (CSV `index,label`) merged into one labeled file.

The labeled file (CSV or JSONL, by its suffix) holds one row per labeled text: `pool_index` (its position in the pool
as read, from 0; empty for a text from elsewhere), `text` and `label` (a class name). `ssl-text train` reads it as
`data.labeled: {path: labels.jsonl}` (the default `text_columns: [text]`, `label_column: label`), and `ssl-text
suggest --labeled` leaves its texts out. Prefer JSONL where class names look like numbers: CSV readers read `1` as
an integer, which a config's `label_names` then takes for a class id.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets
import yaml

from ssl_text.config import ConfigError, DatasetSpec, from_dict, read_yaml
from ssl_text.config.keys import LABEL, TEXT
from ssl_text.data.loading import DataError, add_text_column, load_spec
from ssl_text.data.text_data import load_labeled_rows, text_hash

POOL_INDEX = "pool_index"
LABELED_COLUMNS = (POOL_INDEX, TEXT, LABEL)
LABELED_SUFFIXES = (".csv", ".jsonl")
CSV_INDEX_COLUMNS = ("index", POOL_INDEX)  # a CSV of labels names the pool row in either
LABEL_STUDIO_FIX = "export the project from Label Studio as JSON (Export > JSON), the tasks `ssl-text suggest` wrote"


# ---------------------------------------------------------------------------------------
# The pool
# ---------------------------------------------------------------------------------------


def pool_spec(pool: str, text_columns: list[str] | None = None) -> DatasetSpec:
    """`--pool`: a data file, glob, save_to_disk folder or Hub id; a YAML file holding a dataset spec; or an inline
    YAML mapping such as `{path: train.csv, column_names: [label, title, body], text_columns: [title, body]}` (the
    keys of `data.labeled` in a run config). `text_columns` replaces the spec's. A pool's own labels are not read."""
    if pool.lstrip().startswith("{"):
        try:
            raw, source = yaml.safe_load(pool), "--pool"
        except yaml.YAMLError as err:
            message = f"--pool {pool!r} is not a YAML mapping ({err}); write it as {{path: pool.csv}}."
            raise ConfigError(message) from None
    elif pool.endswith((".yaml", ".yml")):
        raw, source = read_yaml(pool), pool
    else:
        raw, source = {"path": pool}, "--pool"
    if not isinstance(raw, dict):
        raise ConfigError(f"--pool {pool!r} is not a mapping; write it as {{path: pool.csv, text_columns: [text]}}.")
    raw = {"label_column": None, **raw}
    if text_columns:
        raw["text_columns"] = text_columns
    return from_dict(DatasetSpec, raw, source)


def load_pool(spec: DatasetSpec) -> list[str]:
    """The pool's texts in order: its `text_columns` joined and cleaned as `data.labeled` reads them. A streamed
    spec is read into memory, up to its `limit`."""
    ds = load_spec(spec, "--pool")
    if isinstance(ds, datasets.IterableDataset):
        ds = datasets.Dataset.from_list(list(ds))
    columns = ds.column_names or []
    missing = [c for c in spec.text_columns if c not in columns]
    if missing:
        raise DataError(
            f"--pool {spec.path!r} has no column {missing[0]!r} (its columns: {columns}); name the text column(s) "
            f"with --text-columns, e.g. --text-columns {columns[0] if columns else 'text'} (for a CSV without a header "
            "row, give the pool as a spec: {path: ..., column_names: [...], text_columns: [...]})."
        )
    return add_text_column(ds, spec, "--pool")[TEXT]


# ---------------------------------------------------------------------------------------
# Labeled files
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledText:
    """One labeled text: where it sits in the pool (None where only its text is known), its hash, its label."""

    pool_index: int | None
    sha256: str  # text_hash of the text
    label: str | None  # a class name; None where the file does not say (a hand-made labeled_rows.jsonl)
    text: str | None = None
    where: str = ""  # the file and line, for error messages


def _records(path: Path) -> list[tuple[int, dict]]:
    """(line, row) of a CSV (header first) or JSONL file, every value as written (no type guessing)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        return [(reader.line_num, row) for row in reader]
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path} line {number} is not JSON ({err}); fix or remove the line.") from None
            if not isinstance(row, dict):
                raise DataError(f"{path} line {number} is {line[:80]!r}; expected an object such as "
                                '{"pool_index": 3, "text": "...", "label": "sports"}.')
            rows.append((number, row))
    return rows


def _pool_index(value, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        index = int(value)
    except (TypeError, ValueError):
        index = -1
    if index < 0 or str(index) != str(value).strip():
        raise DataError(f"{where}: pool index {value!r} is not a row position (an integer from 0); fix the row.")
    return index


def read_labeled(path: str | Path, flag: str = "--labeled") -> list[LabeledText]:
    """The texts of a labeled file (pool_index/text/label, CSV or JSONL; or a run's labeled_rows.jsonl, matched
    by text hash alone since its `index` counts the rows of that run's `data.labeled`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{flag} {path} does not exist; give the labeled file `ssl-text import-labels` writes.")
    if path.suffix.lower() not in LABELED_SUFFIXES:
        raise DataError(f"{flag} {path}: a labeled file is .csv or .jsonl; `ssl-text import-labels` writes either.")
    records = _records(path)
    if records and "sha256" in records[0][1]:
        rows = load_labeled_rows(path)
        return [LabeledText(None, row.sha256, row.label, where=f"{path} row {row.index}") for row in rows]
    found = []
    for line, row in records:
        where = f"{path} line {line}"
        if not row.get(TEXT) or not row.get(LABEL):
            raise DataError(f"{where} has no {TEXT!r} or no {LABEL!r}; a labeled file has columns "
                            f"{', '.join(LABELED_COLUMNS)} (pool_index may be empty): fill in or remove the row.")
        text = str(row[TEXT])
        index = _pool_index(row.get(POOL_INDEX), where)
        found.append(LabeledText(index, text_hash(text), str(row[LABEL]), text, where))
    return found


def labeled_positions(labeled: list[LabeledText], pool_hashes: list[str], flag: str) -> dict[int, str | None]:
    """Pool row -> label of every pool row that is labeled: by `pool_index` (whose text must be the pool's there)
    and by text hash (a text labeled once is labeled wherever it recurs in the pool)."""
    by_hash = {row.sha256: row.label for row in labeled}
    for row in labeled:
        if row.pool_index is None:
            continue
        if row.pool_index >= len(pool_hashes) or pool_hashes[row.pool_index] != row.sha256:
            what = "is beyond the pool" if row.pool_index >= len(pool_hashes) else "holds another text in the pool"
            raise DataError(
                f"{row.where}: pool_index {row.pool_index} {what} ({len(pool_hashes)} texts); the labels were made "
                f"for another pool: pass the --pool they were imported with, or drop the {POOL_INDEX} column of "
                f"{flag} to match by text alone."
            )
    return {i: by_hash[h] for i, h in enumerate(pool_hashes) if h in by_hash}


# ---------------------------------------------------------------------------------------
# Importing labels
# ---------------------------------------------------------------------------------------


def _choices(annotation: dict, where: str) -> list[str]:
    results = annotation.get("result") or []
    if not isinstance(results, list):
        raise DataError(f"{where}: `result` is not a list; {LABEL_STUDIO_FIX}.")
    return [str(c) for r in results if isinstance(r, dict) and r.get("type") == "choices"
            for c in (r.get("value") or {}).get("choices") or []]


def _label_studio_labels(path: Path) -> tuple[list[tuple[str, dict, str]], int]:
    """(where, task data, label) of every annotated task of a Label Studio JSON export, and the number of tasks
    without a label (not annotated yet, skipped, cancelled)."""
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not JSON ({err}); {LABEL_STUDIO_FIX}.") from None
    if not isinstance(tasks, list):
        raise DataError(f"{path} holds a {type(tasks).__name__}, not a list of tasks; {LABEL_STUDIO_FIX}.")
    found, unlabeled = [], 0
    for number, ls_task in enumerate(tasks):
        where = f"{path} task {ls_task.get('id', f'#{number}') if isinstance(ls_task, dict) else f'#{number}'}"
        if not isinstance(ls_task, dict) or not isinstance(ls_task.get("data"), dict):
            raise DataError(f"{where} has no `data` object; {LABEL_STUDIO_FIX}.")
        kept = [a for a in ls_task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        per_annotation = [_choices(a, where) for a in kept]
        several = next((c for c in per_annotation if len(c) > 1), None)
        if several:
            raise DataError(f"{where}: one annotation chose several labels {several}; a text takes one label: set "
                            '`choice="single"` on the Choices of the labeling config and annotate the task again.')
        labels = sorted({c[0] for c in per_annotation if c})
        if len(labels) > 1:
            raise DataError(f"{where}: its annotations disagree ({', '.join(labels)}); keep one annotation of the task "
                            "in Label Studio (or mark one as ground truth and delete the others) and export again.")
        if labels:
            found.append((where, ls_task["data"], labels[0]))
        else:
            unlabeled += 1
    return found, unlabeled


def _csv_labels(path: Path) -> tuple[list[tuple[str, dict, str]], int]:
    """(where, row, label) of every CSV row with a label (`index,label`; `pool_index` for `index`, other columns such
    as `text` allowed: a suggestions.csv with its `label` column filled in), and the number of rows without one."""
    records = _records(path)
    columns = list(records[0][1]) if records else []
    index_column = next((c for c in CSV_INDEX_COLUMNS if c in columns), None)
    if index_column is None or LABEL not in columns:
        raise DataError(f"{path} has columns {columns}; a CSV of labels has a header with `index` (the pool row, "
                        "from 0) and `label`, e.g. `index,label` then `17,sports`.")
    found = [(f"{path} line {line}", {POOL_INDEX: row[index_column], TEXT: row.get(TEXT) or None}, row[LABEL].strip())
             for line, row in records if (row.get(LABEL) or "").strip()]
    return found, len(records) - len(found)


def _pool_row(where: str, data: dict, pool_hashes: list[str], first_of: dict[str, int]) -> int:
    """The pool row a task or CSV row names: its pool_index (checked against its text, where given), else its text."""
    index = _pool_index(data.get(POOL_INDEX), where)
    text = data.get(TEXT)
    fix = "pass the --pool the tasks were suggested from"
    if index is not None:
        if index >= len(pool_hashes):
            raise DataError(f"{where}: pool_index {index} is not in the pool, which has {len(pool_hashes)} texts; "
                            f"{fix}.")
        if text is not None and pool_hashes[index] != text_hash(str(text)):
            raise DataError(f"{where}: pool_index {index} holds another text in the pool than the task's "
                            f"{str(text)[:60]!r}; {fix}.")
        return index
    if text is None:
        raise DataError(f"{where} has neither data.{POOL_INDEX} nor data.{TEXT}; import the tasks `ssl-text suggest` "
                        "wrote (label_studio_tasks.json), whose data holds both.")
    if text_hash(str(text)) not in first_of:
        raise DataError(f"{where}: the text {str(text)[:60]!r} is not in the pool; {fix}.")
    return first_of[text_hash(str(text))]


def _write_atomic(path: Path, text: str) -> None:
    """Through a temporary sibling and a rename (training/run_dir.write_text_atomic sits in a higher layer)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def labeled_file_text(rows: list[LabeledText], suffix: str) -> str:
    """A labeled file's contents: columns pool_index, text, label."""
    records = [{POOL_INDEX: r.pool_index, TEXT: r.text, LABEL: r.label} for r in rows]
    if suffix == ".jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    out = io.StringIO()
    writer = csv.DictWriter(out, LABELED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def import_labels(exports: list[str], pool_texts: list[str], label_names: list[str], out: str) -> dict:
    """Merge the labels of Label Studio JSON exports and CSV files (`index,label`) into the labeled file `out`,
    keeping every row it already holds. Everything is checked before `out` is written (atomically): labels outside
    `label_names`, two labels for one text (in the exports or against `out`), texts or indices not in the pool."""
    out_path = Path(out)
    if out_path.suffix.lower() not in LABELED_SUFFIXES:
        raise ConfigError(f"--out {out}: the labeled file is .jsonl or .csv (what `data.labeled` reads); rename it.")
    if len(set(label_names)) != len(label_names) or not label_names:
        raise ConfigError(f"--labels {','.join(label_names)}: list each class once, e.g. --labels World,Sports.")
    known = set(label_names)
    pool_hashes = [text_hash(t) for t in pool_texts]
    first_of = {h: i for i, h in reversed(list(enumerate(pool_hashes)))}
    rows = read_labeled(out_path, "--out") if out_path.exists() else []
    if any(row.text is None for row in rows):
        raise DataError(f"--out {out} is a run's labeled_rows.jsonl (text hashes, no texts); give the labeled file to "
                        "merge into (pool_index, text, label), or a new file name.")
    by_hash: dict[str, LabeledText] = {}
    for row in rows:
        if row.label not in known:
            raise DataError(f"{row.where} has label {row.label!r}, which is not in --labels {sorted(known)}; add it "
                            "to --labels or fix the row.")
        _check_agrees(by_hash, row)
    counts, skipped = Counter(), 0
    for export in exports:
        path = Path(export)
        if not path.is_file():
            raise DataError(f"{export} does not exist; give a Label Studio JSON export or a CSV `index,label`.")
        if path.suffix.lower() not in (".json", ".csv"):
            raise DataError(f"{export}: an export is .json (Label Studio) or .csv (`index,label`); rename or convert "
                            "it.")
        found, without = _label_studio_labels(path) if path.suffix.lower() == ".json" else _csv_labels(path)
        skipped += without
        for where, data, label in found:
            if label not in known:
                raise DataError(f"{where} has label {label!r}, which is not in --labels {sorted(known)}; add the class "
                                "to --labels if it is one, or correct the annotation (and the labeling config).")
            index = _pool_row(where, data, pool_hashes, first_of)
            row = LabeledText(index, pool_hashes[index], label, pool_texts[index], where)
            counts["added" if _check_agrees(by_hash, row) else "already_labeled"] += 1
    merged = list(by_hash.values())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out_path, labeled_file_text(merged, out_path.suffix.lower()))
    return {
        "out": str(out_path), "labeled": len(merged), "added": counts["added"],
        "already_labeled": counts["already_labeled"], "without_label": skipped,
        "per_label": dict(sorted(Counter(r.label for r in merged).items())),
    }  # fmt: skip


def _check_agrees(by_hash: dict[str, LabeledText], row: LabeledText) -> bool:
    """Add `row` unless its text is labeled already; refuses another label for the same text. True when added."""
    earlier = by_hash.get(row.sha256)
    if earlier is None:
        by_hash[row.sha256] = row
        return True
    if earlier.label != row.label:
        raise DataError(f"{row.where} labels the text {(row.text or '')[:60]!r} {row.label!r}, but {earlier.where} "
                        f"labels it {earlier.label!r}; correct one of the two (or remove the row), then import again.")
    return False
