"""`ssl-text train`: from a config to a fine-tuned classifier in a run directory.

RUN_DIR/
  config.yaml        the resolved config
  checkpoints/       full training state for --resume
  best/              the selected model (save_pretrained: model, tokenizer, label names)
  logs/              TensorBoard
  metrics.json       validation history, the selected step, test metrics, timings
  plots/             training curves and confusion matrix (PNG, see ssl_text/training/plots.py)
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from ssl_text.algorithms import build_algorithm
from ssl_text.augment.collate import build_collator
from ssl_text.config import ConfigError, RunConfig, read_yaml, save_config, to_dict
from ssl_text.config.keys import CONFIG_FILE, METRICS_FILE
from ssl_text.data.batching import BatchStream
from ssl_text.data.loading import tokenize_column  # noqa: F401  (ssl_text.pipelines.train.tokenize_column is public)
from ssl_text.models.projection import load_classifier
from ssl_text.models.resolve import ModelMismatchError, resolve_model_path
from ssl_text.tasks import build_task
from ssl_text.training.inference import predict_logits
from ssl_text.training.plots import confusion_matrix, write_run_plots
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import acquire_lock, check_run_dir, prepare_run_dir, release_lock, write_text_atomic
from ssl_text.training.streaming import check_streamable, unlabeled_batches
from ssl_text.training.trainer import BEST, Trainer, mixed_precision_for


def check_resume_config(run_dir: Path, cfg: RunConfig) -> None:
    saved_path = run_dir / CONFIG_FILE
    if not saved_path.exists():
        return
    saved = read_yaml(saved_path)
    try:  # fields added since the run was started take their defaults, so they do not count as changes
        saved = to_dict(parse_config(saved, str(saved_path)))
    except ConfigError:
        pass  # compared as written: the differing keys are named below
    current = to_dict(cfg)
    saved.pop("output_dir", None), current.pop("output_dir", None)  # a run directory may be moved
    saved.pop("hub", None), current.pop("hub", None)  # where the model is published does not change training
    if saved != current:
        diffs = sorted(_diff_keys(saved, current))
        raise ConfigError(
            f"--resume: the config differs from the one saved in {saved_path} at {diffs[:5]}; resume with the "
            "same config (the saved one is the reference), or start a new run with another output_dir."
        )


def _diff_keys(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in set(a) | set(b):
            yield from _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")


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


def train(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False) -> dict:
    started = time.time()
    t = cfg.trainer
    accelerator = Accelerator(
        mixed_precision=mixed_precision_for(t.mixed_precision),
        log_with=list(cfg.trainer.report_to) or None,
        project_dir=cfg.output_dir,
    )
    run_dir = Path(cfg.output_dir)
    if accelerator.is_main_process:
        if cfg.hub.push_to_hub:  # a missing or rejected token fails now, not after training
            from ssl_text.hub.push import check_token

            check_token()
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume:
            check_resume_config(run_dir, cfg)
    set_seed(t.seed)
    prepared = prepare(cfg, accelerator)  # bad data or a mismatched model stops here, before any write
    if accelerator.is_main_process:
        prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
        acquire_lock(run_dir)
        save_config(cfg, run_dir / CONFIG_FILE)
    accelerator.wait_for_everyone()
    try:
        return _train(cfg, accelerator, prepared, run_dir, resume, started)
    finally:
        if accelerator.is_main_process:
            release_lock(run_dir)


def prepare(cfg: RunConfig, accelerator: Accelerator) -> Prepared:
    # 1. Data, task, tokenizer and model.
    task = build_task(cfg.task)
    task.check_views(cfg.views)
    with accelerator.main_process_first():
        data = task.load_data(cfg.data)
    model_path = resolve_model_path(cfg.model.name_or_path)
    tokenizer = task.load_tokenizer(model_path)
    model = load_classifier(task, model_path, data.label_names, cfg.model.projection_head_layers)
    check_tokenizer_fits_model(tokenizer, model, model_path)
    algorithm = build_algorithm(cfg.algorithm, len(data.label_names))
    if task.token_level and not getattr(algorithm, "token_level", False):
        from ssl_text.algorithms import ALGORITHMS

        supported = sorted(name for name, cls in ALGORITHMS.items() if getattr(cls, "token_level", False))
        raise ConfigError(
            f"algorithm `{cfg.algorithm.name}` works on one label per text, but task `{cfg.task}` labels every "
            f"token; choose one of the token-level algorithms {supported}."
        )
    needs_unlabeled = any(view.startswith("ulb") for view in algorithm.views)
    if needs_unlabeled and data.unlabeled is None:
        raise ConfigError(
            f"algorithm `{cfg.algorithm.name}` learns from unlabeled text but the config has no "
            "`data.unlabeled` and `data.sampling.rest_as_unlabeled` is false; add one, or use `supervised`."
        )
    check_streamable(algorithm, cfg.algorithm.name, data.unlabeled if needs_unlabeled else None)

    # 2. Tokenize once (cached by `datasets`), then stream padded batches.
    def encode(ds, extra_columns=()):
        return task.encode(ds, tokenizer, cfg.data, data.label_names, extra_columns) if ds is not None else None

    with accelerator.main_process_first():
        labeled = encode(data.labeled)
        aug_columns = sorted(
            {c for view in (cfg.views.weak, cfg.views.strong) for c in view.aug_columns}
            & set(data.unlabeled.column_names if data.unlabeled is not None else [])
        )
        streamed = isinstance(data.unlabeled, datasets.IterableDataset)  # tokenized as drawn (ssl_text/training/streaming.py)
        unlabeled = (data.unlabeled if streamed else encode(data.unlabeled, aug_columns)) if needs_unlabeled else None
        validation = encode(data.validation)
        test = encode(data.test)

    return Prepared(task, tokenizer, model, algorithm, data.label_names, labeled, unlabeled, validation, test)


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
        tokenizer.save_pretrained(path)

    # 3. Train; the trainer evaluates on validation and keeps the best model in RUN_DIR/best.
    accelerator.init_trackers("logs", config=_flat_hparams(cfg))
    counts = task.label_counts(labeled, len(p.label_names))
    if t.select_metric == "accuracy" and task.select_metric != "accuracy":  # "accuracy": the default
        t = replace(t, select_metric=task.select_metric)
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
        token_decoder=task.token_decoder(p.label_names) if task.token_level else None,
        mask_groups=task.mask_groups(p.label_names) if task.token_level else None,
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
        if not task.token_level:  # one label per text: a confusion matrix
            matrix = confusion_matrix(predictions, references, len(p.label_names))
            metrics["confusion_matrix"] = {"split": cm_split, "labels": p.label_names, "matrix": matrix}
    metrics["total_seconds"] = round(time.time() - started, 1)
    accelerator.end_training()
    if accelerator.is_main_process:
        write_text_atomic(run_dir / METRICS_FILE, json.dumps(metrics, indent=2))
        try:
            write_run_plots(run_dir)
        except Exception as err:  # a plot must never cost a finished run
            accelerator.print(f"warning: could not draw the plots in {run_dir / 'plots'}: {err!r}")
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


