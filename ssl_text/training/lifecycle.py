"""The run lifecycle that every entry point shares: the launch is checked, the run directory locked
and everything the config and data can reveal validated before anything is written."""

from __future__ import annotations

import os

from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from ssl_text.config import ConfigError


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
