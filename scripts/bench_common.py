"""What the benchmark scripts share: offline Hub settings, the checkout's paths, and mean ± std over seeds.

A script in scripts/ imports it by name (`python scripts/x.py` puts scripts/ on sys.path) and calls
`offline()` before it imports transformers or datasets.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"  # ../shared/data next to the checkout (never shipped)
RUNS = ROOT / "runs" / "benchmark"
COLLAPSE_FILE = "collapse_stopped.json"  # in a run folder: the collapse guard stopped it (trainer.collapse_patience)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the library and tasks/ without an install


def offline() -> None:
    """Never reach the Hub: benchmarks read ../shared/data and packaged or local models only."""
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(key, "1")


def mean_std(values: list[float]) -> str:
    """`83.1 ± 1.2` (sample std over seeds), or `83.1 (1 seed)`."""
    mean = statistics.mean(values)
    return f"{mean:.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{mean:.1f} (1 seed)"


def final_metrics(run_dir: Path, rounds: int | None = None) -> Path:
    """metrics.json of a run; of its last round for a self-training run of `rounds` student rounds."""
    return run_dir / (f"round_{rounds}" if rounds else "") / "metrics.json"


def self_train_row(config, run_dir: Path, teacher: Path, options: dict) -> dict:
    """`ssl-text self-train --teacher` for a benchmark row; round 0 is `teacher` (a finished run of the seed).

    `options`: `rounds` plus the fields of `PseudoLabeling`. A run stopped before its first record
    starts again; one stopped later resumes with the teacher it started with.
    """
    import json
    import shutil

    from ssl_text.pipelines.self_training import PseudoLabeling, self_train

    options = dict(options)
    rounds = options.pop("rounds")
    if run_dir.exists() and not (run_dir / "rounds.json").exists():
        shutil.rmtree(run_dir)
    if run_dir.exists():
        teacher = json.loads((run_dir / "rounds.json").read_text()).get("teacher")
    self_train(config, rounds, PseudoLabeling(**options), resume=run_dir.exists(), teacher=teacher)
    return json.loads(final_metrics(run_dir, rounds).read_text())


def self_training_minutes(run_dir: Path) -> float:
    """Wall-clock minutes of every round of a self-training run, its teacher (round 0) included."""
    import json

    files = sorted(run_dir.glob("round_*/metrics.json"))
    teacher = json.loads((run_dir / "rounds.json").read_text()).get("teacher")
    if teacher:
        files.append(Path(teacher) / "metrics.json")
    return sum(json.loads(f.read_text())["total_seconds"] for f in files) / 60


def chosen(requested: str, known, what: str = "algorithm") -> list[str]:
    """The comma-separated names of `requested`; exits naming the unknown ones and the choices."""
    names = [n for n in requested.split(",") if n]
    unknown = sorted(set(names) - set(known))
    if unknown:
        sys.exit(f"unknown {what}(s) {unknown}; choose from {sorted(set(known))}.")
    return names


def resume_or_overwrite(run_dir: Path) -> dict:
    """`train()` arguments for a benchmark run: continue a stopped run from its last checkpoint, else start over."""
    stopped = any((run_dir / "checkpoints").glob("step_*")) and not (run_dir / "metrics.json").exists()
    return {"resume": stopped, "overwrite": not stopped}
