"""Cost of the machinery: one FixMatch trainer step against the bare model math it contains.

    python scripts/bench_step_overhead.py [--steps 12] [key=value overrides of configs/quickstart.yaml]

Both are timed in the same process on the same pre-drawn batches (no data loading), alternating:
- bare: `model(**lb)` and `model(**strong)` forward + backward, `model(**weak)` forward under no_grad;
- trainer: `Trainer.train_step()` (FixMatch loss, masks, logging parts, clipping, AdamW, schedule).
Prints the median seconds of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import tempfile

import datasets
import torch
import torch.nn.functional as F
import transformers
from accelerate import Accelerator
from accelerate.utils import send_to_device

from ssl_text.augment.collate import TextCollator
from ssl_text.data.batching import BatchStream
from ssl_text.pipelines.train import prepare
from ssl_text.training.run_config import load_config
from ssl_text.training.trainer import Trainer

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "quickstart.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    cfg = load_config(CONFIG, ["algorithm={name: fixmatch, tau: 0.9}", "trainer.mu=4", *args.overrides])
    t = cfg.trainer
    accelerator = Accelerator(mixed_precision="no" if t.mixed_precision == "auto" else t.mixed_precision)
    torch.manual_seed(0)
    p = prepare(cfg, accelerator)
    collator = TextCollator(p.tokenizer, cfg.views, p.algorithm.views)
    lb = BatchStream(p.labeled, t.lb_batch_size, 0, collator.labeled, salt=1)
    ulb = BatchStream(p.unlabeled, t.lb_batch_size * t.mu, 0, collator.unlabeled, salt=2)
    batches = []
    for _ in range(args.steps + 2):
        batch = next(lb)
        batch.update(next(ulb))
        batches.append(send_to_device(batch, accelerator.device))

    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(t, accelerator, p.model, p.algorithm, lb, ulb, run_dir, num_classes=len(p.label_names))
        model = trainer.model
        model.train()
        supply = iter(batches)
        trainer.next_batch = lambda: next(supply)

        def bare(batch) -> None:
            with accelerator.autocast():
                loss = F.cross_entropy(model(**batch["lb"]).logits, batch["lb_labels"])
                with torch.no_grad():
                    targets = model(**batch["ulb_weak"]).logits.argmax(-1)
                loss = loss + F.cross_entropy(model(**batch["ulb_strong"]).logits, targets)
            loss.backward()
            model.zero_grad(set_to_none=True)

        bare_s, step_s = [], []
        for i, batch in enumerate(batches):
            start = time.perf_counter()
            bare(batch)
            mid = time.perf_counter()
            trainer.train_step()
            end = time.perf_counter()
            if i >= 2:  # the first two are warm-up
                bare_s.append(mid - start)
                step_s.append(end - mid)
    b, s = statistics.median(bare_s), statistics.median(step_s)
    print(f"batch: {t.lb_batch_size} labeled + {t.lb_batch_size * t.mu} unlabeled x 2 views, max_length {cfg.data.max_length}")
    print(f"bare model math: {b:.3f} s   trainer step: {s:.3f} s   ratio: {s / b:.3f}  ({len(bare_s)} steps, medians)")


if __name__ == "__main__":
    main()
