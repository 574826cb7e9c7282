"""`ssl-text pretrain`: self-supervised pretraining of an encoder on unlabeled sequences or text.

The first stage of the pretrain -> fine-tune (-> distil) path: masked-language modelling
(`pretrain.objective: mlm`) from scratch (`model.name_or_path: new:small`, protein task) or
continued from a checkpoint (any `AutoModelForMaskedLM`, text or protein). The loop is the
ordinary `ssl_text.training.trainer.Trainer`; the objective is a loss object like an SSL algorithm's.

RUN_DIR/
  config.yaml        the resolved pretraining config
  checkpoints/       full training state for --resume
  encoder/           the selected model + tokenizer: use as `model.name_or_path` of `ssl-text train`
  logs/              TensorBoard
  metrics.json       held-out masked-token accuracy / loss history, corpus size, timings

The selected model is the one with the best masked-token accuracy on held-out sequences
(`data.validation_fraction`), or the last one when nothing is held out. A new objective (e.g.
a contrastive one) adds its name to `PretrainConfig.objective`, its fields, and an entry in
`OBJECTIVES`.

`pretrain.objective: contrastive` is SimCLR's NT-Xent over two views of each sequence with a
projection head (the first stage of the SimCLRv2 path; see `ssl_text/pipelines/contrastive.py`): the
encoder is saved to `encoder/` together with `projection_head.safetensors` / `.json`, and the
selected model is the one with the lowest held-out NT-Xent loss.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed

from ssl_text.algorithms.base import LossOutput, TrainState
from ssl_text.augment.registry import check_view
from ssl_text.config import (
    ConfigError,
    DatasetSpec,
    ModelConfig,
    TrainerConfig,
    ViewConfig,
    apply_overrides,
    blame_override,
    from_dict,
    read_yaml,
    validate_trainer,
)
from ssl_text.config.keys import LB, LB_LABELS, METRICS_FILE
from ssl_text.config.seeds import derive_seed
from ssl_text.data.batching import BatchStream, pad_ids
from ssl_text.data.loading import _fingerprints, add_text_column, load_spec
from ssl_text.models.resolve import resolve_model_path
from ssl_text.pipelines.contrastive import ContrastiveCollator, ContrastiveObjective, batch_sums, held_out_batches
from ssl_text.tasks import build_task
from ssl_text.training.lifecycle import ConfigFile, run_accelerator, run_lifecycle, warn_once
from ssl_text.training.run_config import check_max_length
from ssl_text.training.run_dir import write_text_atomic
from ssl_text.training.trainer import BEST, Trainer

ENCODER = "encoder"
EVAL_MASK_SALT = 7919  # held-out batch k is masked with derive_seed(seed, EVAL_MASK_SALT, k): the same masks at every evaluation
TOKENIZE_CAP = 1_000_000  # with `crop: random`, sequences are stored whole and cropped per batch


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------


@dataclass
class PretrainDataConfig:
    unlabeled: list[DatasetSpec]  # every spec's text column(s) become one corpus; labels are ignored
    exclude: list[DatasetSpec] = field(default_factory=list)  # e.g. the test set: its sequences are dropped
    validation_fraction: float = 0.02  # held out for masked-token accuracy and model selection
    max_length: int = 128  # tokens per training sequence, specials included
    crop: Literal["random", "truncate"] = "random"  # longer sequences: a new random window each draw, or the start
    dedupe: bool = True  # drop exact duplicate sequences


@dataclass
class PretrainConfig:
    objective: Literal["mlm", "contrastive"] = "mlm"
    mlm_probability: float = 0.15  # share of tokens predicted
    mask_replace_prob: float = 0.8  # of those: replaced by <mask> ...
    random_replace_prob: float = 0.1  # ... by a random residue/token; the rest are left unchanged
    # objective `contrastive` (SimCLR NT-Xent, ssl_text/pipelines/contrastive.py); the MLM fields above are then unused
    temperature: float = 0.1  # NT-Xent temperature
    pooling: Literal["mean", "cls"] = "mean"  # encoder output -> one vector: mean of the tokens, or the first token
    projection_layers: int = 3  # projection head depth (SimCLRv2: 3)
    projection_dim: int = 128  # the head's output width
    projection_hidden_dim: int | None = None  # its hidden width; default the encoder's hidden size
    projection_norm: Literal["batchnorm", "none"] = "batchnorm"  # Linear+BatchNorm+ReLU (SimCLRv2) or Linear+ReLU
    view1: ViewConfig = field(default_factory=ViewConfig)  # empty views: dropout is the only noise (SimCSE)
    view2: ViewConfig = field(default_factory=ViewConfig)


@dataclass
class PretrainRunConfig:
    data: PretrainDataConfig
    output_dir: str
    task: str = "protein"
    model: ModelConfig = field(default_factory=lambda: ModelConfig(name_or_path="new:small"))
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # lb_batch_size is the MLM batch size


def parse_pretrain_config(raw: dict, source: str = "<config>") -> PretrainRunConfig:
    cfg = from_dict(PretrainRunConfig, dict(raw), source)
    t, p, d = cfg.trainer, cfg.pretrain, cfg.data
    validate_trainer(t, source)
    if not d.unlabeled:
        raise ConfigError(f"{source}: `data.unlabeled` is empty; list at least one dataset spec.")
    if d.max_length <= 4:
        raise ConfigError(f"{source}: `data.max_length` is {d.max_length}; expected > 4.")
    if not 0.0 <= d.validation_fraction < 0.5:
        raise ConfigError(f"{source}: `data.validation_fraction` is {d.validation_fraction}; expected a value in [0, 0.5).")
    if not 0.0 < p.mlm_probability < 1.0:
        raise ConfigError(f"{source}: `pretrain.mlm_probability` is {p.mlm_probability}; expected a value in (0, 1).")
    if p.mask_replace_prob < 0 or p.random_replace_prob < 0 or p.mask_replace_prob + p.random_replace_prob > 1:
        raise ConfigError(
            f"{source}: `pretrain.mask_replace_prob` + `pretrain.random_replace_prob` is "
            f"{p.mask_replace_prob + p.random_replace_prob}; each must be >= 0 and their sum <= 1."
        )
    if p.objective == "contrastive":
        _validate_contrastive(p, source)
    objective_cls = OBJECTIVES[p.objective][0]
    if t.select_metric is not None and t.select_metric not in objective_cls.select_metrics:
        raise ConfigError(
            f"{source}: `trainer.select_metric` is {t.select_metric!r}, which objective `{p.objective}` does not "
            f"report as a score (higher is better); choose one of {list(objective_cls.select_metrics)}, or null for "
            f"its own ({objective_cls.select_metric!r})."
        )
    check_max_length(cfg.model, d.max_length, source)
    return cfg


def _validate_contrastive(p: PretrainConfig, source: str) -> None:
    if p.temperature <= 0:
        raise ConfigError(f"{source}: `pretrain.temperature` is {p.temperature}; expected a positive value, e.g. 0.1.")
    for key in ("projection_layers", "projection_dim"):
        if getattr(p, key) < 1:
            raise ConfigError(f"{source}: `pretrain.{key}` is {getattr(p, key)}; expected a positive integer.")
    if p.projection_hidden_dim is not None and p.projection_hidden_dim < 1:
        raise ConfigError(f"{source}: `pretrain.projection_hidden_dim` is {p.projection_hidden_dim}; expected a positive integer.")
    for name in ("view1", "view2"):
        check_view(getattr(p, name), f"pretrain.{name}", source, text_ops=False)


def load_pretrain_config(path: str | Path, overrides: list[str] | None = None) -> PretrainRunConfig:
    overrides = list(overrides or [])
    raw = apply_overrides(read_yaml(path), overrides)
    try:
        return parse_pretrain_config(raw, str(path))
    except ConfigError as err:  # a key set on the command line is blamed on the override, not the file
        blamed = blame_override(err, str(path), overrides)
        if blamed is None:
            raise
        raise blamed from None


# ---------------------------------------------------------------------------------------
# Masked-language modelling: masking, batches, loss
# ---------------------------------------------------------------------------------------


# Ours, not DataCollatorForLanguageModeling: its draws (bernoulli, any-vocabulary swaps, rows left unmasked) differ from these.
def mlm_mask(
    input_ids: torch.Tensor,  # [B, L]
    maskable: torch.Tensor,  # [B, L] bool: not special, not padding
    *,
    mask_token_id: int,
    replacement_ids: torch.Tensor,  # [R] ids a chosen token may be swapped for
    probability: float,
    mask_replace_prob: float,
    random_replace_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking. Returns `(inputs, labels)`; labels are -100 except at chosen positions.

    Every row with at least one maskable token gets at least one chosen position, so a batch
    of short peptides never has an empty loss.
    """
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & maskable
    empty = ~chosen.any(dim=1) & maskable.any(dim=1)
    if bool(empty.any()):
        score = torch.rand(input_ids.shape, generator=generator).masked_fill(~maskable, -1.0)
        rows = torch.nonzero(empty).squeeze(1)
        chosen[rows, score[rows].argmax(dim=1)] = True
    labels = input_ids.masked_fill(~chosen, -100)
    u = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[chosen & (u < mask_replace_prob)] = mask_token_id
    swap = chosen & (u >= mask_replace_prob) & (u < mask_replace_prob + random_replace_prob)
    n_swap = int(swap.sum())
    if n_swap:
        pick = torch.randint(len(replacement_ids), (n_swap,), generator=generator)
        inputs[swap] = replacement_ids[pick]
    return inputs, labels


def replacement_ids(tokenizer) -> torch.Tensor:
    """Tokens a chosen position may become: the 20 amino acids for a protein vocabulary, else every non-special token."""
    vocab = tokenizer.get_vocab()
    if len(vocab) < 200 and all(aa in vocab for aa in "ACDEFGHIKLMNPQRSTVWY"):
        return torch.tensor(sorted(vocab[aa] for aa in "ACDEFGHIKLMNPQRSTVWY"))
    special = set(tokenizer.all_special_ids)
    return torch.tensor([i for i in range(len(tokenizer)) if i not in special])


class MLMCollator:
    """Rows of token ids -> a masked batch `{"lb": inputs, "lb_labels": labels}` (random windows first)."""

    def __init__(self, tokenizer, config: PretrainConfig, max_length: int, crop: str):
        if tokenizer.mask_token_id is None:
            raise ConfigError("masked-language pretraining needs a tokenizer with a mask token.")
        self.config = config
        self.max_length = max_length
        self.crop = crop
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.replacement_ids = replacement_ids(tokenizer)
        self.num_special = tokenizer.num_special_tokens_to_add()

    def window(self, ids: list[int], generator: torch.Generator) -> list[int]:
        if len(ids) <= self.max_length:
            return ids
        if self.crop == "truncate" or self.num_special != 2:
            return ids[: self.max_length - 1] + ids[-1:] if self.num_special == 2 else ids[: self.max_length]
        inner = len(ids) - 2
        width = self.max_length - 2
        start = int(torch.randint(inner - width + 1, (1,), generator=generator))
        return ids[:1] + ids[1 + start : 1 + start + width] + ids[-1:]

    def __call__(self, rows: dict, generator: torch.Generator) -> dict:
        ids, attention = pad_ids([self.window(s, generator) for s in rows["input_ids"]], self.pad_id)
        maskable = ~torch.isin(ids, self.special_ids) & (attention > 0)
        c = self.config
        inputs, labels = mlm_mask(
            ids,
            maskable,
            mask_token_id=self.mask_id,
            replacement_ids=self.replacement_ids,
            probability=c.mlm_probability,
            mask_replace_prob=c.mask_replace_prob,
            random_replace_prob=c.random_replace_prob,
            generator=generator,
        )
        return {LB: {"input_ids": inputs, "attention_mask": attention}, LB_LABELS: labels}


class MaskedLMObjective:
    """Cross-entropy on the masked positions; the trainer treats it like an SSL algorithm."""

    views = (LB,)
    select_metric = "accuracy"  # held-out masked-token accuracy
    select_metrics = ("accuracy",)  # what `evaluate_mlm` reports where higher is better (not loss, perplexity)

    def __init__(self, config: PretrainConfig):
        self.config = config

    def compute_loss(self, model, batch, state: TrainState) -> LossOutput:
        logits = model(**batch[LB]).logits  # [B, L, V]
        labels = batch[LB_LABELS]  # [B, L], -100 where not predicted
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        with torch.no_grad():
            chosen = labels != -100
            accuracy = (logits.argmax(-1)[chosen] == labels[chosen]).float().mean()
        return LossOutput(total=loss, parts={"loss_mlm": loss.detach(), "mlm_accuracy": accuracy})


OBJECTIVES = {"mlm": (MaskedLMObjective, MLMCollator), "contrastive": (ContrastiveObjective, ContrastiveCollator)}


def load_masked_lm(task, path: str):
    """A model with an MLM head: `new:<size>` built by the task, else `AutoModelForMaskedLM` from `path`."""
    if path.startswith("new:"):
        return task.new_masked_lm(path)
    import transformers
    from transformers import AutoModelForMaskedLM

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return AutoModelForMaskedLM.from_pretrained(path)
    finally:
        transformers.logging.set_verbosity(level)


@torch.no_grad()
def evaluate_mlm(accelerator: Accelerator, model, dataset, collate, batch_size: int, seed: int) -> dict:
    """Masked-token accuracy, loss and perplexity on held-out rows, with the same masks every time."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, device=accelerator.device)  # loss sum, predicted tokens, correct
    for k, start in held_out_batches(accelerator, len(dataset), batch_size):
        generator = torch.Generator().manual_seed(derive_seed(seed, EVAL_MASK_SALT, k))
        batch = collate(dataset[start : start + batch_size], generator)
        inputs = {key: value.to(accelerator.device) for key, value in batch[LB].items()}
        labels = batch[LB_LABELS].to(accelerator.device)
        logits = model(**inputs).logits.float()
        chosen = labels != -100
        totals += batch_sums(accelerator, [F.cross_entropy(logits[chosen], labels[chosen], reduction="sum"),
                                           chosen.sum(), (logits.argmax(-1)[chosen] == labels[chosen]).sum()])
    model.train(was_training)
    loss = float(totals[0] / totals[1].clamp(min=1))
    return {"accuracy": float(totals[2] / totals[1].clamp(min=1)), "loss": loss, "perplexity": math.exp(min(loss, 50.0))}


# ---------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------


def load_corpus(cfg: PretrainDataConfig, seed: int) -> tuple[datasets.Dataset, datasets.Dataset | None, dict]:
    """The unlabeled specs as one `text` dataset (deduplicated, minus `exclude`), split into train / held-out."""
    parts = []
    for i, spec in enumerate(cfg.unlabeled):
        where = f"data.unlabeled[{i}]"
        ds = add_text_column(load_spec(spec), spec, where)
        parts.append(ds.select_columns(["text"]))
    corpus = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    stats = {"sequences_read": len(corpus)}
    texts = corpus["text"]
    keep = list(range(len(texts)))
    if cfg.dedupe:
        seen: set[str] = set()
        keep = [i for i in keep if not (texts[i] in seen or seen.add(texts[i]))]
    if cfg.exclude:
        banned: set[str] = set()
        for j, spec in enumerate(cfg.exclude):
            banned |= _fingerprints(add_text_column(load_spec(spec), spec, f"data.exclude[{j}]")["text"])
        before = len(keep)
        keep = [i for i in keep if not (_fingerprints([texts[i]]) & banned)]
        stats["excluded"] = before - len(keep)
    corpus = corpus.select(keep)
    stats["sequences"] = len(corpus)
    held_out = None
    n_held = int(round(cfg.validation_fraction * len(corpus)))
    if cfg.validation_fraction > 0 and len(corpus) > 1:
        n_held = min(max(n_held, 1), len(corpus) - 1)
        order = np.random.default_rng([seed, 4242]).permutation(len(corpus))
        held_out = corpus.select(sorted(order[:n_held].tolist()))
        corpus = corpus.select(sorted(order[n_held:].tolist()))
    stats["train_sequences"] = len(corpus)
    stats["held_out_sequences"] = len(held_out) if held_out is not None else 0
    if len(corpus) == 0:
        raise ConfigError("the pretraining corpus is empty after deduplication and exclusion; check `data.unlabeled`.")
    return corpus, held_out, stats


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def pretrain(cfg: PretrainRunConfig, *, resume: bool = False, overwrite: bool = False) -> dict:
    started = time.time()
    accelerator = run_accelerator(cfg.trainer, cfg.output_dir)
    run_dir = Path(cfg.output_dir)
    return run_lifecycle(
        run_dir,
        ConfigFile(cfg, parse_pretrain_config),
        resume=resume,
        overwrite=overwrite,
        validate=lambda: prepare_pretrain(cfg, accelerator),  # a bad corpus or model stops here, before any write
        execute=lambda prepared: _pretrain(cfg, accelerator, prepared, run_dir, resume, started),
    )


def check_pretrain_inputs(cfg: PretrainRunConfig) -> None:
    """What the corpus and the tokenizer can reveal, without building the model (`ssl-text pipeline simclrv2`
    checks every stage before anything is written; `prepare_pretrain` does all of it and more for a run)."""
    task = build_task(cfg.task)
    tokenizer = task.load_tokenizer(resolve_model_path(cfg.model.name_or_path))
    OBJECTIVES[cfg.pretrain.objective][1](tokenizer, cfg.pretrain, cfg.data.max_length, cfg.data.crop)
    with PartialState().main_process_first():
        load_corpus(cfg.data, cfg.trainer.seed)


@dataclass
class PreparedPretrain:
    """Everything a pretraining run needs, built and checked before anything is written."""

    trainer: TrainerConfig  # the run's, with the objective's selection metric filled in
    task: object
    tokenizer: object
    objective: object
    model: torch.nn.Module
    corpus: datasets.Dataset
    held_out: datasets.Dataset | None
    stats: dict
    collate: object


def prepare_pretrain(cfg: PretrainRunConfig, accelerator: Accelerator) -> PreparedPretrain:
    t = cfg.trainer
    set_seed(t.seed)
    task = build_task(cfg.task)
    model_path = resolve_model_path(cfg.model.name_or_path)
    tokenizer = task.load_tokenizer(model_path)
    objective_cls, collator_cls = OBJECTIVES[cfg.pretrain.objective]
    objective = objective_cls(cfg.pretrain)
    # An objective may bring its own model, evaluation, saving and selection metric (contrastive does).
    load_model = getattr(objective, "load_model", None)
    model = load_model(task, model_path) if load_model is not None else load_masked_lm(task, model_path)
    if t.select_metric is None:  # the objective's own (an explicit one was checked at load)
        t = replace(t, select_metric=objective.select_metric)

    with accelerator.main_process_first():
        corpus, held_out, stats = load_corpus(cfg.data, t.seed)
        cap = TOKENIZE_CAP if cfg.data.crop == "random" else cfg.data.max_length

        def encode(batch):
            return {"input_ids": task.tokenize(tokenizer, batch["text"], cap)["input_ids"]}

        corpus = corpus.map(encode, batched=True, desc="tokenize corpus")
        held_out = held_out.map(encode, batched=True, desc="tokenize held-out") if held_out is not None else None
    stats["train_tokens"] = int(sum(min(len(ids), cfg.data.max_length) for ids in corpus["input_ids"]))

    collate = collator_cls(tokenizer, cfg.pretrain, cfg.data.max_length, cfg.data.crop)
    return PreparedPretrain(t, task, tokenizer, objective, model, corpus, held_out, stats, collate)


def _pretrain(
    cfg: PretrainRunConfig, accelerator: Accelerator, prep: PreparedPretrain, run_dir: Path, resume: bool, started: float
) -> dict:
    from ssl_text.pipelines.train import _flat_hparams, _hardware

    t, tokenizer, objective, model = prep.trainer, prep.tokenizer, prep.objective, prep.model
    corpus, held_out, stats, collate = prep.corpus, prep.held_out, prep.stats, prep.collate
    rank, world = accelerator.process_index, accelerator.num_processes
    stream = BatchStream(corpus, t.lb_batch_size, t.seed, collate, rank, world, salt=3)

    def evaluate(model) -> dict:
        run = getattr(objective, "evaluate", None) or evaluate_mlm
        return run(accelerator, model, held_out, collate, t.eval_batch_size, t.seed)

    def save_model(model, path: Path) -> None:
        if hasattr(objective, "save_model"):
            objective.save_model(model, path)
        else:
            model.save_pretrained(path)
        tokenizer.save_pretrained(path)

    if held_out is None:
        warn_once(
            f"no held-out sequences (`data.validation_fraction` is {cfg.data.validation_fraction}): the model of the "
            f"last step is saved as the encoder, and `trainer.eval_every` ({t.eval_every}) has no effect; set "
            "`data.validation_fraction`, e.g. 0.02, to select on held-out sequences."
        )
    accelerator.init_trackers("logs", config=_flat_hparams(cfg))
    trainer = Trainer(
        t,
        accelerator,
        model,
        objective,
        stream,
        None,
        run_dir,
        num_classes=len(tokenizer),
        evaluate=evaluate if held_out is not None else None,
        save_model=save_model,
    )
    progress = trainer.fit(resume=resume)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        encoder = run_dir / ENCODER
        if (run_dir / BEST).is_dir():
            shutil.rmtree(encoder, ignore_errors=True)
            os.replace(run_dir / BEST, encoder)
        elif not encoder.is_dir():  # neither best/ nor encoder/ survived: keep the last model
            accelerator.print(f"no selected model in {run_dir / BEST}; saving the last model as {encoder}.")
            save_model(accelerator.unwrap_model(trainer.model), encoder)
    accelerator.wait_for_everyone()

    metrics: dict = {
        "objective": cfg.pretrain.objective,
        "model": cfg.model.name_or_path,
        "num_parameters": sum(p.numel() for p in accelerator.unwrap_model(trainer.model).parameters()),
        "encoder": str(run_dir / ENCODER),
        "selected_step": progress.best_step if held_out is not None else progress.step,
        "selected_on": (getattr(objective, "selected_on", "held-out masked-token accuracy") if held_out is not None
                        else "last step"),
        "held_out_history": progress.history,
        "corpus": stats,
        "last_train_logs": progress.last_logs,
        "nonfinite_steps_skipped": progress.nonfinite_total,
        "hardware": _hardware(accelerator),
    }
    if held_out is not None:
        metrics["held_out"] = next(h for h in progress.history if h["step"] == progress.best_step)
    metrics["total_seconds"] = round(time.time() - started, 1)
    accelerator.end_training()
    if accelerator.is_main_process:
        write_text_atomic(run_dir / METRICS_FILE, json.dumps(metrics, indent=2))
    return metrics
