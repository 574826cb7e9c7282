"""`ssl-text train`: from a config to a fine-tuned classifier in a run directory.

RUN_DIR/
  config.yaml        the resolved config
  checkpoints/       full training state for --resume
  best/              the selected model (save_pretrained: model, tokenizer, label names), completed at the end
                     into a Hub-ready folder: README.md (the model card), training_config.yaml, metrics.json, plots/
  logs/              TensorBoard
  metrics.json       validation history, the selected step, test metrics, timings
  labeled_rows.jsonl the labeled rows the run drew (index, text hash, label; see ssl_text/data/text_data.py)
  plots/             training curves and confusion matrix (PNG, see ssl_text/training/plots.py)
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from ssl_text.algorithms import build_algorithm
from ssl_text.algorithms.agreement import knn_vote
from ssl_text.augment.collate import build_collator
from ssl_text.augment.precomputed import named_aug_columns
from ssl_text.config import ConfigError, RunConfig, to_dict
from ssl_text.config.keys import KNN_VOTE, LABELED_ROWS_FILE, METRICS_FILE, PSEUDO_TARGET
from ssl_text.data.batching import BatchStream
from ssl_text.data.loading import tokenize_column  # noqa: F401  (ssl_text.pipelines.train.tokenize_column is public)
from ssl_text.data.text_data import TextData, labeled_rows_jsonl
from ssl_text.hub.push import write_model_folder
from ssl_text.models.mean_pooling import MeanPoolingForSequenceClassification
from ssl_text.models.projection import load_classifier
from ssl_text.models.resolve import ModelMismatchError, has_saved_head, resolve_model_path
from ssl_text.pipelines.unlabeled_pool import sentence_embedding
from ssl_text.tasks import build_task
from ssl_text.training.head_init import init_head_from_labels
from ssl_text.training.inference import predict_logits
from ssl_text.training.lifecycle import ConfigFile, run_accelerator, run_lifecycle, warn_once
from ssl_text.training.plots import confusion_matrix, write_run_plots
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import write_text_atomic
from ssl_text.training.streaming import check_streamable, unlabeled_batches
from ssl_text.training.trainer import BEST, Trainer


@dataclass
class Prepared:
    """Everything a run needs, built and checked before anything is written."""

    task: object
    tokenizer: object
    model: torch.nn.Module
    algorithm: object
    label_names: list[str]
    labeled: datasets.Dataset
    unlabeled: datasets.Dataset | None
    validation: datasets.Dataset | None
    test: datasets.Dataset | None
    labeled_rows: list | None = None  # the drawn labeled rows (ssl_text.data.text_data.LabeledRow), for labeled_rows.jsonl


def train(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False) -> dict:
    started = time.time()
    accelerator = run_accelerator(cfg.trainer, cfg.output_dir)
    run_dir = Path(cfg.output_dir)

    def validate() -> Prepared:
        if cfg.hub.push_to_hub and accelerator.is_main_process:  # a missing or rejected token fails now, not after training
            from ssl_text.hub.push import check_token

            check_token()
        set_seed(cfg.trainer.seed)
        return prepare(cfg, accelerator)  # bad data or a mismatched model stops here, before any write

    return run_lifecycle(
        run_dir,
        ConfigFile(cfg, parse_config),
        resume=resume,
        overwrite=overwrite,
        validate=validate,
        execute=lambda prepared: _train(cfg, accelerator, prepared, run_dir, resume, started),
    )


def prepare(cfg: RunConfig, accelerator: Accelerator) -> Prepared:
    # 1. Data, task, tokenizer and model. The task's checks of the views and the algorithm ran at load
    # (ssl_text/training/run_config.py), before anything here.
    task, data, algorithm, aug_columns = load_checked_data(cfg, accelerator)
    model_path = resolve_model_path(cfg.model.name_or_path)
    tokenizer = task.load_tokenizer(model_path)
    model = load_classifier(task, model_path, data.label_names, cfg.model.projection_head_layers, cfg.model.pooling)
    check_tokenizer_fits_model(tokenizer, model, model_path)
    needs_unlabeled = learns_from_unlabeled(algorithm)

    # 2. Tokenize once (cached by `datasets`), then stream padded batches.
    def encode(ds, extra_columns=()):
        return task.encode(ds, tokenizer, cfg.data, data.label_names, extra_columns) if ds is not None else None

    with accelerator.main_process_first():
        labeled = encode(data.labeled)
        streamed = isinstance(data.unlabeled, datasets.IterableDataset)  # tokenized as drawn (ssl_text/training/streaming.py)
        unlabeled = (data.unlabeled if streamed else encode(data.unlabeled, aug_columns)) if needs_unlabeled else None
        validation = encode(data.validation)
        test = encode(data.test)
    if getattr(algorithm, "needs_knn_votes", False):  # before the head is fitted: the start model's encoder alone
        unlabeled = with_knn_votes(cfg, accelerator, model, labeled, unlabeled, tokenizer.pad_token_id,
                                   len(data.label_names))
    if isinstance(model, MeanPoolingForSequenceClassification) and not has_saved_head(model_path):
        pseudo = unlabeled if isinstance(unlabeled, datasets.Dataset) and PSEUDO_TARGET in unlabeled.column_names else None
        init_head_from_labels(accelerator, model, labeled, cfg.trainer.eval_batch_size, tokenizer.pad_token_id,
                              len(data.label_names), pseudo)

    return Prepared(
        task, tokenizer, model, algorithm, data.label_names, labeled, unlabeled, validation, test, data.labeled_rows
    )


def with_knn_votes(cfg: RunConfig, accelerator, model, labeled, unlabeled, pad_token_id: int, num_classes: int):
    """`unlabeled` with a `knn_vote` column: each row's label-spreading vote over the kNN graph of the labeled and
    unlabeled rows' sentence embeddings from the start model's encoder (its mean-pooled last hidden states, whatever
    the head; `algorithm.knn_agreement`; `check_streamable` refused a streamed pool earlier)."""

    def embed(rows) -> np.ndarray:
        return predict_logits(accelerator, model, rows, cfg.trainer.eval_batch_size, pad_token_id,
                              forward=sentence_embedding)

    votes = knn_vote(embed(labeled), np.asarray(labeled["label"]), embed(unlabeled), num_classes)
    return unlabeled.add_column(KNN_VOTE, votes.astype(np.float32).tolist())


def load_checked_data(cfg: RunConfig, accelerator) -> tuple[object, TextData, object, list[str]]:
    """(task, data, algorithm, the paraphrase columns the views name) with everything the data can reveal checked,
    no model loaded: the labels, an unlabeled set the algorithm learns from, and the `aug_columns` it must hold.
    `accelerator`: anything with `main_process_first` (an Accelerator, a PartialState)."""
    task = build_task(cfg.task)
    with accelerator.main_process_first():
        data = task.load_data(cfg.data)
    algorithm = build_algorithm(cfg.algorithm, len(data.label_names))
    needs_unlabeled = learns_from_unlabeled(algorithm)
    if needs_unlabeled and data.unlabeled is None:
        raise ConfigError(
            f"algorithm `{cfg.algorithm.name}` learns from unlabeled text but the config has no "
            "`data.unlabeled` and `data.sampling.rest_as_unlabeled` is false; add one, or use `supervised`."
        )
    check_streamable(algorithm, cfg.algorithm.name, data.unlabeled if needs_unlabeled else None)
    aug_columns = check_aug_columns(cfg, data.unlabeled) if needs_unlabeled else []
    return task, data, algorithm, aug_columns


def learns_from_unlabeled(algorithm) -> bool:
    return any(view.startswith("ulb") for view in algorithm.views)


def check_aug_columns(cfg: RunConfig, unlabeled) -> list[str]:
    """The paraphrase columns the views' simple form names (`aug_columns`), sorted; a name the unlabeled data
    lacks stops the run before anything is written (the collator would refuse it only once the run has started)."""
    return named_aug_columns([cfg.views.weak, cfg.views.strong], unlabeled.column_names or [])


def check_tokenizer_fits_model(tokenizer, model, model_path: str) -> None:
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise ModelMismatchError(
            f"the tokenizer has {len(tokenizer)} tokens but the model at {model_path!r} embeds only {vocab}: "
            "they do not belong together. Load the tokenizer saved with the model (same folder or Hub id)."
        )


def _train(cfg: RunConfig, accelerator: Accelerator, p: Prepared, run_dir: Path, resume: bool, started: float) -> dict:
    t = cfg.trainer
    task, tokenizer, algorithm = p.task, p.tokenizer, p.algorithm
    labeled, unlabeled, validation, test = p.labeled, p.unlabeled, p.validation, p.test
    collator = build_collator(task, tokenizer, cfg, algorithm.views, unlabeled, labeled, p.label_names)
    if accelerator.is_main_process and p.labeled_rows is not None:  # said from the start: a crashed run too
        write_text_atomic(run_dir / LABELED_ROWS_FILE, labeled_rows_jsonl(p.labeled_rows))
    rank, world = accelerator.process_index, accelerator.num_processes
    lb_stream = BatchStream(labeled, t.lb_batch_size, t.seed, collator.labeled, rank, world, salt=1)
    ulb_stream = (
        unlabeled_batches(unlabeled, cfg, task, tokenizer, collator.unlabeled, rank, world)
        if unlabeled is not None
        else None
    )

    def evaluate(model, dataset=validation, return_predictions: bool = False):
        logits = predict_logits(accelerator, model, dataset, t.eval_batch_size, tokenizer.pad_token_id)
        metrics, predictions, references = task.score(logits, dataset, p.label_names)
        return (metrics, predictions, references) if return_predictions else metrics

    def save_model(model, path: Path) -> None:
        model.save_pretrained(path)
        tokenizer.model_max_length = cfg.data.max_length  # so `pipeline(..., truncation=True)` cuts where training did
        tokenizer.save_pretrained(path)

    # 3. Train; the trainer evaluates on validation and keeps the best model in RUN_DIR/best.
    if validation is None:
        warn_once(
            f"the config has no `data.validation`: the model of the last step is the one selected and tested, and "
            f"`trainer.eval_every` ({t.eval_every}) has no effect; add a validation split to select on it."
        )
    accelerator.init_trackers("logs", config=_flat_hparams(cfg))
    counts = task.label_counts(labeled, len(p.label_names))
    trainer = Trainer(
        t,
        accelerator,
        p.model,
        algorithm,
        lb_stream,
        ulb_stream,
        run_dir,
        num_classes=len(p.label_names),
        evaluate=evaluate if validation is not None else None,
        save_model=save_model,
        label_prior=counts / counts.sum(),
        token_decoder=task.token_decoder(p.label_names),
        mask_groups=task.mask_groups(p.label_names),
    )
    progress = trainer.fit(resume=resume)
    train_seconds = time.time() - started

    # 4. Test the selected model, reloaded from disk exactly as a user would load it.
    metrics: dict = {
        "algorithm": cfg.algorithm.name,
        "selected_step": progress.best_step if validation is not None else progress.step,
        "selected_on": "validation" if validation is not None else "last step",
        "select_metric": t.select_metric,
        "validation_history": progress.history,
        "num_labeled": len(labeled),
        "num_unlabeled": len(unlabeled) if isinstance(unlabeled, datasets.Dataset) else 0 if unlabeled is None else "streamed",
        "label_names": p.label_names,
        "last_train_logs": progress.last_logs,
        "nonfinite_steps_skipped": progress.nonfinite_total,
        "train_seconds": round(train_seconds, 1),
        "hardware": _hardware(accelerator),
    }
    if validation is not None:
        metrics["validation"] = next(h for h in progress.history if h["step"] == progress.best_step)
    cm_split, cm_data = ("test", test) if test is not None else ("validation", validation)
    if cm_data is not None:  # the test split (else validation) also gives the confusion matrix plot
        best = task.load_model(str(run_dir / BEST), p.label_names)
        best = accelerator.prepare(best)
        split_metrics, predictions, references = evaluate(best, cm_data, return_predictions=True)
        if test is not None:
            metrics["test"] = split_metrics
            # few labels rarely come with a validation split worth selecting on: the last step's test figures too
            last_is_selected = metrics["selected_step"] == progress.step
            metrics["test_last_step"] = split_metrics if last_is_selected else evaluate(trainer.model_to_report(), test)
        if not task.token_level:  # one label per text: a confusion matrix
            matrix = confusion_matrix(predictions, references, len(p.label_names))
            metrics["confusion_matrix"] = {"split": cm_split, "labels": p.label_names, "matrix": matrix}
    metrics["total_seconds"] = round(time.time() - started, 1)
    accelerator.end_training()
    if accelerator.is_main_process:
        try:
            write_run_plots(run_dir, metrics)
        except Exception as err:  # a plot must never cost a finished run
            accelerator.print(f"warning: could not draw the plots in {run_dir / 'plots'}: {err!r}")
        write_model_folder(run_dir, metrics)  # best/: card, config, metrics and plots beside the model, for the Hub
        # Last: the metrics file marks the run finished (--resume then keeps it), so everything else is in place.
        write_text_atomic(run_dir / METRICS_FILE, json.dumps(metrics, indent=2))
        if cfg.hub.push_to_hub:
            from ssl_text.hub.push import HubError, push_run

            h = cfg.hub
            try:
                url = push_run(run_dir, h.repo_id, private=h.private, revision=h.revision)
            except HubError as err:
                raise HubError(
                    f"{err} The run itself is complete in {run_dir}; push it later with "
                    f"`ssl-text push {run_dir} {h.repo_id}`."
                ) from None
            accelerator.print(f"pushed {run_dir} to the Hub: {url}")
    return metrics


def _flat_hparams(cfg: RunConfig) -> dict:
    flat = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif isinstance(node, (int, float, str, bool)):
            flat[prefix.rstrip(".")] = node

    walk(to_dict(cfg), "")
    return flat


def _hardware(accelerator: Accelerator) -> str:
    device = accelerator.device
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    return f"{accelerator.num_processes} x {name}"


