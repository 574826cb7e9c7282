"""`ssl-text evaluate` and `ssl-text predict` on a finished run directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import datasets
import numpy as np
from accelerate import Accelerator
from transformers import AutoConfig

from ssl_text.config import DatasetSpec, RunConfig, read_yaml
from ssl_text.config.keys import CONFIG_FILE
from ssl_text.data.loading import DataError, load_spec, valid_unicode
from ssl_text.pipelines.train import tokenize_column
from ssl_text.tasks import build_task
from ssl_text.training.inference import predict_logits, softmax
from ssl_text.training.run_config import parse_config
from ssl_text.training.trainer import BEST


def load_run(run_dir: str | Path) -> tuple[RunConfig, Path]:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists() or not (run_dir / BEST).is_dir():
        raise DataError(
            f"{run_dir} is not a finished ssl-text run (expected {CONFIG_FILE} and {BEST}/); "
            "pass the output_dir of a completed `ssl-text train`."
        )
    cfg = parse_config(read_yaml(run_dir / CONFIG_FILE), str(run_dir / CONFIG_FILE))
    return cfg, run_dir / BEST


def _load_model(cfg: RunConfig, model_dir: Path):
    """The selected model of a run, with its label names as saved in its config."""
    task = build_task(cfg.task)
    tokenizer = task.load_tokenizer(str(model_dir))
    id2label = AutoConfig.from_pretrained(model_dir).id2label
    label_names = [id2label[i] for i in range(len(id2label))]
    return task, tokenizer, task.load_model(str(model_dir), label_names), label_names


def evaluate_run(run_dir: str, spec: DatasetSpec, batch_size: int = 64) -> dict:
    cfg, model_dir = load_run(run_dir)
    task, tokenizer, model, label_names = _load_model(cfg, model_dir)
    accelerator = Accelerator()
    ds = task.encode(task.load_eval_split(spec, cfg.data, label_names, "--data"), tokenizer, cfg.data, label_names)
    model = accelerator.prepare(model)
    logits = predict_logits(accelerator, model, ds, batch_size, tokenizer.pad_token_id)
    return task.score(logits, ds, label_names)[0]


def eval_spec_from_args(cfg: RunConfig, path: str, split: str | None, column_names, text_columns, label_column):
    """The run's labeled spec (same column mapping) pointed at new data, with CLI overrides."""
    changes = {"path": path, "data_files": None, "limit": None, "streaming": False}
    if split is not None:
        changes["split"] = split
    if column_names is not None:
        changes["column_names"] = column_names
    if text_columns is not None:
        changes["text_columns"] = text_columns
    if label_column is not None:
        changes["label_column"] = label_column
    return dataclasses.replace(cfg.data.labeled, **changes)


def read_texts(path: str, text_column: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"--input {path} does not exist; give a .txt file (one text per line), .csv, .jsonl or .parquet.")
    if file.suffix == ".txt":
        return [line.rstrip("\n") for line in file.read_text(encoding="utf-8", errors="replace").splitlines()]
    ds = load_spec(DatasetSpec(path=str(file), text_columns=[text_column], label_column=None))
    if text_column not in ds.column_names:
        raise DataError(f"--input {path} has no column {text_column!r} (columns: {ds.column_names}); set --text-column.")
    return ["" if t is None else str(t) for t in ds[text_column]]


def predict_texts(run_dir: str, texts: list[str], batch_size: int = 64) -> list[dict]:
    """One record per text: the label and class probabilities, or (NER) the entity spans."""
    cfg, model_dir = load_run(run_dir)
    task, tokenizer, model, label_names = _load_model(cfg, model_dir)
    texts = [valid_unicode(t) for t in texts]

    def probabilities(texts: list[str]) -> np.ndarray:  # batched inference, for tasks with one label per text
        accelerator = Accelerator()
        ds = tokenize_column(datasets.Dataset.from_dict({"text": texts}), task, tokenizer, cfg.data.max_length, "text", "input_ids")
        return softmax(predict_logits(accelerator, accelerator.prepare(model), ds, batch_size, tokenizer.pad_token_id))

    return task.predict(model, tokenizer, texts, label_names, batch_size, probabilities)


def write_jsonl(records: list[dict], out) -> None:
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
