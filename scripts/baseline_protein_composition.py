"""A no-network yardstick for the protein benchmarks: logistic regression on residue composition.

    python scripts/baseline_protein_composition.py amp|deeploc|deeploc_prevalence [--seeds 0,1,2]

Features of each sequence: the frequencies of the 20 standard residues over the whole sequence,
over its first 50 and over its last 50 residues (signal and transit peptides sit at the ends),
and log length; standardised on the labeled rows. Classifier: scikit-learn's LogisticRegression
with C=0.1, fixed before any run. The labeled rows and the test set are exactly those of
scripts/benchmark_protein.py for the same seed (same config, same sampling code); the unlabeled
pool is not used. Prints accuracy and MCC mean ± std over the seeds.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from bench_common import ROOT, mean_std, offline

offline()
RESIDUES = "ACDEFGHIKLMNPQRSTVWY"
END = 50


def composition(sequence: str) -> list[float]:
    parts = (sequence, sequence[:END], sequence[-END:])
    return [part.count(r) / max(1, len(part)) for part in parts for r in RESIDUES] + [float(np.log(len(sequence)))]


def main() -> None:
    import benchmark_protein

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", choices=sorted(benchmark_protein.BENCHMARKS))
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, matthews_corrcoef
    from sklearn.preprocessing import StandardScaler

    from ssl_text.data.text_data import load_text_data
    from ssl_text.training.run_config import load_config

    datasets.disable_progress_bars()
    spec = benchmark_protein.BENCHMARKS[args.bench]
    if not spec["data"].is_dir():
        sys.exit(f"{spec['data']} not found: the protein benchmarks read ../shared/data next to the checkout.")
    if args.bench.startswith("deeploc"):
        benchmark_protein.split_deeploc(benchmark_protein.OUT / "deeploc")
    accuracy, mcc = [], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = load_config(ROOT / "configs" / spec["config"],
                          ["output_dir=unused", *spec.get("overrides", []), f"data.sampling.seed={seed}"])
        data = load_text_data(cfg.data)
        x_lb = np.array([composition(s) for s in data.labeled["text"]])
        x_test = np.array([composition(s) for s in data.test["text"]])
        scaler = StandardScaler().fit(x_lb)
        clf = LogisticRegression(C=0.1, max_iter=5000).fit(scaler.transform(x_lb), data.labeled["label"])
        predicted = clf.predict(scaler.transform(x_test))
        accuracy.append(100 * accuracy_score(data.test["label"], predicted))
        mcc.append(matthews_corrcoef(data.test["label"], predicted))
        print(f"seed {seed}: {len(x_lb)} labeled, {len(x_test)} test: accuracy {accuracy[-1]:.1f}, MCC {mcc[-1]:.3f}")
    mcc_spread = f" ± {statistics.stdev(mcc):.3f}" if len(mcc) > 1 else ""
    print(f"{args.bench}: accuracy {mean_std(accuracy)}, MCC {statistics.mean(mcc):.3f}{mcc_spread}")


if __name__ == "__main__":
    main()
