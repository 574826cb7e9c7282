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
    check_is_a_directory(run_dir)
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


def check_is_a_directory(run_dir: Path) -> None:
    """Refuse an output_dir that is a file, or that lies under one."""
    for path in (run_dir, *run_dir.parents):
        if path.exists() and not path.is_dir():
            where = "is" if path == run_dir else f"lies under {path}, which is"
            raise RunDirError(
                f"output_dir {run_dir} {where} a file, not a directory; set output_dir to a directory "
                "(a new path or an earlier run's directory), or move the file away."
            )


def claim_run_dir(path: str | Path, *, resume: bool, overwrite: bool, keep: tuple[str, ...] = ()) -> bool:
    """Lock the run directory (created if missing), then, with `overwrite` and not `resume`, empty it
    except for the names in `keep`. Returns whether this call took the lock (False: this process
    already held it, e.g. a distillation's student run inside the distillation's directory)."""
    run_dir = check_run_dir(path, resume=resume, overwrite=overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK
    took = not (lock.exists() and lock.read_text().strip() == str(os.getpid()))
    if took:
        acquire_lock(run_dir)
    if overwrite and not resume:
        for child in run_dir.iterdir():
            if child.name in (LOCK, *keep):
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    return took


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
