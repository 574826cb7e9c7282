"""``back-translate`` sub-command.

``add_back_translate_parser(subparsers)`` registers it on an argparse sub-parser group;
``main(argv)`` runs it stand-alone::

    python -m ssl_text.cli.augment back-translate --data train.csv --column-names label,title,description \\
        --text-columns title,description --clean --backend apertium --out runs/bt
    # several processes (shard i -> process i % world size, merged by the main process):
    accelerate launch --num_processes 2 -m ssl_text.cli.augment back-translate ...
    # on a machine without GPUs `accelerate launch --cpu --num_processes 2` starts a single
    # process unless mpirun is configured; torchrun-style CPU workers are started with
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m ssl_text.cli.augment back-translate ...
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ssl_text.augment.back_translation import (
    ApertiumBackend,
    BackTranslationError,
    MarianBackend,
    back_translate,
    marian_model_ids,
    process_state,
)
from ssl_text.data.loading import clean_text

DEFAULT_PIVOTS = {"marian": "de", "apertium": "spa"}
DEFAULT_SOURCE = {"marian": "en", "apertium": "eng"}


def _csv_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {value!r}")
    return items


def add_back_translate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "back-translate",
        help="add back-translated paraphrases (aug_0 ... aug_{K-1}) to a text dataset",
        description="Translate every text to a pivot language and back, offline and resumably; "
        "writes OUT (Dataset.save_to_disk), OUT/data.parquet, OUT/summary.json.",
    )
    p.add_argument("--data", required=True, help="csv/tsv/json/jsonl/parquet file or a save_to_disk folder")
    p.add_argument("--split", default=None, help="split to use when --data is a saved DatasetDict (default: train)")
    p.add_argument("--column-names", type=_csv_list, default=None, help="column names for a header-less CSV/TSV")
    p.add_argument("--text-column", default="text", help="column to translate (default: text)")
    p.add_argument("--text-columns", type=_csv_list, default=None,
                   help="join these columns with a space into --text-column first (e.g. title,description)")
    p.add_argument("--clean", action="store_true",
                   help="clean the text before translating (literal backslashes, HTML entities incl. "
                        "'#39;' without '&', tags); the cleaned text replaces --text-column")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--out", required=True, help="output folder (resumes when it holds an unfinished run)")
    p.add_argument("--backend", choices=["marian", "apertium"], default="marian")
    p.add_argument("--pivot", action="append", default=None,
                   help="pivot language, repeatable (default: de for marian, spa for apertium)")
    p.add_argument("--source-lang", default=None, help="language of the texts (default: en / eng)")
    p.add_argument("--num-paraphrases", type=int, default=1, help="K paraphrases per pivot")
    p.add_argument("--temperature", type=float, default=0.9, help="sampling temperature (marian)")
    p.add_argument("--top-k", type=int, default=0, help="top-k sampling, 0 = full distribution (marian)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="generation limit (marian; default 1.5 x input length + 10, at most 512)")
    p.add_argument("--forward-model", action="append", default=None,
                   help="model id or folder source->pivot (marian; repeat once per --pivot)")
    p.add_argument("--backward-model", action="append", default=None,
                   help="model id or folder pivot->source (marian; repeat once per --pivot)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="sentences per generate() call (marian, default 32) or per apertium call (default 5000)")
    p.add_argument("--shard-size", type=int, default=512, help="rows per resumable shard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="discard an earlier run in --out")
    p.set_defaults(run=run_back_translate)
    return p


def load_data(path: str, *, column_names: list[str] | None = None, split: str | None = None,
              limit: int | None = None):
    """Load a local file or ``save_to_disk`` folder with the data layer's loader."""
    from ssl_text.config import DatasetSpec
    from ssl_text.data.loading import DataError, load_spec

    if not Path(path).exists():
        raise BackTranslationError(f"--data {path}: no such file or folder")
    spec = DatasetSpec(path=path, split=split or "train", column_names=column_names, limit=limit)
    try:
        return load_spec(spec)
    except DataError as e:
        raise BackTranslationError(f"--data {path}: {e}") from e


def prepare_text_column(ds, text_column: str, text_columns: list[str] | None, clean: bool):
    """Build (``text_columns``) and/or clean the column to translate; keeps the column order."""
    if not text_columns and not clean:
        return ds
    sources = text_columns or [text_column]
    missing = [c for c in sources if c not in ds.column_names]
    if missing:
        raise BackTranslationError(
            f"column(s) {missing} not in the data (columns: {', '.join(ds.column_names)}); "
            "for a header-less CSV name the columns with --column-names")
    values = [ds[c] for c in sources]
    texts = [" ".join(str(v) for v in row if v is not None and str(v) != "") for row in zip(*values)]
    if clean:
        texts = [clean_text(t) for t in texts]
    order = list(ds.column_names)
    if text_column in order:
        ds = ds.remove_columns(text_column)
    else:
        order.append(text_column)
    return ds.add_column(text_column, texts).select_columns(order)


def build_paraphrasers(args, device=None) -> list:
    backend = args.backend
    src = args.source_lang or DEFAULT_SOURCE[backend]
    fwd, bwd = args.forward_model or [], args.backward_model or []
    if backend == "apertium":
        if fwd or bwd:
            raise BackTranslationError("--forward-model/--backward-model apply to --backend marian only")
        return [ApertiumBackend(pivot, src, batch_size=args.batch_size or 5000)
                for pivot in (args.pivot or [DEFAULT_PIVOTS[backend]])]
    if len(fwd) != len(bwd):
        raise BackTranslationError("give as many --backward-model as --forward-model (one pair per pivot)")
    if fwd:
        pivots = args.pivot or ([f"model{i}" for i in range(len(fwd))] if len(fwd) > 1 else ["custom"])
        if len(pivots) != len(fwd):
            raise BackTranslationError(f"{len(pivots)} --pivot but {len(fwd)} model pairs; give one pair per pivot")
        pairs = list(zip(fwd, bwd))
    else:
        pivots = args.pivot or [DEFAULT_PIVOTS[backend]]
        pairs = [marian_model_ids(src, p) for p in pivots]
    return [MarianBackend(f, b, pivot=p, temperature=args.temperature, top_k=args.top_k,
                          batch_size=args.batch_size or 32, max_new_tokens=args.max_new_tokens, device=device)
            for p, (f, b) in zip(pivots, pairs)]


def run_back_translate(args) -> int:
    accelerator = process_state()  # device, rank and barriers from accelerate (see its docstring)
    if Path(args.out).resolve() == Path(args.data).resolve():
        raise BackTranslationError("--out must differ from --data")
    with accelerator.main_process_first():
        ds = load_data(args.data, column_names=args.column_names, split=args.split, limit=args.limit)
    ds = prepare_text_column(ds, args.text_column, args.text_columns, args.clean)
    paraphrasers = build_paraphrasers(args, device=accelerator.device)
    summary = back_translate(ds, args.out, paraphrasers, text_column=args.text_column,
                             num_paraphrases=args.num_paraphrases, seed=args.seed,
                             shard_size=args.shard_size, overwrite=args.overwrite, accelerator=accelerator)
    if accelerator.is_main_process:
        print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssl_text.cli.augment")
    sub = parser.add_subparsers(dest="command", required=True)
    add_back_translate_parser(sub)
    args = parser.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ssl_text").setLevel(logging.INFO)
    try:
        return args.run(args)
    except BackTranslationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
