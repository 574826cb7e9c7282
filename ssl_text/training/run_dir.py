"""Run directories: never overwritten by accident, never shared by two live runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ssl_text.config.keys import LOCK


class RunDirError(RuntimeError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_run_dir(path: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """Refuse, without touching anything, a directory in use or holding a run we may not replace."""
    run_dir = Path(path)
    lock = run_dir / LOCK
    if lock.exists():
        text = lock.read_text().strip()
        owner = int(text) if text.isdigit() else -1
        if owner != os.getpid() and _pid_alive(owner):
            raise RunDirError(
                f"{run_dir} is in use by another run (process {owner}, see {lock}); wait for it to end "
                "or choose another output_dir."
            )
    if run_dir.exists() and any(p.name != LOCK for p in run_dir.iterdir()) and not resume and not overwrite:
        raise RunDirError(
            f"{run_dir} already holds a run; pass --resume to continue it, --overwrite to replace it, "
            "or choose another output_dir."
        )
    if resume and not run_dir.exists():
        raise RunDirError(f"--resume: {run_dir} does not exist; start the run without --resume.")
    return run_dir


def prepare_run_dir(path: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """Create (or reuse, when resuming) a run directory; replace it only with `overwrite`."""
    run_dir = check_run_dir(path, resume=resume, overwrite=overwrite)
    if run_dir.exists() and overwrite and not resume:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `path` through a temporary sibling and a rename: a kill leaves the old file or the new one, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def acquire_lock(run_dir: Path) -> None:
    (run_dir / LOCK).write_text(str(os.getpid()))


def release_lock(run_dir: Path) -> None:
    lock = run_dir / LOCK
    if lock.exists() and lock.read_text().strip() == str(os.getpid()):
        lock.unlink()
