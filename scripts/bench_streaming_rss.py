"""Peak memory of a run that streams its unlabeled corpus, for a small and a 100x larger corpus (issue #8).

    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_streaming_rss.py [--sizes 10000 1000000] [--steps 30]

Writes `runs/streaming_rss/unlabeled_{n}.txt` (the AG News sample's texts, cleaned, shuffled and
repeated to n lines) and a tiny random BERT with the all-MiniLM-L6-v2 tokenizer, then runs, each in a
fresh process, for each corpus:

- `train`: a FixMatch run of `--steps` steps, 10 labels per class, `data.unlabeled: {streaming: true}`;
- `pass`: one full pass over the streamed corpus: the unlabeled batch stream of the same config is
  fast-forwarded past every row (each row read, joined, indexed and through the shuffle buffer;
  none tokenized), then draws one batch.

The peak resident set size of each process is its `ru_maxrss` (`os.wait4`). Prints a table and
the large/small ratios and writes them to `runs/streaming_rss/results.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "streaming_rss"
AG_NEWS = ROOT / "examples" / "data" / "ag_news"
AG_COLUMNS = {"column_names": ["label", "title", "description"], "text_columns": ["title", "description"], "clean_text": True}


def write_corpus(lines: int) -> Path:
    from ssl_text.data.loading import clean_text

    texts = []
    for split in ("train", "validation", "test"):
        with open(AG_NEWS / f"{split}.csv", newline="") as f:
            texts += [clean_text(f"{title} {description}") for _, title, description in csv.reader(f)]
    rng = random.Random(0)
    path = OUT / f"unlabeled_{lines}.txt"
    with open(path, "w") as f:
        written = 0
        while written < lines:
            rng.shuffle(texts)
            chunk = texts[: lines - written]
            f.write("\n".join(chunk) + "\n")
            written += len(chunk)
    return path


def write_tiny_model() -> Path:
    """A 2-layer, 64-wide random BERT with the all-MiniLM-L6-v2 tokenizer (real tokenization, small weights)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ssl_text.models.resolve import resolve_model_path

    path = OUT / "tiny_bert"
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("packaged:all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def run_config(corpus: Path, model: Path, run_dir: Path, steps: int):
    from ssl_text.training.run_config import parse_config

    return parse_config({
        "output_dir": str(run_dir),
        "model": {"name_or_path": str(model)},
        "data": {
            "labeled": {"path": str(AG_NEWS / "train.csv"), **AG_COLUMNS},
            "unlabeled": {"path": str(corpus), "streaming": True},
            "validation": {"path": str(AG_NEWS / "validation.csv"), **AG_COLUMNS},
            "sampling": {"num_per_class": 10, "seed": 0},
            "label_map": {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"},
            "max_length": 64,
        },
        "algorithm": {"name": "fixmatch", "tau": 0.95},
        "trainer": {"max_steps": steps, "lb_batch_size": 8, "mu": 4, "eval_every": steps, "save_every": steps,
                    "log_every": 10, "progress_bar": False, "mixed_precision": "no"},
    }, "bench_streaming_rss")


def child(mode: str, corpus: Path, model: Path, run_dir: Path, steps: int) -> dict:
    """Runs in the measured process; returns what it did."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    cfg = run_config(corpus, model, run_dir, steps)
    if mode == "train":
        from ssl_text.pipelines.train import train

        metrics = train(cfg, overwrite=True)
        return {"steps": steps, "validation_accuracy": metrics["validation"]["accuracy"]}
    from accelerate import Accelerator

    from ssl_text.pipelines.train import prepare
    from ssl_text.training.streaming import unlabeled_batches

    p = prepare(cfg, Accelerator(cpu=True))
    collate = p.task.collator(p.tokenizer, cfg.views, p.algorithm.views).unlabeled
    stream = unlabeled_batches(p.unlabeled, cfg, p.task, p.tokenizer, collate, rank=0, world_size=1)
    rows = sum(1 for _ in open(corpus))
    stream.load_state_dict({"batches_drawn": rows // (cfg.trainer.lb_batch_size * cfg.trainer.mu)})
    started = time.perf_counter()
    batch = next(stream)
    return {"rows_passed": rows, "pass_seconds": round(time.perf_counter() - started, 1),
            "last_batch_rows": len(batch["ulb_index"])}


def measure(mode: str, corpus: Path, model: Path, steps: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--corpus", str(corpus), "--model", str(model), "--steps", str(steps)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} on {corpus.name} failed with exit code {proc.returncode}")
    report = json.loads(output.strip().splitlines()[-1])
    return {"mode": mode, "lines": int(corpus.stem.split("_")[-1]), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "wall_seconds": round(time.perf_counter() - started, 1), **report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--child", choices=["train", "pass"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.child:
        run_dir = OUT / f"run_{args.child}_{args.corpus.stem}"
        print(json.dumps(child(args.child, args.corpus, args.model, run_dir, args.steps)))
        return

    OUT.mkdir(parents=True, exist_ok=True)
    model = write_tiny_model()
    corpora = [write_corpus(n) for n in args.sizes]
    results = [measure(mode, corpus, model, args.steps) for mode in ("train", "pass") for corpus in corpora]
    print(f"{'mode':6} {'lines':>9} {'peak RSS MiB':>13} {'wall s':>7}")
    for r in results:
        print(f"{r['mode']:6} {r['lines']:>9,} {r['peak_rss_mib']:>13.1f} {r['wall_seconds']:>7.1f}")
    ratios = {}
    for mode in ("train", "pass"):
        small, large = (r["peak_rss_mib"] for r in results if r["mode"] == mode)
        ratios[mode] = round(large / small, 3)
        print(f"{mode}: peak RSS {args.sizes[1]:,} lines / {args.sizes[0]:,} lines = {ratios[mode]:.3f}")
    summary = {"results": results, "ratios": ratios, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
               "command": "OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_streaming_rss.py " + " ".join(sys.argv[1:])}
    (OUT / "results.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
