"""The `ssl-text` command: train, evaluate, predict."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssl-text", description="Semi-supervised learning for Transformer encoders.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.max_steps=200 algorithm.tau=0.9")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in output_dir")

    p = sub.add_parser("evaluate", help="evaluate a run's selected model on labeled data")
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help="local file, saved dataset folder or Hub dataset id")
    p.add_argument("--split", default=None)
    p.add_argument("--column-names", type=_csv_list, default=None, help="for CSV without header: a,b,c")
    p.add_argument("--text-columns", type=_csv_list, default=None)
    p.add_argument("--label-column", default=None)
    p.add_argument("--batch-size", type=int, default=64)

    p = sub.add_parser("predict", help="label raw texts with a run's selected model (JSONL out)")
    p.add_argument("run_dir")
    p.add_argument("--input", required=True, help=".txt (one text per line), .csv, .jsonl or .parquet")
    p.add_argument("--text-column", default="text")
    p.add_argument("--output", default=None, help="JSONL file; default: standard output")
    p.add_argument("--batch-size", type=int, default=64)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "train" or any("=" not in item or item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    from ssl_text.config import ConfigError
    from ssl_text.data import DataError
    from ssl_text.run_dir import RunDirError
    from tasks.text_classification import ModelMismatchError

    try:
        if args.command == "train":
            from ssl_text.config import load_config
            from ssl_text.train import train

            cfg = load_config(args.config, args.overrides)
            metrics = train(cfg, resume=args.resume, overwrite=args.overwrite)
            summary = {k: metrics[k] for k in ("algorithm", "selected_step", "validation", "test", "train_seconds") if k in metrics}
            print(json.dumps(summary, indent=2))
        elif args.command == "evaluate":
            from ssl_text.predict import eval_spec_from_args, evaluate_run, load_run

            cfg, _ = load_run(args.run_dir)
            spec = eval_spec_from_args(cfg, args.data, args.split, args.column_names, args.text_columns, args.label_column)
            print(json.dumps(evaluate_run(args.run_dir, spec, args.batch_size), indent=2))
        elif args.command == "predict":
            from ssl_text.predict import predict_texts, read_texts, write_jsonl

            records = predict_texts(args.run_dir, read_texts(args.input, args.text_column), args.batch_size)
            if args.output:
                with open(args.output, "w", encoding="utf-8") as out:
                    write_jsonl(records, out)
            else:
                write_jsonl(records, sys.stdout)
    except (ConfigError, DataError, RunDirError, ModelMismatchError) as err:
        print(f"ssl-text {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
