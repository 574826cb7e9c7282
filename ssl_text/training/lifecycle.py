"""The run lifecycle that every entry point shares: train (and finetune), pretrain, distill and
self-train.

In this order: the accelerator (the entry point makes it), the launch check, the run directory
(in use by a live run, holding a run without --resume/--overwrite, a file), the saved config of a
resumed run, then everything the config, data and model can reveal; then and only then the lock,
the overwrite and the config file. The run writes its metrics file when it ends, and that file
marks it finished: `--resume` of a finished run returns its recorded metrics and writes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from accelerate import Accelerator, PartialState
from accelerate.utils import parse_flag_from_env

from ssl_text.config import ConfigError, TrainerConfig, read_yaml, save_config, to_dict
from ssl_text.config.keys import CONFIG_FILE, METRICS_FILE
from ssl_text.training.run_dir import check_run_dir, claim_run_dir, release_lock
from ssl_text.training.trainer import mixed_precision_for

Prepared = TypeVar("Prepared")
# Keys that --resume may change: none changes what is trained or recorded. A run directory may be moved; where a
# model is published, how many CPU threads compute it and whether a progress bar shows it do not change the run;
# nor does the collapse guard's patience, which only decides whether a collapsed run stops (a run it stopped may
# go on warning only).
UNCOMPARED = ("output_dir", "hub", "trainer.num_threads", "trainer.progress_bar", "trainer.collapse_patience")


def run_accelerator(trainer: TrainerConfig, output_dir: str | Path) -> Accelerator:
    """The Accelerator of a training run: its precision, and the trackers it logs to under `output_dir`."""
    return Accelerator(
        mixed_precision=mixed_precision_for(trainer.mixed_precision),
        log_with=list(trainer.report_to) or None,
        project_dir=str(output_dir),
    )


def check_launch() -> None:
    """Refuse a launch where torchrun started several processes that Accelerate sees as one each.

    On a machine without GPUs, `accelerate launch --multi_gpu` starts N processes but each is a
    world of one unless ACCELERATE_USE_CPU=true: they would all write the same run directory.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU")).num_processes == 1:
        raise ConfigError(
            f"{launched} processes were launched but Accelerate sees each as a single process (no GPU "
            "backend was found); on CPUs set ACCELERATE_USE_CPU=true, e.g. `ACCELERATE_USE_CPU=true "
            "accelerate launch --multi_gpu --num_processes 2 scripts/train.py CONFIG`."
        )


def warn_once(message: str) -> None:
    """A warning printed by the main process only, so a launch of N processes says it once."""
    PartialState().print(f"warning: {message}")


def check_resume_config(run_dir: Path, cfg: Any, parse: Callable[[dict, str], Any], name: str = CONFIG_FILE) -> None:
    """Refuse to resume `run_dir` with another config than the one saved in it (`name`).

    The saved file is read back with `parse`, so fields added since the run started take their
    defaults and do not count as changes; a saved file that no longer parses is named with its error.
    """
    saved_path = Path(run_dir) / name
    if not saved_path.exists():
        return
    try:
        saved = to_dict(parse(read_yaml(saved_path), str(saved_path)))
    except ConfigError as err:
        raise ConfigError(
            f"--resume: the config saved in {saved_path} is not valid ({err}); fix that file, or start a new "
            "run with --overwrite or another output_dir."
        ) from None
    diffs = sorted(key for key in _diff_keys(saved, to_dict(cfg)) if not _uncompared(key))
    if diffs:
        raise ConfigError(
            f"--resume: the config differs from the one saved in {saved_path} at {diffs[:5]}; resume with the "
            "same config (the saved one is the reference), or start a new run with another output_dir."
        )


def _diff_keys(a, b, prefix=""):
    """The dotted keys at which the config dicts `a` and `b` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in set(a) | set(b):
            yield from _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")


def _uncompared(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in UNCOMPARED)


@dataclass
class ConfigFile:
    """A run's config file: compared with the current config on --resume, written once the input is valid."""

    config: Any  # a config dataclass (RunConfig, PretrainRunConfig, DistillConfig)
    parse: Callable[[dict, str], Any]  # reads the saved file back into the same dataclass
    name: str = CONFIG_FILE

    def check(self, run_dir: Path) -> None:
        check_resume_config(run_dir, self.config, self.parse, self.name)

    def write(self, run_dir: Path) -> None:
        save_config(self.config, run_dir / self.name)


def recorded_metrics(run_dir: Path) -> dict | None:
    """The metrics of a finished run in `run_dir` (its metrics file, written when it ended), else None."""
    path = Path(run_dir) / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run_lifecycle(
    run_dir: str | Path,
    config: ConfigFile,
    *,
    resume: bool,
    overwrite: bool,
    validate: Callable[[], Prepared],
    execute: Callable[[Prepared], dict],
    keep: tuple[str, ...] = (),
    finished: Callable[[Path], dict | None] | None = recorded_metrics,
) -> dict:
    """Check, validate, claim the run directory, then run `execute(validate())` and return its metrics.

    `validate` builds and checks everything the run needs (data, tokenizer, model) and writes
    nothing; an error there leaves an existing run directory untouched, `--overwrite` included.
    `keep`: names that --overwrite leaves in place (distillation: its teacher targets, which
    follow their own manifest). `finished(run_dir)`: the recorded metrics of a finished run
    (None when it is not finished; `finished=None`: the entry point skips finished parts itself).
    """
    check_launch()  # first: it sets up the process state with ACCELERATE_USE_CPU, which PartialState() then shares
    state = PartialState()
    run_dir = Path(run_dir)
    if state.is_main_process:
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume:
            config.check(run_dir)
    done = finished(run_dir) if resume and finished is not None else None
    if done is not None:
        state.print(
            f"{run_dir} holds a finished run ({run_dir / METRICS_FILE}); nothing to resume, its recorded metrics "
            "are kept. Start a new run with --overwrite or another output_dir."
        )
        return done
    prepared = validate()
    took_lock = False
    if state.is_main_process:
        took_lock = claim_run_dir(run_dir, resume=resume, overwrite=overwrite, keep=keep)
        config.write(run_dir)
    state.wait_for_everyone()
    try:
        return execute(prepared)
    finally:
        if took_lock:
            release_lock(run_dir)
