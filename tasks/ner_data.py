"""Token-classification data: CoNLL files, and Hub/JSON/Parquet rows of words with their tags.

Every slot becomes a `datasets.Dataset` with `tokens` (the words of one sentence) and, where
tags are known, `label` (one tag id per word). Tags follow BIO/IOB2 (`O`, `B-TYPE`,
`I-TYPE`); the label set is `O` followed by `B-`/`I-` of every entity type, sorted by type,
unless `data.label_names` gives it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator

import datasets

from ssl_text.config import DataConfig, DatasetSpec
from ssl_text.config.keys import ANALYSIS_LABEL, INDEX, PSEUDO_TARGET
from ssl_text.data.loading import (
    CONLL_SUFFIXES,
    LABELED_DATA,
    DataError,
    _local_files,
    check_no_overlap,
    describe_places,
    describe_rows,
    load_spec,
    naming_slot,
)
from ssl_text.data.text_data import TextData, split_labeled_rows

logger = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"
_FIELD_SEPARATOR = re.compile(r"[ \t]+")  # not str.split(): U+FEFF, U+00A0 and the like stay inside words


# Share of the evaluation sentences that may also be training sentences: a few repeats are normal in NER corpora
# (CoNLL-2003 repeats datelines, fixtures and score lines such as `LONDON 1996-08-30` across its splits).
LABELED_REPEAT_SHARE = 0.05
# The unlabeled pool is most of the corpus, so it holds most repeats: 6.0% of CoNLL-2003's valid.txt, 3.8% of test.txt.
UNLABELED_REPEAT_SHARE = 0.10


def read_conll(path: str, tag_field: int = -1) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of a CoNLL file: one `word ... tag` line per word, blank lines between sentences,
    `-DOCSTART-` lines skipped. Returns (words per sentence, tags per sentence)."""
    sentences, tags = [], []
    for _, words, labels in conll_sentences(path, tag_field):
        sentences.append(words)
        tags.append(labels)
    return sentences, tags


def conll_sentences(path: str, tag_field: int = -1) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line of its first word, words, tags) of each sentence of a CoNLL file, as `read_conll` reads them."""
    start, words, labels = 0, [], []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n").strip(" \t")
            fields = line.split("\t") if "\t" in line else _FIELD_SEPARATOR.split(line)
            if not line or fields[0] == DOCSTART:
                if words:
                    yield start, words, labels
                start, words, labels = 0, [], []
                continue
            if len(fields) < 2:
                raise DataError(
                    f"{path}:{lineno}: found one field ({line[:40]!r}); expected a word and its tag separated by "
                    "spaces or tabs. Fix the line, or check that the file is in CoNLL format."
                )
            try:
                tag = fields[tag_field]
            except IndexError:
                raise DataError(
                    f"{path}:{lineno}: the line has {len(fields)} fields, so `conll_tag_field` {tag_field} does not "
                    "exist; set it to the field that holds the tag (-1: the last one)."
                ) from None
            start = start or lineno
            words.append(fields[0])
            labels.append(tag)
    if words:
        yield start, words, labels


def is_conll(spec: DatasetSpec) -> bool:
    """Whether a spec names CoNLL files: `format: conll`, or without `format` local files with CoNLL suffixes."""
    if spec.format is not None:
        return spec.format == "conll"
    if Path(spec.path).is_dir() and not spec.data_files:  # a save_to_disk folder (any other folder: load_spec says so)
        return False
    files = _local_files(spec)
    return bool(files) and all(Path(f).suffix.lower() in CONLL_SUFFIXES for f in files)


def describe_sentences(spec: DatasetSpec, rows: list[int]) -> str:
    """Where sentences of a slot are: the line of a CoNLL sentence's first word, else as `describe_rows`."""
    if not is_conll(spec):
        return describe_rows(spec, rows)

    def starts(path: str):
        return (("line", start) for start, _, _ in conll_sentences(path, spec.conll_tag_field))

    return describe_places(_local_files(spec), starts, rows)


def _where_is(spec: DatasetSpec | None, row: int) -> str:
    return describe_sentences(spec, [row]) if spec is not None else f"sentence {row + 1} (counting from 1)"


def load_token_rows(spec: DatasetSpec, where: str, *, need_tags: bool) -> tuple[list[list[str]], list[list[str]] | None]:
    """(words per sentence, tag names per sentence or None) of one data slot."""
    with naming_slot(where):
        conll = is_conll(spec)
    if conll:
        sentences, tags = [], []
        for file in _local_files(spec):
            s, t = read_conll(file, spec.conll_tag_field)
            sentences += s
            tags += t
        if spec.limit is not None:
            sentences, tags = sentences[: spec.limit], tags[: spec.limit]
        if not sentences:
            raise DataError(f"{where}: {spec.path!r} holds no sentences; expected CoNLL lines `word ... tag`.")
        return sentences, tags
    ds = load_spec(spec, where)
    columns = ds.column_names or []
    if spec.tokens_column not in columns:
        raise DataError(
            f"{where}: column {spec.tokens_column!r} not found in {spec.path!r}; the columns are {columns}. "
            "Set `tokens_column` (and `tags_column`) to the columns holding the words and their tags."
        )
    sentences = [[("" if w is None else str(w)) for w in (row or [])] for row in ds[spec.tokens_column]]
    if spec.tags_column not in columns:
        if need_tags:
            raise DataError(
                f"{where}: column {spec.tags_column!r} not found in {spec.path!r}; the columns are {columns}. "
                "Set `tags_column` to the column holding one tag per word."
            )
        return sentences, None
    feature = ds.features[spec.tags_column]
    names = getattr(getattr(feature, "feature", None), "names", None)  # List(ClassLabel): Hub NER datasets
    tags = [[names[t] if names is not None else str(t) for t in (row or [])] for row in ds[spec.tags_column]]
    for row, (words, row_tags) in enumerate(zip(sentences, tags)):
        if len(words) != len(row_tags):
            raise DataError(
                f"{where}: {describe_rows(spec, [row])} has {len(words)} words but {len(row_tags)} tags; "
                "every word needs exactly one tag."
            )
    return sentences, tags


def entity_type(tag: str) -> str | None:
    """`B-PER` -> `PER`; `O` -> None."""
    return None if tag == "O" else tag[2:]


def check_bio(tags: list[list[str]], where: str, spec: DatasetSpec | None = None) -> None:
    """Refuse tags outside BIO/IOB2; `spec` (the slot's) locates the sentence in its file."""
    for row, sentence in enumerate(tags):
        for tag in sentence:
            if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                raise DataError(
                    f"{where}: the sentence at {_where_is(spec, row)} has the tag {tag!r}; expected BIO/IOB2 tags (`O`, `B-TYPE`, "
                    "`I-TYPE`). Convert other schemes (BIOES, plain types) to IOB2 first."
                )


def bio_label_names(tag_lists: list[list[list[str]]]) -> list[str]:
    """`O`, then `B-`/`I-` of every entity type seen, types sorted."""
    types = sorted({entity_type(t) for tags in tag_lists for sentence in tags for t in sentence} - {None})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def tag_ids(tags: list[list[str]], label_names: list[str], where: str, spec: DatasetSpec | None = None) -> list[list[int]]:
    """Tag ids per sentence; `spec` (the slot's) locates a sentence with a tag outside `label_names`."""
    label2id = {name: i for i, name in enumerate(label_names)}
    out = []
    for row, sentence in enumerate(tags):
        unknown = [t for t in sentence if t not in label2id]
        if unknown:
            raise DataError(
                f"{where}: the sentence at {_where_is(spec, row)} has the tag {unknown[0]!r}, which is not in the label set {label_names}; "
                "fix the sentence, or list every tag in `data.label_names`."
            )
        out.append([label2id[t] for t in sentence])
    return out


def check_sentence_overlap(
    train: list[str], evaluation: list[str], where: str, max_share: float = LABELED_REPEAT_SHARE, other: str = LABELED_DATA
) -> None:
    """Refuse an evaluation split that largely repeats the training sentences of `other` (the labeled ones, or the
    unlabeled pool). Up to `max_share` of the evaluation sentences may repeat them (see `LABELED_REPEAT_SHARE`);
    they are counted."""
    seen = {s.strip().lower() for s in train}
    shared = sum(1 for s in evaluation if s.strip().lower() in seen)
    if shared > max_share * len(evaluation):
        check_no_overlap(train, evaluation, where, other)
    if shared:
        logger.info("%s: %d of %d sentences also occur in %s (repeated lines such as datelines).",
                    where, shared, len(evaluation), other)


def load_ner_data(cfg: DataConfig) -> TextData:
    """Load and check every slot of `cfg` for token classification, applying the protocol."""
    for key in ("num_per_class", "fraction_per_class"):
        if getattr(cfg.sampling, key) is not None:
            raise DataError(
                f"data.sampling.{key}: NER sentences have no single class to stratify by; draw labeled "
                "sentences with `data.sampling.num_examples` instead."
            )
    slots = {"data.labeled": cfg.labeled, "data.validation": cfg.validation, "data.test": cfg.test}
    rows = {
        where: load_token_rows(spec, where, need_tags=True) for where, spec in slots.items() if spec is not None
    }
    for where, (_, tags) in rows.items():
        check_bio(tags, where, slots[where])
    label_names = list(cfg.label_names) if cfg.label_names else bio_label_names([t for _, t in rows.values()])

    def table(words, tags, where, tag_column="label"):
        columns = {"tokens": words}
        if tags is not None:
            columns[tag_column] = tag_ids(tags, label_names, where, slots.get(where, cfg.unlabeled))
        return datasets.Dataset.from_dict(columns)

    labeled = table(*rows["data.labeled"], "data.labeled")
    labeled, pool, labeled_rows = split_labeled_rows(  # recorded per sentence: its words joined by spaces, a tag per word
        labeled, cfg.sampling, lambda ds: [" ".join(words) for words in ds["tokens"]],
        lambda ds: [[label_names[t] for t in tags] for tags in ds["label"]],
    )

    unlabeled = None
    if cfg.unlabeled is not None:
        words, tags = load_token_rows(cfg.unlabeled, "data.unlabeled", need_tags=False)
        if tags is not None:
            check_bio(tags, "data.unlabeled", cfg.unlabeled)
        unlabeled = table(words, tags, "data.unlabeled", ANALYSIS_LABEL)
        if not is_conll(cfg.unlabeled):  # a pool labeled by a self-training teacher carries its targets
            raw = load_spec(cfg.unlabeled, "data.unlabeled")
            for column in (PSEUDO_TARGET, ANALYSIS_LABEL):
                if column in (raw.column_names or []) and column not in unlabeled.column_names:
                    unlabeled = unlabeled.add_column(column, raw[column])
    if pool is not None:
        unlabeled = pool if unlabeled is None else datasets.concatenate_datasets([pool, unlabeled])
    if unlabeled is not None:
        unlabeled = unlabeled.add_column(INDEX, list(range(len(unlabeled))))

    def joined(ds):
        return [" ".join(words) for words in ds["tokens"]]

    evaluation = {}
    unlabeled_sentences = joined(unlabeled) if unlabeled is not None else []
    for where in ("data.validation", "data.test"):
        if where in rows:
            evaluation[where] = table(*rows[where], where)
            check_sentence_overlap(joined(labeled), joined(evaluation[where]), where)
            check_sentence_overlap(
                unlabeled_sentences, joined(evaluation[where]), where, UNLABELED_REPEAT_SHARE, "the unlabeled data"
            )
    return TextData(
        labeled, unlabeled, evaluation.get("data.validation"), evaluation.get("data.test"), label_names, labeled_rows
    )
