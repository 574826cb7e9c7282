"""Protein benchmarks: supervised from scratch vs. supervised after MLM pretraining vs. SSL after pretraining.

    python scripts/benchmark_protein.py amp     [--seeds 0,1,2] [--ssl fixmatch,uda] [--report] [key=value ...]
    python scripts/benchmark_protein.py deeploc [--seeds 0,1,2] [--ssl fixmatch]     [--report] [key=value ...]

* amp: AMP vs non-AMP (../shared/data/amp_veltri2018), 5% of the training peptides labeled (36
  per class), the rest unlabeled, selection on the .eval files, test on the .te files. Configs:
  configs/amp_pretrain.yaml, configs/amp_benchmark.yaml.
* deeploc: 10-class localisation (../shared/data/deeploc), deeploc_our_val_set.fasta minus its 23
  Cytoplasm-Nucleus rows split 85/15 into pool/validation, 14 labels per class (about 10% of the
  pool), test on deeploc_test_set.fasta. Configs: configs/deeploc_pretrain.yaml, configs/deeploc_benchmark.yaml.
* deeploc_prevalence: deeploc with 10% of every class labeled (`data.sampling.fraction_per_class`), so the
  labels keep the pool's class shares; same split, encoder and budget.

Methods, on the same classifier budget (steps, batch, max_length):
  supervised_scratch     `supervised` on a randomly initialised small ESM (`new:small`)
  supervised_pretrained  `supervised` starting from the MLM-pretrained encoder
  <ssl>_pretrained       each SSL algorithm of --ssl starting from the same encoder; the report marks
                         the one with the best validation score (never chosen on test)
One MLM pretraining run (seed 0, no labels used) serves every seed. Runs live under
runs/benchmark/protein/<benchmark>/ (metrics.json in each); finished runs are skipped, so the
script can be stopped and rerun. Extra `key=value` overrides apply to the classifier runs;
`--pretrain-overrides` to the pretraining run. `--report` prints the markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from pathlib import Path

from bench_common import (
    ROOT,
    RUNS,
    SHARED_DATA,
    chosen,
    mean_std,
    offline,
    resume_or_overwrite,
)

offline()
DATA = SHARED_DATA
OUT = RUNS / "protein"
BENCHMARKS = {
    "amp": {"data": DATA / "amp_veltri2018", "config": "amp_benchmark.yaml", "pretrain": "amp_pretrain.yaml"},
    "deeploc": {"data": DATA / "deeploc", "config": "deeploc_benchmark.yaml", "pretrain": "deeploc_pretrain.yaml"},
}
# DeepLoc with "10% labeled" read as 10% of every class (the pool's class shares, 142 labels) instead of
# 14 per class; everything else, the pretrained encoder included, as `deeploc`.
BENCHMARKS["deeploc_prevalence"] = {
    **BENCHMARKS["deeploc"],
    "encoder_of": "deeploc",
    "overrides": ["data.sampling={num_per_class: null, fraction_per_class: 0.1, rest_as_unlabeled: true}"],
}
ALGORITHM_ARGS = {
    "supervised": "algorithm={name: supervised}",
    "fixmatch": "algorithm={name: fixmatch, tau: 0.9, lambda_u: 1.0}",
    "uda": "algorithm={name: uda, tau: 0.8, T: 0.4, lambda_u: 1.0, tsa: none}",
    "pseudo_label": "algorithm={name: pseudo_label, tau: 0.95, lambda_u: 1.0, rampup_steps: 100}",
}


def split_deeploc(out: Path, seed: int = 0, validation_share: float = 0.15) -> None:
    """Write pool.fasta / validation.fasta: deeploc_our_val_set.fasta split per class (seeded), headers kept."""
    from ssl_text.data.fasta import parse_fasta

    if (out / "pool.fasta").exists() and (out / "validation.fasta").exists():
        return
    source = DATA / "deeploc" / "deeploc_our_val_set.fasta"
    with open(source, encoding="utf-8") as f:
        records = list(parse_fasta(f, str(source)))
    by_class: dict[str, list] = {}
    for header, seq in records:
        by_class.setdefault(header.split()[1].rsplit("-", 1)[0], []).append((header, seq))
    rng = random.Random(seed)
    pool, validation = [], []
    for name in sorted(by_class):
        rows = by_class[name]
        rng.shuffle(rows)
        k = round(validation_share * len(rows))
        validation += rows[:k]
        pool += rows[k:]
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("pool", pool), ("validation", validation)):
        with open(out / f"{name}.fasta", "w", encoding="utf-8") as f:
            f.writelines(f">{h}\n{s}\n" for h, s in rows)


def run_pretrain(bench: str, overrides: list[str]) -> Path:
    from ssl_text.pipelines.pretrain import load_pretrain_config, pretrain

    bench = BENCHMARKS[bench].get("encoder_of", bench)
    run_dir = OUT / bench / "pretrain_seed0"
    if not (run_dir / "metrics.json").exists():
        cfg = load_pretrain_config(ROOT / "configs" / BENCHMARKS[bench]["pretrain"], [f"output_dir={run_dir}", *overrides])
        metrics = pretrain(cfg, overwrite=True)
        print(
            f"pretrain: held-out masked-token accuracy {metrics.get('held_out', {}).get('accuracy', float('nan')):.3f} "
            f"({metrics['total_seconds'] / 60:.1f} min)",
            flush=True,
        )
    return run_dir / "encoder"


def run_one(bench: str, method: str, algorithm: str, model: str, seed: int, extra: list[str]) -> dict:
    from ssl_text.pipelines.train import train
    from ssl_text.training.run_config import load_config

    run_dir = OUT / bench / f"{method}_seed{seed}"
    overrides = [
        f"output_dir={run_dir}",
        f"model.name_or_path={model}",
        *BENCHMARKS[bench].get("overrides", []),
        f"data.sampling.seed={seed}",
        f"trainer.seed={seed}",
        ALGORITHM_ARGS[algorithm],
        *extra,
    ]
    return train(load_config(ROOT / "configs" / BENCHMARKS[bench]["config"], overrides), **resume_or_overwrite(run_dir))


def report(bench: str) -> str:
    root = OUT / bench
    methods = sorted({p.parent.name.rsplit("_seed", 1)[0] for p in root.glob("*_seed*/metrics.json")} - {"pretrain"})
    ssl = [m for m in methods if m.endswith("_pretrained") and not m.startswith("supervised")]

    def runs(method):
        return [json.loads(p.read_text()) | {"_seed": p.parent.name.rsplit("seed", 1)[1]}
                for p in sorted(root.glob(f"{method}_seed*/metrics.json"))]  # fmt: skip

    def mean_validation(method):
        return statistics.mean(m["validation"]["accuracy"] for m in runs(method))

    best_ssl = max(ssl, key=mean_validation) if ssl else None
    order = ["supervised_scratch", "supervised_pretrained", *ssl]
    rows = []
    for method in [m for m in order if m in methods]:
        metrics = runs(method)
        acc = [100 * m["test"]["accuracy"] for m in metrics]
        f1 = [100 * m["test"]["macro_f1"] for m in metrics]
        mcc = [m["test"]["mcc"] for m in metrics]
        val = [100 * m["validation"]["accuracy"] for m in metrics]
        minutes = [m["total_seconds"] / 60 for m in metrics]
        name = f"**{method}** (best SSL on validation)" if method == best_ssl and len(ssl) > 1 else method
        rows.append(
            f"| {name} | {mean_std(acc)} | {statistics.mean(f1):.1f} | {statistics.mean(mcc):.3f} | "
            f"{statistics.mean(val):.1f} | {', '.join(str(m['selected_step']) for m in metrics)} | "
            f"{statistics.mean(minutes):.1f} | {', '.join(m['_seed'] for m in metrics)} |"
        )
    header = (
        "| method | test accuracy | test macro-F1 | test MCC | validation accuracy (selected) | selected step | "
        "minutes per run | seeds |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [header, *rows]
    pre = OUT / BENCHMARKS[bench].get("encoder_of", bench) / "pretrain_seed0" / "metrics.json"
    if pre.exists():
        m = json.loads(pre.read_text())
        held = m.get("held_out", {})
        lines.append(
            f"\nPretraining: {m['num_parameters']:,} parameters, {m['corpus']['train_sequences']:,} sequences "
            f"({m['corpus']['train_tokens']:,} tokens at max_length), {m['last_train_logs'].get('step')} steps, "
            f"held-out masked-token accuracy {held.get('accuracy', float('nan')):.3f} (loss {held.get('loss', float('nan')):.3f}), "
            f"{m['total_seconds'] / 60:.1f} min, {m['hardware']}."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--ssl", default="fixmatch", help="SSL algorithms to run after pretraining, comma-separated")
    parser.add_argument("--methods", default=None, help="subset of supervised_scratch,supervised_pretrained,<ssl>_pretrained")
    parser.add_argument("--pretrain-overrides", default="", help="space-separated key=value overrides for pretraining")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides for every classifier run")
    args = parser.parse_args()
    bench = args.benchmark
    ssl = chosen(args.ssl, [a for a in ALGORITHM_ARGS if a != "supervised"], "SSL algorithm")
    if args.report:
        print(report(bench))
        return
    if not BENCHMARKS[bench]["data"].is_dir():
        sys.exit(f"{BENCHMARKS[bench]['data']} not found: the benchmark reads ../shared/data next to the checkout.")
    os.chdir(ROOT)  # the configs name data relative to the repository root
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    if bench.startswith("deeploc"):
        split_deeploc(OUT / "deeploc")
    plan = [("supervised_scratch", "supervised", "new:small")]
    wanted = set(args.methods.split(",")) if args.methods else None
    needs_encoder = wanted is None or any(m.endswith("_pretrained") for m in wanted)
    encoder = run_pretrain(bench, args.pretrain_overrides.split()) if needs_encoder else None
    plan.append(("supervised_pretrained", "supervised", str(encoder)))
    plan += [(f"{a}_pretrained", a, str(encoder)) for a in ssl]
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method, algorithm, model in plan:
            if wanted is not None and method not in wanted:
                continue
            if (OUT / bench / f"{method}_seed{seed}" / "metrics.json").exists():
                print(f"skip {method} seed {seed}: done", flush=True)
                continue
            metrics = run_one(bench, method, algorithm, model, seed, args.overrides)
            print(
                f"{method} seed {seed}: test accuracy {metrics['test']['accuracy']:.4f}, MCC {metrics['test']['mcc']:.3f} "
                f"(selected step {metrics['selected_step']}, {metrics['total_seconds'] / 60:.1f} min)",
                flush=True,
            )
    print(report(bench))


if __name__ == "__main__":
    main()
