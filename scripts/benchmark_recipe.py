"""The recommended recipe (`ssl-text recipe`) against supervised fine-tuning on AG News, SST-2 and Banking77.

    python scripts/benchmark_recipe.py --dataset agnews|sst2_16|sst2_64|banking77
                                       [--arms recipe,supervised,ceiling,pi_model,fixmatch,fixmatch_knn]
                                       [--seeds 0,1,2] [--report] [key=value overrides for every run]

Settings are the datasets' benchmark configs (configs/{agnews,sst2,banking77}_benchmark.yaml) with the project's
defaults; nothing is set per dataset beyond the data and the label count. Each run writes
runs/benchmark/recipe/<dataset>/<arm>_seed<k>/ (finished runs are skipped). `--report` prints the markdown table:
test accuracy and macro-F1 of the last step (no validation needed) and, where the config has a validation split,
of the validation-selected step, per seed, mean ± population std, and CPU minutes per run.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import statistics
import sys
from pathlib import Path

from bench_common import COLLAPSE_FILE, ROOT, RUNS, SHARED_DATA, offline

offline()
OUT = RUNS / "recipe"
DATASETS = {
    "agnews": ("agnews_benchmark.yaml", []),
    "sst2_16": ("sst2_benchmark.yaml", ["data.sampling.num_per_class=8"]),
    "sst2_64": ("sst2_benchmark.yaml", ["data.sampling.num_per_class=32"]),
    "banking77": ("banking77_benchmark.yaml", []),
}
# the zoo's best rows on AG News 40 (docs/benchmarks.md: pi_model 85.6, FixMatch 84.3), with AG News's settings for
# them (scripts/benchmark.py), run unchanged on the other datasets: the "existing best rows" of issue #18's tables
ZOO = ("pi_model", "fixmatch", "fixmatch_knn")
ARMS = ("recipe", "supervised", "ceiling", *ZOO)
SHARED_CEILING = {"sst2_64": "sst2_16"}  # the same pool with every text labeled: one ceiling run serves both settings
# the label-gap ceiling: supervised fine-tuning of the same model, same budget, with every pool text labeled
CEILING_ARGS = ["data.sampling={num_per_class: null, rest_as_unlabeled: false}"]


def dataset_overrides(dataset: str) -> list[str]:
    """Paths the configs cannot hold: the AG News validation rows, and test sets without the texts of the pool."""
    if dataset == "agnews":
        from benchmark import write_validation

        ag = SHARED_DATA / "ag_news"
        validation = RUNS / "agnews" / "validation.csv"
        write_validation(validation)
        return [f"data.labeled.path={ag / 'train_sample5000.csv'}", f"data.test.path={ag / 'test.csv'}",
                f"data.validation.path={validation}"]
    if dataset.startswith("sst2"):
        test = dedup_test(SHARED_DATA / "sst2" / "dev.tsv", SHARED_DATA / "sst2" / "train.tsv", "sentence", "\t")
        return [f"data.test.path={test}"]
    test = dedup_test(SHARED_DATA / "banking77" / "test.csv", SHARED_DATA / "banking77" / "train.csv", "text", ",")
    return [f"data.test.path={test}"]


def dedup_test(test: Path, train: Path, column: str, delimiter: str) -> Path:
    """The test file without the texts that also appear in train (the project refuses to test on texts it trains
    on; Banking77 has 6 such queries of 3,080). Written once to runs/benchmark/recipe/<name>."""
    out = OUT / f"{test.parent.name}_{test.stem}_dedup{test.suffix}"
    if out.exists():
        return out

    def key(text: str) -> str:
        return text.strip().lower()

    with open(train, encoding="utf-8", newline="") as f:
        seen = {key(r[column]) for r in csv.DictReader(f, delimiter=delimiter)}
    with open(test, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        rows = [r for r in reader if key(r[column]) not in seen]
        fields = reader.fieldnames
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return out


def run_dir(dataset: str, arm: str, seed: int) -> Path:
    if arm == "ceiling":
        dataset = SHARED_CEILING.get(dataset, dataset)
    return OUT / dataset / f"{arm}_seed{seed}"


def metrics_file(dataset: str, arm: str, seed: int) -> Path:
    return run_dir(dataset, arm, seed) / ("student" if arm == "recipe" else "") / "metrics.json"


def arm_overrides(arm: str) -> list[str]:
    """What an arm sets on top of the dataset's benchmark config (whose algorithm is `supervised`)."""
    if arm == "ceiling":
        return CEILING_ARGS
    if arm in ZOO:
        from benchmark import ALGORITHM_ARGS

        return ALGORITHM_ARGS[arm]
    return []


def stopped_file(dataset: str, arm: str, seed: int) -> Path:
    """Written instead of metrics when the collapse guard stopped the run: a zoo row's outcome, as a user gets it."""
    return run_dir(dataset, arm, seed) / COLLAPSE_FILE


def run_one(dataset: str, arm: str, seed: int, extra: list[str]) -> dict | None:
    """The run's metrics, or None when the collapse guard stopped it (stopped_file says where and why)."""
    from ssl_text.training.run_config import load_config
    from ssl_text.training.trainer import PseudoLabelCollapseError

    config, dataset_args = DATASETS[dataset]
    overrides = [f"output_dir={run_dir(dataset, arm, seed)}", f"data.sampling.seed={seed}", f"trainer.seed={seed}",
                 *dataset_args, *dataset_overrides(dataset), *arm_overrides(arm), *extra]
    cfg = load_config(ROOT / "configs" / config, overrides)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    if arm == "recipe":
        from ssl_text.pipelines.recipe import recipe

        metrics = recipe(cfg, resume=(run_dir(dataset, arm, seed) / "config.yaml").exists())  # finished stages kept
    else:
        from ssl_text.pipelines.train import train

        try:
            metrics = train(cfg, overwrite=True)
        except PseudoLabelCollapseError as stop:
            stopped_file(dataset, arm, seed).write_text(json.dumps({"stopped_by_collapse_guard": str(stop), "cpu_minutes": round(
                _cpu_seconds_since(cpu_before) / 60, 2)}, indent=2))
            return None
    record = {"cpu_minutes": round(_cpu_seconds_since(cpu_before) / 60, 2),
              "wall_minutes": round(metrics["total_seconds"] / 60, 2)}
    (run_dir(dataset, arm, seed) / "benchmark_cost.json").write_text(json.dumps(record))
    return metrics


def _cpu_seconds_since(before) -> float:
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.pstdev(values):.1f}"


def arm_metrics(dataset: str, arm: str) -> tuple[list[int], list[dict]]:
    seeds = sorted(int(p.name.split("seed")[1]) for p in run_dir(dataset, arm, 0).parent.glob(f"{arm}_seed*")
                   if metrics_file(dataset, arm, int(p.name.split("seed")[1])).exists())
    return seeds, [json.loads(metrics_file(dataset, arm, k).read_text()) for k in seeds]


def peers_file(dataset: str) -> Path:
    return OUT / f"peers_{dataset}.json"


def report(dataset: str) -> str:
    lines = [f"{dataset}: test accuracy / macro-F1 (%), mean ± population std over seeds; last step (no validation "
             "needed) and, where the config has a validation split, the validation-selected step",
             "", "| row | accuracy, last step | per seed | macro-F1 | accuracy, validation-selected | "
             "CPU min / run | seeds |", "|---|---|---|---|---|---|---|"]
    means, per_seed = {}, {}
    for arm in ARMS:
        stopped = sorted(int(p.parent.name.split("seed")[1])
                         for p in run_dir(dataset, arm, 0).parent.glob(f"{arm}_seed*/{COLLAPSE_FILE}"))
        if stopped:
            steps = [re.search(r"step (\d+)", json.loads(stopped_file(dataset, arm, k).read_text())["stopped_by_collapse_guard"])
                     for k in stopped]
            lines.append(f"| {arm} | stopped by the collapse guard (exit status 5) at step "
                         f"{' / '.join(m.group(1) if m else '?' for m in steps)} | | | | | {', '.join(map(str, stopped))} |")
        seeds, metrics = arm_metrics(dataset, arm)
        if not seeds:
            continue
        last = [100 * m["test_last_step"]["accuracy"] for m in metrics]
        means[arm] = statistics.mean(last)
        per_seed[arm] = dict(zip(seeds, last))
        f1 = [100 * m["test_last_step"]["macro_f1"] for m in metrics]
        selected = (mean_std([100 * m["test"]["accuracy"] for m in metrics])
                    if all(m["selected_on"] == "validation" for m in metrics) else "(no validation split)")
        costs = [json.loads((run_dir(dataset, arm, k) / "benchmark_cost.json").read_text())["cpu_minutes"]
                 for k in seeds if (run_dir(dataset, arm, k) / "benchmark_cost.json").exists()]
        cost = f"{statistics.mean(costs):.1f}" if costs else "?"
        lines.append(f"| {arm} | {mean_std(last)} | {' / '.join(f'{v:.1f}' for v in last)} | {mean_std(f1)} | "
                     f"{selected} | {cost} | {', '.join(map(str, seeds))} |")
    if peers_file(dataset).exists():
        peers = json.loads(peers_file(dataset).read_text())
        for peer in peers["methods"]:
            acc = [100 * peers["per_seed"][str(k)][peer]["accuracy"] for k in peers["seeds"]]
            per_seed[peer] = dict(zip(peers["seeds"], acc))
            f1 = [100 * peers["per_seed"][str(k)][peer]["macro_f1"] for k in peers["seeds"]]
            cpu = statistics.mean(peers["per_seed"][str(k)][peer]["seconds"] for k in peers["seeds"]) / 60
            lines.append(f"| {peer} (peer) | {mean_std(acc)} | {' / '.join(f'{v:.1f}' for v in acc)} | {mean_std(f1)} | "
                         f"(selects nothing) | {cpu:.1f} (wall) | {', '.join(map(str, peers['seeds']))} |")
    for other in (row for row in ("supervised", "setfit", *ZOO) if row in per_seed and "recipe" in per_seed):
        paired = sorted(set(per_seed["recipe"]) & set(per_seed[other]))
        wins = [k for k in paired if per_seed["recipe"][k] > per_seed[other][k]]
        lines.append(f"\nrecipe above {other} on {len(wins)} of {len(paired)} seeds (seeds {', '.join(map(str, wins))})")
    if {"recipe", "supervised", "ceiling"} <= set(means) and means["ceiling"] != means["supervised"]:
        share = (means["recipe"] - means["supervised"]) / (means["ceiling"] - means["supervised"])
        lines.append(f"\nshare of the label gap recovered: (recipe − supervised) / (ceiling − supervised) = {share:.2f}")
    return "\n".join(lines)


def run_peers(dataset: str, seeds: str, extra: list[str]) -> None:
    import peers

    config, dataset_args = DATASETS[dataset]
    overrides = [*dataset_args, *dataset_overrides(dataset), "data.validation=null", *extra]
    peers.main([str(ROOT / "configs" / config), *overrides, "--seeds", seeds, "--out", str(peers_file(dataset))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--arms", default="recipe,supervised", help=f"from {', '.join(ARMS)} (ceiling: every pool "
                        "text labeled, the share-of-gap denominator; pi_model, fixmatch: the zoo's best AG News rows; "
                        "fixmatch_knn: fixmatch with `knn_agreement`)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--peers", action="store_true", help="run the peers (SetFit, logistic regression, "
                        "LabelSpreading; scripts/peers.py) on the same labels, pool and test set instead")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = parser.parse_args()
    if args.report:
        print(report(args.dataset))
        return
    if not SHARED_DATA.is_dir():
        sys.exit(f"{SHARED_DATA} not found: the benchmark reads ../shared/data next to the checkout.")
    if args.peers:
        run_peers(args.dataset, args.seeds, args.overrides)
        print(report(args.dataset))
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"--arms: unknown {unknown}; choose from {', '.join(ARMS)}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        for arm in arms:
            if metrics_file(args.dataset, arm, seed).exists() or stopped_file(args.dataset, arm, seed).exists():
                print(f"skip {arm} seed {seed}: done", flush=True)
                continue
            metrics = run_one(args.dataset, arm, seed, args.overrides)
            if metrics is None:
                print(f"{args.dataset} {arm} seed {seed}: stopped by the collapse guard "
                      f"({stopped_file(args.dataset, arm, seed)})", flush=True)
                continue
            print(f"{args.dataset} {arm} seed {seed}: test accuracy {metrics['test_last_step']['accuracy']:.4f} "
                  f"(last step), {metrics['total_seconds'] / 60:.1f} min", flush=True)
    print(report(args.dataset))


if __name__ == "__main__":
    main()
