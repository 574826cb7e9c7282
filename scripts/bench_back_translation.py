"""Throughput of the back-translation backends on CPU (sentences per second, round trip).

    HF_HUB_OFFLINE=1 python scripts/bench_back_translation.py [--sentences 1000] [--threads 1]

Sentences come from the AG News sample in ../shared/data (cleaned, split into sentences),
or a built-in list when it is absent. Backends: the tiny random Marian pair from
``ssl_text.augment.testing`` (d_model 32, random weights, so outputs run to the length limit:
this measures the pipeline, tokenization and generate() overhead, not the speed of a real
OPUS-MT model with d_model 512 and 6+6 layers) and Apertium eng->spa->eng when the binary is
installed. One timed pass after a small warm-up.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssl_text.augment.back_translation import (  # noqa: E402
    ApertiumBackend,
    MarianBackend,
    split_sentences,
)
from ssl_text.data.loading import clean_text  # noqa: E402

AG_NEWS = REPO.parent / "shared" / "data" / "ag_news" / "train_sample5000.csv"
FALLBACK = [
    "The cat sat on the mat.", "Oil prices fell for the third day as traders worried about demand.",
    "Scientists found water on a distant planet, the agency said on Tuesday.",
    "Apple released a security update yesterday.", "The team won the championship in the final minute.",
]


def load_sentences(n: int) -> tuple[list[str], str]:
    if AG_NEWS.exists():
        sents: list[str] = []
        with AG_NEWS.open(encoding="utf-8") as f:
            for _label, title, desc in csv.reader(f):
                sents.extend(split_sentences(clean_text(f"{title} {desc}")))
                if len(sents) >= n:
                    break
        return sents[:n], f"AG News ({AG_NEWS.name})"
    return [FALLBACK[i % len(FALLBACK)] for i in range(n)], "built-in sentences"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=1000, help="sentences for apertium")
    ap.add_argument("--marian-sentences", type=int, default=256, help="sentences for the tiny Marian pair")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for a tiny model)")
    ap.add_argument("--batch-size", type=int, default=32, help="Marian batch size")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    sents, source = load_sentences(max(args.sentences, args.marian_sentences))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from ssl_text.augment.testing import build_tiny_marian_pair

        fwd, bwd = build_tiny_marian_pair(tmp)
        marian = MarianBackend(fwd, bwd, pivot="xx", batch_size=args.batch_size, device="cpu")
        marian.paraphrase(sents[:8], 1, 0)  # load + warm-up
        part = sents[: args.marian_sentences]
        secs = timed(lambda: marian.paraphrase(part, 1, 0))
        rows.append(("marian (tiny random, d_model 32)", len(part), secs,
                     f"batch {args.batch_size}, {args.threads} thread(s), K=1"))
    if shutil.which("apertium"):
        apt = ApertiumBackend("spa")
        apt.paraphrase(sents[:8], 1, 0)
        part = sents[: args.sentences]
        secs = timed(lambda: apt.paraphrase(part, 1, 0))
        rows.append(("apertium eng-spa-eng", len(part), secs, "one subprocess per direction"))
    else:
        rows.append(("apertium eng-spa-eng", 0, float("nan"), "skipped: apertium not installed"))

    print(f"sentences: {source}, mean {sum(map(len, sents)) / len(sents):.0f} characters; "
          f"torch {torch.__version__}, {os.cpu_count()} CPU cores")
    print(f"| {'backend':34} | {'sentences':>9} | {'seconds':>8} | {'sentences/s':>11} | notes")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 10}|{'-' * 13}|------")
    for name, n, secs, note in rows:
        rate = n / secs if n and secs > 0 else float("nan")
        print(f"| {name:34} | {n:9d} | {secs:8.2f} | {rate:11.1f} | {note}")


if __name__ == "__main__":
    main()
