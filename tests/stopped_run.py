"""A finished run cut back to an earlier checkpoint, as if it had stopped there: for exact-resume tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file


def stopped_copy(run_dir: Path, copy: Path, step: int) -> Path:
    """`run_dir` copied to `copy` without its checkpoints after `step` and without metrics.json."""
    shutil.copytree(run_dir, copy)
    for checkpoint in (copy / "checkpoints").glob("step_*"):
        if int(checkpoint.name.removeprefix("step_")) > step:
            shutil.rmtree(checkpoint)
    (copy / "metrics.json").unlink()
    return copy


def checkpoint_weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / f"step_{step:07d}" / "model.safetensors"))
