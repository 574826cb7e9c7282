"""The recommended semi-supervised recipe for text classification: `ssl-text recipe CONFIG`.

Stages, each a folder of OUTPUT that a later run can start from:

1. `warm_start/`: contrastive training of the sentence encoder on pairs of labeled texts (same label: similar,
   different labels: dissimilar), with SetFit's trainer (`setfit.Trainer.train_embeddings`). A
   sentence-transformers folder: `model.name_or_path: OUTPUT/warm_start` starts any run from it.
2. `pool/`: the unlabeled pool, embedded by that encoder and pseudo-labeled where two votes agree: a logistic
   regression of the labeled embeddings and a kNN label spreading over labeled and unlabeled embeddings
   (ssl_text/algorithms/agreement.py); the `recipe.keep` share of the pool, most confident first, per class in
   the labeled class shares. A dataset with a `pseudo_target` column, as `ssl-text self-train` writes its pools,
   and `stats.json` (its size, classes and, when the pool's true labels are known, their accuracy).
3. `student/`: an ordinary run directory: the warm-started encoder with a mean-pooling head, started as the
   logistic regression of the labels and pseudo-labels, trained by `noisy_student` on both under the strong view
   for `recipe.student_steps` (the config's other `trainer` settings). Without a validation split its last step is
   the model (`student/best`).

`recipe.json` records each stage's seconds, the pool's statistics and the student's test figures. A finished stage
is kept on `--resume`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ssl_text.algorithms.agreement import agreement_rows, knn_vote
from ssl_text.algorithms.noisy_student import NoisyStudent
from ssl_text.config import ConfigError, DatasetSpec, RunConfig, to_dict
from ssl_text.config.keys import ANALYSIS_LABEL, INDEX, PSEUDO_TARGET
from ssl_text.data.shards import save_dataset_atomic
from ssl_text.models.resolve import resolve_model_path
from ssl_text.pipelines.train import prepare, train
from ssl_text.pipelines.unlabeled_pool import load_teacher_pool
from ssl_text.training.head_init import fit_head
from ssl_text.training.inference import softmax
from ssl_text.training.lifecycle import ConfigFile, run_lifecycle
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import write_text_atomic

NAME = "recipe"  # the recipe's name in summaries and the quickstart
WARM_START, POOL, STUDENT = "warm_start", "pool", "student"
SUMMARY_FILE = "recipe.json"
TIMINGS_FILE = "stage_seconds.json"
STATS_FILE = "stats.json"
EMBED_BATCH_SIZE = 64
PAIRS_PER_ITERATION = 2  # SetFit draws a positive and a negative pair per text and iteration


def recipe(cfg: RunConfig, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Run the three stages into `cfg.output_dir`; return the student's metrics with the stages' records."""
    out = Path(cfg.output_dir)

    def validate() -> None:
        from accelerate import PartialState

        if PartialState().num_processes > 1:  # every process would run the SetFit warm start into one folder
            raise ConfigError("`ssl-text recipe` runs in one process: its warm start and pool stages are not shared out "
                              "across processes; run it without `accelerate launch` (or with --num_processes 1).")
        if cfg.task != "text_classification":
            raise ConfigError(f"`ssl-text recipe` classifies whole texts; the config's task is `{cfg.task}`. Use "
                              "`ssl-text train` with an algorithm for it.")
        from accelerate import Accelerator

        from ssl_text.training.trainer import mixed_precision_for

        prepare(cfg, Accelerator(mixed_precision=mixed_precision_for(cfg.trainer.mixed_precision)))
        data = load_teacher_pool(cfg, "the recipe")
        if len(set(data.labeled["label"])) < 2:
            raise ConfigError("the recipe's contrastive warm start pairs texts of different labels, but the labeled "
                              "data has one class; label at least two classes.")

    return run_lifecycle(
        out,
        ConfigFile(cfg, parse_config),
        resume=resume,
        overwrite=overwrite,
        validate=validate,
        execute=lambda _: _run_stages(cfg, out),
        finished=None,  # each stage keeps its finished output itself
    )


def _run_stages(cfg: RunConfig, out: Path) -> dict:
    import torch
    from accelerate import PartialState

    from ssl_text.training.trainer import resolve_num_threads

    state = PartialState()
    main = state.is_main_process
    # the warm start and the pool run before the student's trainer sets `trainer.num_threads`: set it first, or torch
    # takes every core in each process (the quickstart's two workers then ran the warm start 2x slower)
    torch.set_num_threads(resolve_num_threads(cfg.trainer.num_threads, state.num_processes)[0])
    timings = out / TIMINGS_FILE  # each stage's seconds when it ran: a resumed recipe keeps those of finished stages
    seconds: dict[str, float] = json.loads(timings.read_text()) if timings.is_file() else {}

    def timed(stage: str, run):
        started = time.time()
        result = run()
        if stage not in seconds or stage == STUDENT:  # a kept stage keeps its time; the student's grows on resume
            seconds[stage] = round(seconds.get(stage, 0.0) + time.time() - started, 1)
            if main:
                write_text_atomic(timings, json.dumps(seconds, indent=2))
        return result

    data = load_teacher_pool(cfg, "the recipe")
    warm = timed(WARM_START, lambda: warm_start(cfg, data, out / WARM_START))
    stats = timed(POOL, lambda: pseudo_label_pool(cfg, data, warm, out / POOL))
    metrics = timed(STUDENT, lambda: train(student_config(cfg, out, warm), resume=(out / STUDENT).exists()))
    summary = {"recipe": NAME, "seconds": seconds, "pool": stats, "student": {k: metrics[k] for k in metrics
               if k in ("selected_step", "selected_on", "validation", "test", "test_last_step")}}
    if main:
        write_text_atomic(out / SUMMARY_FILE, json.dumps(summary, indent=2))
    return {**metrics, "total_seconds": round(sum(seconds.values()), 1), "recipe": summary}


def warm_start(cfg: RunConfig, data, folder: Path) -> Path:
    """Contrastive training of the encoder on labeled pairs (SetFit's body stage); the encoder saved to `folder`."""
    texts, labels = list(data.labeled["text"]), [int(y) for y in data.labeled["label"]]
    return contrastive(resolve_model_path(cfg.model.name_or_path), texts, labels, folder, cfg,
                       iterations=cfg.recipe.warm_start_iterations, max_steps=cfg.recipe.warm_start_max_steps or -1)


def contrastive(start: str | Path, texts: list[str], labels: list[int], folder: Path, cfg: RunConfig, *,
                iterations: int = 1, max_steps: int = -1) -> Path:
    """SetFit's contrastive body training (`setfit.Trainer.train_embeddings`: pairs of same-label texts pulled
    together, of different labels pushed apart) of the sentence encoder at `start`, saved to `folder` as a
    sentence-transformers folder; kept as it is when `folder` already holds one. `max_steps` > 0 caps the batches.
    Always in fp32, whatever `trainer.mixed_precision` says: under bf16 autocast it ran 1.8x faster on a bf16 CPU,
    but its pool pseudo-labels were 1 to 5 points less accurate (docs/benchmarks.md, quickstart section)."""
    if (folder / "modules.json").is_file():
        return folder
    from accelerate.state import AcceleratorState
    from setfit import SetFitModel, Trainer, TrainingArguments

    batch_size = cfg.recipe.warm_start_batch_size
    natural = math.ceil(PAIRS_PER_ITERATION * iterations * len(texts) / batch_size)  # SetFit's own count of batches
    max_steps = min(max_steps, natural) if max_steps > 0 else -1  # a cap, never more passes than SetFit makes
    with tempfile.TemporaryDirectory(prefix="contrastive_") as scratch, _setfit_errors_only():
        model = SetFitModel.from_pretrained(str(start), device="cpu")
        args = TrainingArguments(
            output_dir=scratch,
            batch_size=batch_size,
            num_iterations=iterations,
            num_epochs=1,
            max_steps=max_steps,
            max_length=cfg.data.max_length,
            seed=cfg.trainer.seed,
            report_to="none",
            show_progress_bar=False,
            logging_strategy="no",
            save_strategy="no",
        )
        trainer = Trainer(model=model, args=args)
        _quiet_setfit(trainer)
        trainer.train_embeddings(texts, labels, args=args)
    # transformers' Trainer set Accelerate's process-wide state to its own precision; the student's Accelerator sets
    # the run's (`trainer.mixed_precision`) again, as transformers itself does before each of its trainings
    AcceleratorState._reset_state()
    tmp = folder.with_name(f".{folder.name}.tmp")
    model.model_body.save(str(tmp))
    tmp.replace(folder)
    return folder


def pseudo_label_pool(cfg: RunConfig, data, encoder: Path, folder: Path) -> dict:
    """Embed the labeled texts and the pool with `encoder`; keep the pool rows where the logistic regression of the
    labels and the kNN vote agree (`recipe.keep` of the pool, per class in the labeled shares); write them with
    one-hot `pseudo_target`s to `folder`. Returns the pool's statistics."""
    stats_file = folder / STATS_FILE
    if stats_file.is_file():
        return json.loads(stats_file.read_text())
    from sentence_transformers import SentenceTransformer

    num_classes = len(data.label_names)
    st = SentenceTransformer(str(encoder), device="cpu")
    st.max_seq_length = cfg.data.max_length

    def embed(texts: list[str]) -> np.ndarray:
        return st.encode(texts, batch_size=EMBED_BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False)

    lb_labels = np.asarray(data.labeled["label"], dtype=np.int64)
    lb_emb, ulb_emb = embed(list(data.labeled["text"])), embed(list(data.unlabeled["text"]))
    weight, bias = fit_head(lb_emb, lb_labels, num_classes)
    logits = ulb_emb @ weight.T + bias
    probs = softmax(logits)
    votes = knn_vote(lb_emb, lb_labels, ulb_emb, num_classes)
    prior = np.bincount(lb_labels, minlength=num_classes) / len(lb_labels)
    rows = agreement_rows(probs, votes, prior, cfg.recipe.keep)
    if len(rows) == 0:
        raise ConfigError("the classifier and the kNN vote agree on no text of the pool, so the recipe has nothing to "
                          "pseudo-label; check that the pool holds texts of the labeled classes.")
    targets = np.eye(num_classes, dtype=np.float32)[probs[rows].argmax(axis=1)]
    stats = pool_stats(probs, votes, rows, targets, data)
    chosen = data.unlabeled.remove_columns(INDEX).select(rows.tolist()).add_column(PSEUDO_TARGET, targets.tolist())
    save_dataset_atomic(chosen, folder, {STATS_FILE: json.dumps(stats, indent=2)})
    return stats


def pool_stats(probs: np.ndarray, votes: np.ndarray, rows: np.ndarray, targets: np.ndarray, data) -> dict:
    chosen = targets.argmax(axis=1)
    agree = probs.argmax(axis=1) == votes.argmax(axis=1)
    stats = {
        "pool_size": int(len(probs)),
        "agreeing": int(agree.sum()),
        "kept": int(len(rows)),
        "class_distribution": dict(zip(data.label_names, np.bincount(chosen, minlength=len(data.label_names)).tolist())),
    }
    if ANALYSIS_LABEL in data.unlabeled.column_names:  # the pool's hidden labels (benchmarks): how clean the targets are
        truth = np.asarray(data.unlabeled[ANALYSIS_LABEL])
        stats["classifier_pool_accuracy"] = float((probs.argmax(axis=1) == truth).mean())
        stats["vote_pool_accuracy"] = float((votes.argmax(axis=1) == truth).mean())
        stats["pseudo_label_accuracy"] = float((chosen == truth[rows]).mean())
    return stats


def student_config(cfg: RunConfig, out: Path, encoder: Path) -> RunConfig:
    """The config's data and trainer, from the contrastively trained `encoder`, `noisy_student` on labels + the
    pool (its head starts as the logistic regression of both, ssl_text/training/head_init.py)."""
    student = copy.deepcopy(cfg)
    student.output_dir = str(out / STUDENT)
    student.model.name_or_path = str(encoder)
    student.model.pooling = "auto"  # the warm start is a mean-pooling sentence-transformers folder: mean pooling
    student.trainer.max_steps = cfg.recipe.student_steps
    student.algorithm = NoisyStudent.Config(lambda_u=cfg.recipe.lambda_u)
    student.data.unlabeled = DatasetSpec(path=str(out / POOL), label_column=None)
    student.data.sampling.rest_as_unlabeled = False  # the pool holds the unlabeled examples the student learns from
    return parse_config(to_dict(student), f"{out} (recipe student)")


@contextlib.contextmanager
def _setfit_errors_only():
    """Only SetFit's errors while the warm start trains the body alone: its "model_head.pkl not found ... You should
    TRAIN this model" and torch's pin_memory warning on CPU misled quickstart users; the recipe trains its own head."""
    from setfit import logging as setfit_logging

    level = setfit_logging.get_verbosity()
    setfit_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true", category=UserWarning)
            yield
    finally:
        setfit_logging.set_verbosity(level)


def _quiet_setfit(trainer) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)

