"""Quickstart: FixMatch against the supervised baseline on the shipped AG News sample.

    python scripts/quickstart.py [key=value overrides applied to both runs]

Both runs use configs/quickstart.yaml (40 labels, ~960 unlabeled texts, the packaged
all-MiniLM-L6-v2) and the same step budget; the script prints both test accuracies.
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import datasets
import transformers

from ssl_text.pipelines.train import train
from ssl_text.training.run_config import load_config

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "quickstart.yaml")


def main(overrides: list[str]) -> None:
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    results = {}
    for algorithm in ("supervised", "fixmatch"):
        extra = [f"output_dir=runs/quickstart/{algorithm}"]
        if algorithm == "supervised":
            extra.append("algorithm={name: supervised}")
        cfg = load_config(CONFIG, [*extra, *overrides])
        print(f"== {algorithm}: {cfg.trainer.max_steps} steps", flush=True)
        results[algorithm] = train(cfg, overwrite=True)
    print()
    print(f"{'algorithm':<12} {'test accuracy':>14} {'macro-F1':>9} {'minutes':>8}")
    for name, metrics in results.items():
        test = metrics["test"]
        print(f"{name:<12} {test['accuracy']:>14.3f} {test['macro_f1']:>9.3f} {metrics['total_seconds'] / 60:>8.1f}")
    print("\nmodels: runs/quickstart/<algorithm>/best (load with transformers.pipeline('text-classification', model=...))")


if __name__ == "__main__":
    main(sys.argv[1:])
