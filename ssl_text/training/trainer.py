"""The one training loop, on Accelerate, for every algorithm and every task.

The trainer owns devices, backward, gradient accumulation, clipping, the learning-rate
schedule, evaluation and model selection, checkpoints and logging. Algorithms only compute
losses. A run reads as: draw a batch, compute the loss, step, and now and then evaluate,
save the best model, and checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from tqdm.auto import tqdm

from ssl_text.algorithms.base import LossOutput, TrainState
from ssl_text.config import ConfigError, TrainerConfig
from ssl_text.config.keys import BEST, CHECKPOINTS, CHECKSUMS_FILE
from ssl_text.data.batching import BatchStream
from ssl_text.training.ema import EMA
from ssl_text.training.param_groups import optimizer_groups
from ssl_text.training.run_dir import RunDirError
from ssl_text.training.running_means import RunningMeans

COLLAPSE_ADVICE = "Consider a higher tau, distribution alignment (`algorithm.dist_align_momentum` of fixmatch, uda and mixmatch), or an adaptive-threshold algorithm (flexmatch, freematch)."
# A window counts towards stopping a run (`trainer.collapse_patience`) only when, besides being over
# `trainer.collapse_tv_bound`, one class holds more than this share of its confident pseudo-labels ...
COLLAPSE_DOMINANT_SHARE = 0.9
# ... and those confident pseudo-labels are at least this share of the unlabeled examples drawn: early in a run
# FixMatch's few confident targets are often one class (the easiest), a lopsided trickle rather than a collapse.
COLLAPSE_MIN_COVERAGE = 0.5


logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    pass


class TrainingInterrupted(RuntimeError):
    """SIGTERM or Ctrl-C arrived; a checkpoint was saved at the end of the current step."""


class PseudoLabelCollapseError(RuntimeError):
    """The pseudo-labels stayed collapsed for `trainer.collapse_patience` steps; a checkpoint was saved."""


class CheckpointError(RunDirError):
    """`--resume` found checkpoints, but none passes its checksums and loads."""


class StopSignals:
    """Turns SIGTERM and the first SIGINT into a flag checked between steps (a second Ctrl-C aborts)."""

    def __init__(self):
        self.received: int | None = None
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        self.received = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@dataclass
class Progress:
    """Loop counters that must survive a resume."""

    step: int = 0
    best_metric: float = -math.inf
    best_step: int = -1
    nonfinite_in_a_row: int = 0
    nonfinite_total: int = 0
    collapsed_steps: int = 0  # steps after the warmup whose windows were all collapsed, up to now
    history: list = field(default_factory=list)  # validation metrics per evaluation
    last_logs: dict = field(default_factory=dict)  # the latest averaged training logs

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


def mixed_precision_for(setting: str) -> str:
    """`auto` picks bf16 on GPUs that support it, fp16 on other GPUs, and full precision on CPU."""
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def linear_schedule(warmup_steps: int, max_steps: int, kind: str) -> Callable[[int], float]:
    """Our own, not `transformers.get_scheduler`: its warmup starts at lr 0 (step / warmup), which wastes the
    first step and would change every figure measured with warmup; ours starts at 1 / warmup, and is identical
    to get_scheduler's "linear" and "constant" from the end of the warmup on (tests/test_checkpoints.py)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        if kind == "constant":
            return 1.0
        return max(0.0, (max_steps - step) / max(max_steps - warmup_steps, 1))

    return factor


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_num_threads(setting: int | str, num_processes: int) -> tuple[int, str]:
    """Torch CPU threads per process and why. `auto`: OMP_NUM_THREADS when set (`accelerate launch` sets it,
    one thread per process on GPUs), else the CPUs per process less one, left to the data side and the OS:
    torch's default of every core ran a step 5x slower on a busy 2-core machine."""
    if setting != "auto":
        return int(setting), "trainer.num_threads"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "trainer.num_threads=auto, OMP_NUM_THREADS is set: kept"
    cpus = available_cpus()
    threads = max(1, cpus // num_processes - 1)
    return threads, f"trainer.num_threads=auto: {cpus} CPUs, {num_processes} process(es), one core left free"


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))


HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: Path) -> None:
    """SHA256SUMS of every file in a checkpoint folder, in `sha256sum` format."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILE)
    lines = [f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files]
    (folder / CHECKSUMS_FILE).write_text("".join(lines))


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be trusted (a file missing, unlisted or unlike its checksum), or None.

    A folder without SHA256SUMS was written by an ssl-text that had no checksums: loading it is the only test."""
    manifest = folder / CHECKSUMS_FILE
    if not manifest.is_file():
        return None
    listed = {}
    for line in manifest.read_text(errors="replace").splitlines():
        expected, _, name = line.partition("  ")
        listed[name] = expected
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILE}
    unlisted = sorted(present - set(listed))
    if unlisted:
        return f"{unlisted[0]} is not listed in {CHECKSUMS_FILE}"
    for name, expected in sorted(listed.items()):
        if name not in present:
            return f"{name} is missing"
        if file_sha256(folder / name) != expected:
            return f"{name} does not match its checksum in {CHECKSUMS_FILE}"
    return None


class Trainer:
    def __init__(
        self,
        config: TrainerConfig,
        accelerator: Accelerator,
        model: torch.nn.Module,
        algorithm,
        lb_stream: BatchStream,
        ulb_stream: BatchStream | None,
        run_dir: Path,
        num_classes: int,
        evaluate: Callable[[torch.nn.Module], dict] | None = None,
        save_model: Callable[[torch.nn.Module, Path], None] | None = None,
        label_prior: list[float] | None = None,
        token_decoder: Callable | None = None,
        mask_groups: dict[str, list[int]] | None = None,
    ):
        self.config = config
        self.accelerator = accelerator
        self.algorithm = algorithm
        self.lb_stream = lb_stream
        self.ulb_stream = ulb_stream
        self.run_dir = Path(run_dir)
        self.num_classes = num_classes
        self.evaluate = evaluate
        self.save_model = save_model
        self.progress = Progress()
        self.label_prior = torch.tensor(label_prior) if label_prior is not None else None
        self.pseudo_counts = torch.zeros(num_classes, device=accelerator.device)  # confident pseudo-labels per class
        self.pseudo_drawn = torch.zeros(1, device=accelerator.device)  # unlabeled examples with a pseudo-label
        self.collapse_message: str | None = None  # the last window's distribution, when over the bound
        self.token_decoder = token_decoder  # token-level tasks: probs [B, L, C] -> valid label sequences
        self.mask_groups = mask_groups  # class ids per group (NER: per entity type) for mask-rate logging
        threads, why = resolve_num_threads(config.num_threads, accelerator.num_processes)
        torch.set_num_threads(threads)
        accelerator.print(f"torch CPU threads per process: {threads} ({why})")

        optimizer = torch.optim.AdamW(
            optimizer_groups(model, config.learning_rate, config.weight_decay, config.layer_decay),
            lr=config.learning_rate,
        )
        warmup = int(config.warmup_ratio * config.max_steps)
        self.warmup_steps = warmup
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, linear_schedule(warmup, config.max_steps, config.lr_schedule)
        )
        if getattr(algorithm, "requires_ema", False) and config.ema_decay is None:
            raise ConfigError(
                f"algorithm `{algorithm.config.name}` needs an EMA teacher but `trainer.ema_decay` is not set; "
                "set it, e.g. trainer.ema_decay=0.999."
            )
        self.ema = EMA(model, config.ema_decay) if config.ema_decay is not None else None
        if self.ema is not None:
            self.ema.model.to(accelerator.device)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        for obj in (self.scheduler, self.progress, self.lb_stream, self.ulb_stream, self.algorithm, self.ema):
            if obj is not None and hasattr(obj, "state_dict"):
                accelerator.register_for_checkpointing(obj)

    # ----------------------------------------------------------------------------------
    # The loop
    # ----------------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> Progress:
        if resume:
            self.load_latest_checkpoint()
        with StopSignals() as stop:
            self.loop(stop)
        return self.progress

    def loop(self, stop: StopSignals) -> None:
        cfg, acc = self.config, self.accelerator
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.progress.step,
            disable=not (cfg.progress_bar and acc.is_main_process),
            desc="train",
            dynamic_ncols=True,
        )
        window = RunningMeans()
        window_start, examples = time.perf_counter(), 0
        self.model.train()
        while self.progress.step < cfg.max_steps:
            parts, n_examples, finite = self.train_step()
            examples += n_examples
            if not finite:
                continue
            self.progress.step += 1
            window.merge(parts)
            step = self.progress.step
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                seconds = time.perf_counter() - window_start
                logs = window.means()
                logs["lr"] = max(self.scheduler.get_last_lr())  # the head's rate under layer-wise decay
                logs["examples_per_second"] = examples * acc.num_processes / max(seconds, 1e-9)
                acc.log({f"train/{k}": v for k, v in logs.items()}, step=step)
                self.progress.last_logs = {"step": step, **logs}
                self.check_collapse(step)
                if self.collapse_outlasted_patience():
                    path = self.save_checkpoint()
                    bar.close()
                    raise PseudoLabelCollapseError(self.collapse_stop_message(path))
                bar.set_postfix(
                    loss=f"{logs['loss']:.3f}",
                    mask=f"{logs.get('mask_rate', float('nan')):.2f}",
                    ex_s=f"{logs['examples_per_second']:.1f}",
                )
                window, window_start, examples = RunningMeans(), time.perf_counter(), 0
            if self.evaluate is not None and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                self.evaluate_and_select()
            if step % cfg.save_every == 0 or step == cfg.max_steps:
                self.save_checkpoint()
            if self.any_process_flagged(stop.received is not None):
                path = self.save_checkpoint()
                bar.close()
                raise TrainingInterrupted(
                    f"stopped by signal {stop.received} at step {step}; checkpoint saved to {path}. "
                    "Continue with --resume."
                )
        bar.close()
        if self.evaluate is None and self.save_model is not None:
            self.save_best()  # no validation split: the last model is the one reported
        acc.wait_for_everyone()

    def any_process_flagged(self, flag: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return flag
        flags = self.accelerator.gather(torch.tensor([float(flag)], device=self.accelerator.device))
        return bool(flags.max().item() > 0)

    def next_batch(self) -> dict:
        batch = next(self.lb_stream)
        if self.ulb_stream is not None:
            batch.update(next(self.ulb_stream))
        return send_to_device(batch, self.accelerator.device)

    def train_step(self) -> tuple[RunningMeans, int, bool]:
        """One optimizer step over `gradient_accumulation_steps` micro-batches; returns what it logs."""
        cfg, acc = self.config, self.accelerator
        state = TrainState(
            step=self.progress.step,
            max_steps=cfg.max_steps,
            num_classes=self.num_classes,
            seed=cfg.seed,
            ema_model=self.ema.model if self.ema is not None else None,
            gather=acc.gather,
            token_decoder=self.token_decoder,
        )
        accum = cfg.gradient_accumulation_steps
        totals = RunningMeans()
        n_examples, finite = 0, True
        for micro in range(accum):
            batch = self.next_batch()
            n_examples += sum(len(next(iter(v.values()))) for v in batch.values() if isinstance(v, dict))
            sync = micro == accum - 1
            with (nullcontext() if sync else acc.no_sync(self.model)), acc.autocast():
                out: LossOutput = self.algorithm.compute_loss(self.model, batch, state)
            finite = finite and self.all_finite(out.total)
            if not finite:
                break
            acc.backward(out.total / accum)
            for key, (total, count) in self.log_parts(out, batch).items():
                totals.add(key, total, count)
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            self.on_nonfinite()
            return RunningMeans(), n_examples, False
        self.progress.nonfinite_in_a_row = 0
        if cfg.max_grad_norm is not None:
            acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(acc.unwrap_model(self.model))
        return totals, n_examples, True

    def all_finite(self, loss: torch.Tensor) -> bool:
        flag = torch.isfinite(loss.detach()).float().reshape(1)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.gather(flag)
        return bool(flag.min().item() == 1.0)

    def on_nonfinite(self) -> None:
        self.progress.nonfinite_in_a_row += 1
        self.progress.nonfinite_total += 1
        if self.progress.nonfinite_in_a_row >= self.config.max_nonfinite_steps:
            path = self.save_checkpoint()
            raise NonFiniteLossError(
                f"the loss was NaN or infinite in {self.progress.nonfinite_in_a_row} steps in a row at step "
                f"{self.progress.step}; the learning rate ({self.config.learning_rate}) is likely too high, "
                f"or fp16 overflowed (try mixed_precision=bf16 or no). A checkpoint was saved to {path}."
            )

    def log_parts(self, out: LossOutput, batch: dict) -> dict[str, tuple[torch.Tensor | float, torch.Tensor | float]]:
        """(sum, count) of every logged quantity of one micro-batch, left on the device (no host sync)."""
        parts = {"loss": (out.total.detach(), 1.0)}
        parts.update({k: (v, 1.0) for k, v in out.parts.items()})
        labels, mask = out.pseudo_labels, out.mask
        if labels is not None and labels.dim() == 1:
            weights = None if mask is None else mask.float()
            self.pseudo_counts += torch.bincount(labels, weights=weights, minlength=self.num_classes)[: self.num_classes]
            self.pseudo_drawn += labels.numel()
        if self.mask_groups and mask is not None and labels is not None:
            for name, ids in self.mask_groups.items():
                members = torch.isin(labels, torch.as_tensor(ids, device=labels.device)).float()
                parts[f"mask_rate_{name}"] = ((mask.float() * members).sum(), members.sum())
        truth = batch.get("ulb_analysis_labels")
        if truth is not None and labels is not None:
            correct = (labels == truth).float()
            parts["pseudo_label_accuracy"] = (correct.sum(), float(correct.numel()))
            if mask is not None:
                parts["masked_pseudo_label_accuracy"] = ((correct * mask.float()).sum(), mask.float().sum())
        return parts

    def check_collapse(self, step: int) -> float | None:
        """Judge the window that ends at `step` on the confident pseudo-labels counted over every process: warn
        (main process) when their distribution is further from the labeled prior than `trainer.collapse_tv_bound`
        of the largest total variation that prior allows,
        and add the window's steps after the warmup to `progress.collapsed_steps` when one class also holds most of
        them (`COLLAPSE_DOMINANT_SHARE`, `COLLAPSE_MIN_COVERAGE`); any other window resets that count."""
        if self.label_prior is None:
            return None
        counts = self.accelerator.gather(self.pseudo_counts[None]).sum(dim=0).cpu()  # every process calls these
        drawn = float(self.accelerator.gather(self.pseudo_drawn).sum())
        self.pseudo_counts = torch.zeros_like(self.pseudo_counts)
        self.pseudo_drawn = torch.zeros_like(self.pseudo_drawn)
        self.collapse_message = None
        if counts.sum() < 2 * self.num_classes:
            self.progress.collapsed_steps = 0
            return None
        share = counts / counts.sum()
        distance = 0.5 * float((share - self.label_prior).abs().sum())  # total variation, in [0, 1]
        self.accelerator.log({"train/pseudo_label_prior_distance": distance}, step=step)
        # the bound is a share of the largest distance this prior allows (every label on its rarest class): 0.5 for
        # two balanced classes, so a binary task's one-class collapse (distance 0.5) was never over a bound of 0.5
        bound = self.config.collapse_tv_bound * (1.0 - float(self.label_prior.min()))
        over = distance > bound
        dominant = float(share.max()) > COLLAPSE_DOMINANT_SHARE
        widespread = float(counts.sum()) >= COLLAPSE_MIN_COVERAGE * drawn
        if over and dominant and widespread:
            self.progress.collapsed_steps += self.window_after_warmup(step)
        else:
            self.progress.collapsed_steps = 0
        if over:
            self.collapse_message = (
                f"step {step}: possible pseudo-label collapse: the confident pseudo-labels are distributed "
                f"{[round(float(x), 3) for x in share]} against a labeled prior of "
                f"{[round(float(x), 3) for x in self.label_prior]} (total variation {distance:.2f} > {bound:.2f}, "
                f"trainer.collapse_tv_bound={self.config.collapse_tv_bound} of the largest possible from this prior). "
                + getattr(self.algorithm, "collapse_advice", COLLAPSE_ADVICE)
            )
            if self.accelerator.is_main_process:
                logger.warning(self.collapse_message)
                self.accelerator.print(f"warning: {self.collapse_message}")
        return distance

    def window_after_warmup(self, step: int) -> int:
        """The steps of the logging window that ends at `step` which lie after the learning-rate warmup."""
        begin = max((step - 1) // self.config.log_every * self.config.log_every, self.warmup_steps)
        return max(step - begin, 0)

    def collapse_outlasted_patience(self) -> bool:
        patience = self.config.collapse_patience
        return bool(patience) and self.progress.collapsed_steps >= patience

    def collapse_stop_message(self, checkpoint: Path) -> str:
        return (
            f"{self.collapse_message} The pseudo-labels stayed collapsed onto one class (over "
            f"{COLLAPSE_DOMINANT_SHARE:.0%} of them) for {self.progress.collapsed_steps} steps "
            f"(trainer.collapse_patience={self.config.collapse_patience}), so the run was stopped; a checkpoint was "
            f"saved to {checkpoint}. Start again with other settings (--overwrite), or continue this run warning "
            "only with `--resume trainer.collapse_patience=null`."
        )

    # ----------------------------------------------------------------------------------
    # Evaluation and model selection
    # ----------------------------------------------------------------------------------

    def model_to_report(self) -> torch.nn.Module:
        """The weights that are evaluated and saved: the EMA copy when so configured."""
        if self.config.evaluate_ema:
            return self.ema.model
        return self.accelerator.unwrap_model(self.model)

    def evaluate_and_select(self) -> dict:
        self.model.eval()
        metrics = self.evaluate(self.model if not self.config.evaluate_ema else self.ema.model)
        self.model.train()
        step = self.progress.step
        self.accelerator.log({f"validation/{k}": v for k, v in metrics.items()}, step=step)
        self.progress.history.append({"step": step, **metrics})
        if self.config.select_metric not in metrics:  # configs from load_config are checked against the task
            raise ConfigError(
                f"`trainer.select_metric` is {self.config.select_metric!r}, which the evaluation does not report; "
                f"choose one of {sorted(metrics)}."
            )
        value = metrics[self.config.select_metric]
        if value > self.progress.best_metric:
            self.progress.best_metric, self.progress.best_step = value, step
            self.save_best()
        return metrics

    def save_best(self) -> None:
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process and self.save_model is not None:
            target = self.run_dir / BEST
            tmp = self.run_dir / f".{BEST}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            self.save_model(self.model_to_report(), tmp)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        self.accelerator.wait_for_everyone()

    # ----------------------------------------------------------------------------------
    # Checkpoints
    # ----------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Write the full training state and its checksums atomically (temporary folder, then rename)."""
        acc = self.accelerator
        root = self.run_dir / CHECKPOINTS
        target = root / f"step_{self.progress.step:07d}"
        tmp = root / f".tmp_step_{self.progress.step:07d}"
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            root.mkdir(parents=True, exist_ok=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()
        if acc.is_main_process:
            write_checksums(tmp)  # inside the folder before its rename: a checkpoint never lacks them
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
            for old in checkpoint_dirs(self.run_dir)[: -self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        return target

    def load_latest_checkpoint(self) -> Path | None:
        """Restore the newest checkpoint that passes its checksums and loads; report and skip any other.
        Checkpoints that all fail stop the run: starting again at step 0 would silently discard the training."""
        root = self.run_dir / CHECKPOINTS
        found = checkpoint_dirs(self.run_dir)
        problems = []
        for path in reversed(found):
            problem = checkpoint_problem(path)
            if problem is None:
                try:
                    self.accelerator.load_state(str(path))
                except Exception as err:  # unreadable although its checksums match (or it has none)
                    problem = str(err) or type(err).__name__
            if problem is not None:  # truncated or corrupted: fall back to the previous one
                self.accelerator.print(f"checkpoint {path} could not be loaded ({problem}); trying the previous one.")
                problems.append(f"{path.name}: {problem}")
                continue
            self.accelerator.print(f"resumed from {path} at step {self.progress.step}")
            return path
        if found:
            raise CheckpointError(
                f"--resume: none of the {len(found)} checkpoint(s) in {root} can be loaded ({'; '.join(problems)}). "
                f"Start the run afresh with --overwrite (this deletes {self.run_dir}), or put a valid step_<n>/ "
                f"folder back into {root}."
            )
        self.accelerator.print(f"no checkpoint under {root}; starting from step 0.")
        return None
