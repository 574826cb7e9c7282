"""Crash tests on real processes: start the CLI, wait for what it writes, SIGKILL it, compare outputs.

Every process runs `tests.counted_teacher_cli` (the `ssl-text` CLI with its teacher passes logged
to `TeacherPasses.log`), single-threaded like the reference run it is compared with, with its
standard error kept in a file so that a failure shows the run's own message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]


class TeacherPasses:
    """The lines `tests.counted_teacher_cli` writes, one per teacher forward pass, in one file."""

    def __init__(self, log: Path):
        self.log = log

    def count(self, kind: str) -> int:
        if not self.log.exists():
            return 0
        return sum(line.split()[0] == kind for line in self.log.read_text().splitlines())


def start(args: list[str], passes: TeacherPasses, seconds_per_pass: float = 0.0) -> subprocess.Popen:
    """`ssl-text ARGS` in a new process; each teacher pass sleeps `seconds_per_pass` after it is logged."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TEACHER_PASS_LOG": str(passes.log),
        "TEACHER_PASS_SECONDS": str(seconds_per_pass),
    }
    stderr_path = passes.log.with_name(f"stderr_{time.monotonic_ns()}.txt")
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "tests.counted_teacher_cli", *args], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
    proc.stderr_path = stderr_path
    return proc


def stderr_tail(proc: subprocess.Popen) -> str:
    return proc.stderr_path.read_text()[-3000:]


def wait_until(proc: subprocess.Popen, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    """Poll `condition` every 20 ms while `proc` runs; fail if it ends or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}:\n{stderr_tail(proc)}"
        assert time.monotonic() < deadline, f"no sign of {what} after {timeout} s:\n{stderr_tail(proc)}"
        time.sleep(0.02)


def sigkill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}, not killed:\n{stderr_tail(proc)}"


def finish(proc: subprocess.Popen, timeout: float = 300) -> None:
    assert proc.wait(timeout=timeout) == 0, f"the run failed (exit {proc.returncode}):\n{stderr_tail(proc)}"


def mtimes(folder: Path, pattern: str) -> dict[str, int]:
    """When each file under `folder` matching `pattern` was written: what a resume must leave untouched."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.glob(pattern)}


def assert_untouched(before: dict[str, int], after: dict[str, int], what: str) -> None:
    assert {name: after.get(name) for name in before} == before, f"{what} written before a kill were rewritten"


def assert_same_weights(expected_dir: Path, got_dir: Path) -> None:
    """Every tensor of `model.safetensors` in the two folders is equal, to the bit."""
    expected, got = load_file(str(expected_dir / "model.safetensors")), load_file(str(got_dir / "model.safetensors"))
    assert expected.keys() == got.keys(), f"{got_dir} holds other tensors than {expected_dir}"
    differ = [name for name in expected if not torch.equal(expected[name], got[name])]
    assert not differ, f"{got_dir} differs from the uninterrupted run's {expected_dir} in {differ[:5]}"
