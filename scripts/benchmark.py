"""AG News benchmark: 40 labels (10 per class), 3 seeds, every algorithm on the same budget.

    python scripts/benchmark.py [--algorithms supervised,fixmatch,...] [--seeds 0,1,2] [--report]

Reads ../shared/data/ag_news. Each run writes runs/benchmark/agnews/<algorithm>_seed<k>/
(metrics.json there); finished runs are skipped, so the script can be stopped and rerun.
`--report` prints the markdown table (accuracy mean ± std over seeds, minutes) from what exists.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ag_news"
OUT = ROOT / "runs" / "benchmark" / "agnews"
CONFIG = ROOT / "configs" / "agnews_benchmark.yaml"

ALGORITHM_ARGS = {
    "supervised": ["algorithm={name: supervised}"],
    "pseudo_label": ["algorithm={name: pseudo_label, tau: 0.95, lambda_u: 1.0, rampup_steps: 100}"],
    "fixmatch": ["algorithm={name: fixmatch, tau: 0.9, lambda_u: 1.0}"],
    "uda": ["algorithm={name: uda, tau: 0.8, T: 0.4, lambda_u: 1.0, tsa: none}"],
}


def write_validation(path: Path, size: int = 500) -> None:
    """500 rows of train_first2000.csv that are not in train_sample5000.csv (the label pool)."""
    pool = {tuple(r) for r in csv.reader(open(DATA / "train_sample5000.csv", encoding="utf-8"))}
    rows = [r for r in csv.reader(open(DATA / "train_first2000.csv", encoding="utf-8")) if tuple(r) not in pool]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows[:size])


def run_one(algorithm: str, seed: int, extra: list[str]) -> dict:
    from ssl_text.config import load_config
    from ssl_text.train import train

    run_dir = OUT / f"{algorithm}_seed{seed}"
    overrides = [
        f"output_dir={run_dir}",
        f"data.labeled.path={DATA / 'train_sample5000.csv'}",
        f"data.test.path={DATA / 'test.csv'}",
        f"data.validation.path={OUT / 'validation.csv'}",
        f"data.sampling.seed={seed}",
        f"trainer.seed={seed}",
        *ALGORITHM_ARGS[algorithm],
        *extra,
    ]
    return train(load_config(CONFIG, overrides), overwrite=True)


def report() -> str:
    rows = []
    for algorithm in ALGORITHM_ARGS:
        runs = sorted(OUT.glob(f"{algorithm}_seed*/metrics.json"))
        if not runs:
            continue
        metrics = [json.loads(p.read_text()) for p in runs]
        acc = [100 * m["test"]["accuracy"] for m in metrics]
        f1 = [100 * m["test"]["macro_f1"] for m in metrics]
        minutes = [m["total_seconds"] / 60 for m in metrics]
        seeds = ", ".join(p.parent.name.split("seed")[1] for p in runs)
        std = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        per_seed = " / ".join(f"{a:.1f}" for a in acc)
        rows.append(
            f"| {algorithm} | {statistics.mean(acc):.1f} ± {std:.1f} | {per_seed} | {statistics.mean(f1):.1f} | "
            f"{statistics.mean(minutes):.1f} | {seeds} |"
        )
    header = "| algorithm | test accuracy (mean ± std) | per seed | macro-F1 | minutes per run | seeds |\n|---|---|---|---|---|---|"
    return "\n".join([header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default=",".join(ALGORITHM_ARGS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args()
    if args.report:
        print(report())
        return
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: the benchmark reads AG News from ../shared/data/ag_news next to the checkout.")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    write_validation(OUT / "validation.csv")
    for seed in [int(s) for s in args.seeds.split(",")]:
        for algorithm in args.algorithms.split(","):
            if (OUT / f"{algorithm}_seed{seed}" / "metrics.json").exists():
                print(f"skip {algorithm} seed {seed}: done", flush=True)
                continue
            metrics = run_one(algorithm, seed, args.overrides)
            print(
                f"{algorithm} seed {seed}: test accuracy {metrics['test']['accuracy']:.4f} "
                f"(selected step {metrics['selected_step']}, {metrics['total_seconds'] / 60:.1f} min)",
                flush=True,
            )
    print(report())


if __name__ == "__main__":
    main()
