"""The unlabeled pool that a trained teacher labels: `ssl-text self-train` and `ssl-text distill`."""

from __future__ import annotations

import datasets
from accelerate import PartialState

from ssl_text.config import ConfigError, RunConfig
from ssl_text.data.text_data import TextData


def load_teacher_pool(cfg: RunConfig, command: str) -> TextData:
    """The data of `cfg` (the main process loads it first, so the others read its cache), which must
    hold unlabeled text: `command` (e.g. "self-training") is named in the error when it does not."""
    from ssl_text.tasks import build_task

    with PartialState().main_process_first():
        data = build_task(cfg.task).load_data(cfg.data)
    if data.unlabeled is None:
        raise ConfigError(
            f"{command} has its teacher label unlabeled text, but the config has no `data.unlabeled` and "
            "`data.sampling.rest_as_unlabeled` is false; add `data.unlabeled: {path: ...}` or set "
            "`data.sampling.rest_as_unlabeled: true`."
        )
    if isinstance(data.unlabeled, datasets.IterableDataset):
        raise ConfigError(
            f"{command} has its teacher label the whole unlabeled pool and keeps the labeled pool, which a "
            "streamed corpus cannot give; set `data.unlabeled.streaming: false` (or label a sample of it)."
        )
    return data
