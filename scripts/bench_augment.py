"""Throughput of the view operations (issue #4), in sequences per second on one CPU thread.

    OMP_NUM_THREADS=1 python scripts/bench_augment.py [--batches 300] [--word-texts 1024] [--mlm-batches 3]

Every operation runs as `ssl-text train` runs it: built from the registry into a view pipeline,
with a fresh seeded generator per batch.

* Token-level operations: batches of 64 x 128 token ids, every row full (126 ids of AG News text
  cut from the tokenized stream, plus [CLS] and [SEP]; all-MiniLM-L6-v2's WordPiece vocabulary).
* Word-level operations: AG News texts (title and description, cleaned) from
  ../shared/data/ag_news/test.csv when present, else examples/data/ag_news/test.csv, in batches of
  32 (the unlabeled batch of lb_batch_size 8 x mu 4). "operation" times the text operation alone,
  "view" adds what the collator does next: tokenizing the new texts (fast tokenizer, max_length 128)
  and padding. `tfidf_replace` is fitted on the whole file first (fit time reported).
  `contextual_substitute` uses a BERT-base-sized masked LM (12 layers, 768 wide, 30,522 tokens) with
  random weights, built here (no download): the compute of bert-base-uncased, not its predictions.
  `synonym` needs NLTK's WordNet and tagger data; without it the row says so.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from ssl_text.augment.pipeline import ViewContext, ViewPipeline  # noqa: E402
from ssl_text.augment.precomputed import IDS  # noqa: E402
from ssl_text.augment.registry import parse_pipeline  # noqa: E402
from ssl_text.augment.word_ops import MissingResourceError, missing_nltk_data  # noqa: E402
from ssl_text.data.batching import pad_ids  # noqa: E402
from ssl_text.data.loading import clean_text  # noqa: E402
from ssl_text.models.resolve import resolve_model_path  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "ag_news" / "test.csv"
SAMPLE = REPO / "examples" / "data" / "ag_news" / "test.csv"
TOKEN_STEPS = ["token_dropout(mask_prob=0.1)", "token_dropout(mask_prob=0.0, delete_prob=0.1)",
               "token_dropout(mask_prob=0.2, delete_prob=0.1)", "span_mask(prob=0.15, mean_length=3)",
               "token_substitute(prob=0.1)", "random_crop(prob=0.5, min_fraction=0.5)"]  # fmt: skip
WORD_STEPS = ["word_swap(0.1)", "word_delete(0.1)", "word_crop(0.1)", "synonym(0.1)", "tfidf_replace(0.1)"]


def load_texts() -> tuple[list[str], str]:
    path = SHARED if SHARED.exists() else SAMPLE
    with path.open(encoding="utf-8") as f:
        texts = [clean_text(f"{title} {description}") for _label, title, description in csv.reader(f)]
    return texts, str(path.relative_to(REPO.parent) if path == SHARED else path.relative_to(REPO))


def full_rows(tokenizer, texts: list[str], rows: int, width: int) -> list[list[int]]:
    """`rows` sequences of exactly `width` ids: [CLS] + a cut of the tokenized text stream + [SEP]."""
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)[IDS]:
        stream.extend(ids)
    body = width - 2
    if len(stream) < rows * body:
        stream = stream * (rows * body // len(stream) + 1)
    return [[tokenizer.cls_token_id, *stream[i * body : (i + 1) * body], tokenizer.sep_token_id] for i in range(rows)]


def rate(fn, batches: int, batch_size: int, warmup: int = 3) -> float:
    """Sequences per second of `fn(generator)`, one fresh seeded generator per batch."""
    for k in range(warmup):
        fn(torch.Generator().manual_seed(10_000 + k))
    start = time.perf_counter()
    for k in range(batches):
        fn(torch.Generator().manual_seed(k))
    return batches * batch_size / (time.perf_counter() - start)


def pipeline(step: str, context: ViewContext) -> ViewPipeline:
    return ViewPipeline(parse_pipeline([step], "bench"), context)


def bench_tokens(tokenizer, texts, batches: int) -> list[tuple[str, float]]:
    ids, mask = pad_ids(full_rows(tokenizer, texts, 64, 128), tokenizer.pad_token_id)  # [64, 128]
    context = ViewContext(tokenizer)
    return [(step, rate(lambda g, p=pipeline(step, context): p.apply_ids(ids, mask, g), batches, 64)) for step in TOKEN_STEPS]


def bench_words(tokenizer, texts, steps: list[str], n_texts: int, batch_size: int = 32) -> list[tuple]:
    corpus = datasets.Dataset.from_dict({"text": texts})
    encode = lambda t: tokenizer(t, truncation=True, max_length=128)[IDS]  # noqa: E731
    context = ViewContext(tokenizer, encode=encode, corpus=corpus)
    batches = [texts[i : i + batch_size] for i in range(0, min(n_texts, len(texts)), batch_size)]
    rows = [{"text": b, IDS: encode(b)} for b in batches]
    results = [("tokenize + pad only (no operation)", None, rate_over(lambda g, b: pad_ids(encode(b), 0), batches, batch_size), "")]
    for step in steps:
        started = time.perf_counter()
        try:
            p = pipeline(step, context)
        except MissingResourceError:
            results.append((step, None, None, f"not measured: NLTK data {missing_nltk_data()} is not installed here"))
            continue
        built = time.perf_counter() - started
        op = p.text_ops[0]
        alone = rate_over(lambda g, b: op(b, {}, g), batches, batch_size)
        view = rate_over(lambda g, r: p(r, g), rows, batch_size)
        note = f"fitted on {len(texts)} texts in {built:.1f} s" if step.startswith("tfidf") else ""
        results.append((step, alone, view, note))
    return results


def rate_over(fn, items: list, batch_size: int) -> float:
    """Sequences per second of `fn(generator, item)` over `items` (batches), after one warm-up call."""
    fn(torch.Generator().manual_seed(99_999), items[0])
    start = time.perf_counter()
    sequences = 0
    for k, item in enumerate(items):
        fn(torch.Generator().manual_seed(k), item)
        sequences += len(item) if isinstance(item, list) else len(item["text"])
    return sequences / (time.perf_counter() - start)


def bench_contextual(tokenizer, texts, batches: int, batch_size: int = 32) -> tuple[str, float, float, str]:
    from transformers import BertConfig, BertForMaskedLM

    with tempfile.TemporaryDirectory(prefix="bench_mlm_") as folder:
        torch.manual_seed(0)
        BertForMaskedLM(BertConfig(vocab_size=len(tokenizer))).save_pretrained(folder)  # bert-base shape
        tokenizer.save_pretrained(folder)
        step = f"contextual_substitute(model={folder!r}, prob=0.15)"
        results = bench_words(tokenizer, texts, [step], batches * batch_size, batch_size)[1]
    return ("contextual_substitute(prob=0.15), BERT-base-sized MLM", results[1], results[2], "random weights, CPU")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=300, help="timed batches per token-level operation")
    ap.add_argument("--word-texts", type=int, default=1024, help="texts per word-level operation")
    ap.add_argument("--mlm-batches", type=int, default=3, help="timed batches of 32 for the masked LM")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("packaged:all-MiniLM-L6-v2"))
    texts, source = load_texts()
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread; texts: {source} ({len(texts)})\n")  # fmt: skip
    print("| token-level operation (64 x 128 ids) | sequences/s |\n|---|---|")
    for step, value in bench_tokens(tokenizer, texts, args.batches):
        print(f"| `{step}` | {value:,.0f} |")
    print("\n| word-level operation (batches of 32 texts) | operation alone, seq/s | view (+ tokenize, pad), seq/s | note |")
    print("|---|---|---|---|")
    rows = bench_words(tokenizer, texts, WORD_STEPS, args.word_texts)
    rows.append(bench_contextual(tokenizer, texts, args.mlm_batches))
    for step, alone, view, note in rows:
        cells = [f"{v:,.0f}" if v is not None and v >= 100 else (f"{v:.1f}" if v is not None else "-") for v in (alone, view)]
        print(f"| `{step}` | {cells[0]} | {cells[1]} | {note} |")


if __name__ == "__main__":
    main()
