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

import datasets

from ssl_text.config import DataConfig, DatasetSpec
from ssl_text.config.keys import INDEX, PSEUDO_TARGET
from ssl_text.data.loading import ANALYSIS_LABEL, DataError, _local_files, check_no_overlap, load_spec, split_labeled
from ssl_text.data.text_data import TextData

logger = logging.getLogger(__name__)

CONLL_SUFFIXES = (".txt", ".conll", ".iob", ".iob2", ".bio")
DOCSTART = "-DOCSTART-"
_FIELD_SEPARATOR = re.compile(r"[ \t]+")  # not str.split(): U+FEFF, U+00A0 and the like stay inside words


def read_conll(path: str, tag_field: int = -1) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of a CoNLL file: one `word ... tag` line per word, blank lines between sentences,
    `-DOCSTART-` lines skipped. Returns (words per sentence, tags per sentence)."""
    sentences, tags, words, labels = [], [], [], []

    def flush():
        if words:
            sentences.append(list(words))
            tags.append(list(labels))
            words.clear(), labels.clear()

    with open(path, encoding="utf-8", newline="") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n").strip(" \t")
            if not line:
                flush()
                continue
            fields = line.split("\t") if "\t" in line else _FIELD_SEPARATOR.split(line)
            if fields[0] == DOCSTART:
                flush()
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
            words.append(fields[0])
            labels.append(tag)
    flush()
    return sentences, tags


def is_conll(spec: DatasetSpec) -> bool:
    if Path(spec.path).is_dir():  # a save_to_disk folder
        return False
    files = _local_files(spec)
    return bool(files) and all(Path(f).suffix.lower() in CONLL_SUFFIXES for f in files)


def load_token_rows(spec: DatasetSpec, where: str, *, need_tags: bool) -> tuple[list[list[str]], list[list[str]] | None]:
    """(words per sentence, tag names per sentence or None) of one data slot."""
    if is_conll(spec):
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
    ds = load_spec(spec)
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
                f"{where}: row {row} of {spec.path!r} has {len(words)} words but {len(row_tags)} tags; "
                "every word needs exactly one tag."
            )
    return sentences, tags


def entity_type(tag: str) -> str | None:
    """`B-PER` -> `PER`; `O` -> None."""
    return None if tag == "O" else tag[2:]


def check_bio(tags: list[list[str]], where: str) -> None:
    for row, sentence in enumerate(tags):
        for tag in sentence:
            if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                raise DataError(
                    f"{where}: sentence {row} has the tag {tag!r}; expected BIO/IOB2 tags (`O`, `B-TYPE`, "
                    "`I-TYPE`). Convert other schemes (BIOES, plain types) to IOB2 first."
                )


def bio_label_names(tag_lists: list[list[list[str]]]) -> list[str]:
    """`O`, then `B-`/`I-` of every entity type seen, types sorted."""
    types = sorted({entity_type(t) for tags in tag_lists for sentence in tags for t in sentence} - {None})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def tag_ids(tags: list[list[str]], label_names: list[str], where: str) -> list[list[int]]:
    label2id = {name: i for i, name in enumerate(label_names)}
    out = []
    for row, sentence in enumerate(tags):
        unknown = [t for t in sentence if t not in label2id]
        if unknown:
            raise DataError(
                f"{where}: sentence {row} has the tag {unknown[0]!r}, which is not in the label set {label_names}; "
                "fix the sentence, or list every tag in `data.label_names`."
            )
        out.append([label2id[t] for t in sentence])
    return out


def check_sentence_overlap(train: list[str], evaluation: list[str], where: str, max_share: float = 0.05) -> None:
    """Refuse an evaluation split that largely repeats the labeled sentences. A few repeats are normal in NER
    corpora (CoNLL-2003 repeats datelines and table headers such as `LONDON 1996-08-30` across its splits),
    so up to `max_share` of the evaluation sentences may also be labeled training sentences; they are counted."""
    seen = {s.strip().lower() for s in train}
    shared = sum(1 for s in evaluation if s.strip().lower() in seen)
    if shared > max_share * len(evaluation):
        check_no_overlap(train, evaluation, where)
    if shared:
        logger.info("%s: %d of %d sentences also occur in the labeled data (repeated lines such as datelines).",
                    where, shared, len(evaluation))


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
        check_bio(tags, where)
    label_names = list(cfg.label_names) if cfg.label_names else bio_label_names([t for _, t in rows.values()])

    def table(words, tags, where, tag_column="label"):
        columns = {"tokens": words}
        if tags is not None:
            columns[tag_column] = tag_ids(tags, label_names, where)
        return datasets.Dataset.from_dict(columns)

    labeled = table(*rows["data.labeled"], "data.labeled")
    labeled, pool = split_labeled(labeled, cfg.sampling)

    unlabeled = None
    if cfg.unlabeled is not None:
        words, tags = load_token_rows(cfg.unlabeled, "data.unlabeled", need_tags=False)
        if tags is not None:
            check_bio(tags, "data.unlabeled")
        unlabeled = table(words, tags, "data.unlabeled", ANALYSIS_LABEL)
        if not is_conll(cfg.unlabeled):  # a pool labeled by a self-training teacher carries its targets
            raw = load_spec(cfg.unlabeled)
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
    for where in ("data.validation", "data.test"):
        if where in rows:
            evaluation[where] = table(*rows[where], where)
            check_sentence_overlap(joined(labeled), joined(evaluation[where]), where)
    return TextData(labeled, unlabeled, evaluation.get("data.validation"), evaluation.get("data.test"), label_names)
