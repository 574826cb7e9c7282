"""CoNLL-2003 NER with 1% of the training sentences labeled (issue #5).

    OMP_NUM_THREADS=1 python scripts/benchmark_ner.py --seeds 0,1,2 --algorithms supervised,fixmatch
    python scripts/benchmark_ner.py --report

Runs go to runs/benchmark/conll/<algorithm>_seed<seed>; finished runs are skipped, so an
interrupted command picks up where it stopped. Protocol in configs/conll_benchmark.yaml.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench_common import (
    ROOT,
    RUNS,
    SHARED_DATA,
    chosen,
    final_metrics,
    mean_std,
    offline,
    resume_or_overwrite,
    self_train_row,
    self_training_minutes,
)

offline()
DATA = SHARED_DATA / "conll2003"
OUT = RUNS / "conll"
CONFIG = ROOT / "configs" / "conll_benchmark.yaml"

# Settings fixed in advance, never tuned on the test file.
ALGORITHM_ARGS = {
    "supervised": ["algorithm={name: supervised}"],
    "pseudo_label": ["algorithm={name: pseudo_label, tau: 0.9, lambda_u: 1.0, rampup_steps: 100}"],
    "fixmatch": ["algorithm={name: fixmatch, tau: 0.9, lambda_u: 1.0}"],
    "mean_teacher": ["algorithm={name: mean_teacher, lambda_u: 10.0, rampup_steps: 100}", "trainer.ema_decay=0.99"],
}
# Noisy Student: `ssl-text self-train` with the supervised run of the same seed as round 0 (the
# teacher; trained first when it is missing), then one student round on the pool tagged per word
# (valid BIO, words below tau skipped, soft targets). `noisy_student_swap` adds NER-safe word noise
# to the student's strong view: entity mentions swapped for labeled ones, O words replaced.
SELF_TRAINING = {
    "noisy_student": dict(rounds=1, tau=0.9, hard_labels=False),
    "noisy_student_swap": dict(rounds=1, tau=0.9, hard_labels=False),
}
ALGORITHM_ARGS["noisy_student_swap"] = ["views.strong.mention_swap_prob=0.3", "views.strong.o_word_prob=0.1"]
ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")


def metrics_file(algorithm: str, seed: int) -> Path:
    return final_metrics(OUT / f"{algorithm}_seed{seed}", SELF_TRAINING.get(algorithm, {}).get("rounds"))


def run_one(algorithm: str, seed: int, extra: list[str]) -> dict:
    from ssl_text.pipelines.train import train
    from ssl_text.training.run_config import load_config

    overrides = [
        f"output_dir={OUT / f'{algorithm}_seed{seed}'}",
        f"data.labeled.path={DATA / 'train.txt'}",
        f"data.validation.path={DATA / 'valid.txt'}",
        f"data.test.path={DATA / 'test.txt'}",
        f"data.sampling.seed={seed}",
        f"trainer.seed={seed}",
        *ALGORITHM_ARGS.get(algorithm, ALGORITHM_ARGS["supervised"]),
        *extra,
    ]
    if algorithm in SELF_TRAINING:
        if not metrics_file("supervised", seed).exists():
            run_one("supervised", seed, extra)
        return self_train_row(load_config(CONFIG, overrides), OUT / f"{algorithm}_seed{seed}",
                              OUT / f"supervised_seed{seed}", SELF_TRAINING[algorithm])
    return train(load_config(CONFIG, overrides), **resume_or_overwrite(OUT / f"{algorithm}_seed{seed}"))


def run_minutes(algorithm: str, run_dir: Path) -> float:
    """Wall-clock minutes of a run; for self-training, of every round, the teacher included."""
    if algorithm in SELF_TRAINING:
        return self_training_minutes(run_dir)
    return json.loads((run_dir / "metrics.json").read_text())["total_seconds"] / 60


def report() -> str:
    rows = []
    for algorithm in [*ALGORITHM_ARGS, *SELF_TRAINING]:
        runs = sorted(p for p in OUT.glob(f"{algorithm}_seed*") if metrics_file(algorithm, int(p.name.split("seed")[1])).exists())
        if not runs:
            continue
        metrics = [json.loads(metrics_file(algorithm, int(p.name.split("seed")[1])).read_text()) for p in runs]
        f1 = [100 * m["test"]["f1"] for m in metrics]
        per_type = " / ".join(f"{statistics.mean(100 * m['test'][f'{t}_f1'] for m in metrics):.1f}" for t in ENTITY_TYPES)
        minutes = statistics.mean(run_minutes(algorithm, p) for p in runs)
        seeds = ", ".join(p.name.split("seed")[1] for p in runs)
        rows.append(
            f"| {algorithm} | {mean_std(f1)} | {' / '.join(f'{x:.1f}' for x in f1)} | "
            f"{per_type} | {minutes:.1f} | {seeds} |"
        )
    header = (
        "| algorithm | test entity F1 (mean ± std) | per seed | PER / ORG / LOC / MISC F1 (mean) | minutes per run | seeds |\n"
        "|---|---|---|---|---|---|"
    )
    return "\n".join([header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default="supervised,fixmatch,pseudo_label,mean_teacher,noisy_student")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args()
    if args.report:
        print(report())
        return
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: the benchmark reads CoNLL-2003 from ../shared/data/conll2003 next to the checkout.")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    algorithms = chosen(args.algorithms, [*ALGORITHM_ARGS, *SELF_TRAINING])
    for seed in [int(s) for s in args.seeds.split(",")]:
        for algorithm in algorithms:
            if metrics_file(algorithm, seed).exists():
                print(f"skip {algorithm} seed {seed}: done", flush=True)
                continue
            metrics = run_one(algorithm, seed, args.overrides)
            print(
                f"{algorithm} seed {seed}: test F1 {metrics['test']['f1']:.4f} "
                f"(selected step {metrics['selected_step']}, {metrics['total_seconds'] / 60:.1f} min)",
                flush=True,
            )
    print(report())


if __name__ == "__main__":
    main()
