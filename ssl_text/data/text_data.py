"""A run's data, assembled: every slot of `data` loaded and checked, labels mapped to ids, the
labeled set drawn by the benchmark protocol and the rest joined to the unlabeled pool (read whole,
or as a stream)."""

from __future__ import annotations

from dataclasses import dataclass

import datasets

from ssl_text.config import DataConfig, DatasetSpec
from ssl_text.config.keys import INDEX, PSEUDO_TARGET
from ssl_text.data.loading import (
    ANALYSIS_LABEL,
    DataError,
    add_label_ids,
    add_text_column,
    check_no_overlap,
    check_unlabeled_is_new,
    load_spec,
    raw_label_values,
    resolve_label_names,
    split_labeled,
)
from ssl_text.data.streamed import stream_unlabeled


@dataclass
class TextData:
    """Everything a text run trains and evaluates on, labels already mapped to ids."""

    labeled: datasets.Dataset
    unlabeled: datasets.Dataset | datasets.IterableDataset | None  # iterable: `data.unlabeled.streaming`
    validation: datasets.Dataset | None
    test: datasets.Dataset | None
    label_names: list[str]



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
    raw_lb = load_spec(cfg.labeled)
    raw_lb = add_text_column(raw_lb, cfg.labeled, "data.labeled")
    label_names = resolve_label_names(cfg, raw_label_values(raw_lb, cfg.labeled, "data.labeled"))
    labeled = add_label_ids(raw_lb, cfg.labeled, cfg, label_names, "data.labeled")

    labeled, pool = split_labeled(labeled, cfg.sampling)

    unlabeled = None
    if cfg.unlabeled is not None and cfg.unlabeled.streaming:  # read lazily, never whole; the pool leads the stream
        unlabeled, pool = stream_unlabeled(cfg, label_names, labeled["text"], pool), None
    elif cfg.unlabeled is not None:
        unlabeled = add_text_column(load_spec(cfg.unlabeled), cfg.unlabeled, "data.unlabeled")
        lb_col = cfg.unlabeled.label_column
        if lb_col and lb_col in unlabeled.column_names:
            unlabeled = add_label_ids(unlabeled, cfg.unlabeled, cfg, label_names, "data.unlabeled", ANALYSIS_LABEL)
    if pool is not None:
        unlabeled = pool if unlabeled is None else datasets.concatenate_datasets([pool, unlabeled])
    in_memory = isinstance(unlabeled, datasets.Dataset)
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
        ds = add_text_column(load_spec(spec), spec, where)
        ds = add_label_ids(ds, spec, cfg, label_names, where)
        check_no_overlap(labeled["text"], ds["text"], where)
        return ds.select_columns(["text", "label"])

    validation = eval_split(cfg.validation, "data.validation")
    test = eval_split(cfg.test, "data.test")
    labeled = labeled.select_columns(["text", "label"])
    return TextData(labeled, unlabeled, validation, test, label_names)
