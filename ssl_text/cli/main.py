"""The `ssl-text` command: train, evaluate, predict, push (model) and push-dataset."""

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

    p = sub.add_parser("self-train", help="multi-round self-training (Noisy Student): a teacher, then students on its pseudo-labels")
    p.add_argument("config", help="YAML config of the round-0 teacher (any algorithm)")
    p.add_argument("overrides", nargs="*", help="dotted overrides of that config")
    p.add_argument("--rounds", type=int, required=True, help="student rounds after the teacher (run dirs round_0..round_N)")
    p.add_argument("--tau", type=float, default=None, help="keep pool examples whose teacher confidence reaches tau (default 0.3)")
    p.add_argument("--hard-labels", action="store_true", help="one-hot targets instead of the teacher's probabilities")
    p.add_argument("--balance", action="store_true", help="resample the pseudo-labels to the labeled class prior")
    p.add_argument("--lambda-u", type=float, default=None, help="the students' weight of the pseudo-labeled loss (default 1)")
    p.add_argument("--teacher", default=None, help="a finished run directory to use as round 0 instead of training one")
    p.add_argument("--resume", action="store_true", help="skip finished rounds, continue the unfinished one")
    p.add_argument("--overwrite", action="store_true", help="replace an existing self-training run in output_dir")

    p = sub.add_parser("pretrain", help="pretrain an encoder on unlabeled sequences/text (masked LM) from a YAML config")
    p.add_argument("config", help="YAML pretraining config (see ssl_text/pipelines/pretrain.py)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.max_steps=2000 data.max_length=64")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in output_dir")

    from ssl_text.cli.simclrv2 import add_parsers as add_simclrv2_parsers

    add_simclrv2_parsers(sub)  # finetune, distill, pipeline simclrv2

    p = sub.add_parser("evaluate", help="evaluate a run's selected model on labeled data")
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help="local file, saved dataset folder or Hub dataset id")
    p.add_argument("--split", default=None)
    p.add_argument("--column-names", type=_csv_list, default=None, help="for CSV without header: a,b,c")
    p.add_argument("--text-columns", type=_csv_list, default=None)
    p.add_argument("--label-column", default=None)
    p.add_argument("--batch-size", type=int, default=64)

    p = sub.add_parser("augment", help="precompute augmented views of a dataset")
    augment = p.add_subparsers(dest="augment_command", required=True)
    from ssl_text.cli.augment import add_back_translate_parser

    add_back_translate_parser(augment)

    p = sub.add_parser("predict", help="label raw texts with a run's selected model (JSONL out)")
    p.add_argument("run_dir")
    p.add_argument("--input", required=True, help=".txt (one text per line), .csv, .jsonl or .parquet")
    p.add_argument("--text-column", default="text")
    p.add_argument("--output", default=None, help="JSONL file; default: standard output")
    p.add_argument("--batch-size", type=int, default=64)

    p = sub.add_parser("push", help="upload a run's selected model, config, metrics, plots and model card to the Hub")
    p.add_argument("run_dir")
    p.add_argument("repo_id", help="user/name or org/name (a bare name goes to the token owner's namespace)")
    p.add_argument("--private", action="store_true", help="create the repo as private (an existing repo keeps its visibility)")
    p.add_argument("--revision", default=None, help="branch to push to; created from main when missing")

    p = sub.add_parser("push-dataset", help="upload a save_to_disk folder (e.g. back-translations) as a Hub dataset")
    p.add_argument("path", help="folder written by Dataset.save_to_disk / DatasetDict.save_to_disk")
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", default=None)
    p.add_argument("--split", default="train", help="split name for a single Dataset (a DatasetDict keeps its own)")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import datasets

    datasets.disable_progress_bars()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command not in ("train", "pretrain", "self-train", "finetune", "distill", "pipeline") or any("=" not in item or item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    from ssl_text.config import ConfigError
    from ssl_text.data.loading import DataError
    from ssl_text.hub.push import HubError
    from ssl_text.models.resolve import ModelMismatchError
    from ssl_text.training.lifecycle import check_launch
    from ssl_text.training.run_dir import RunDirError

    try:
        if args.command == "train":
            from ssl_text.pipelines.train import train
            from ssl_text.training.run_config import load_config

            cfg = load_config(args.config, args.overrides)
            check_launch()
            metrics = train(cfg, resume=args.resume, overwrite=args.overwrite)
            summary = {k: metrics[k] for k in ("algorithm", "selected_step", "validation", "test", "train_seconds") if k in metrics}
            print(json.dumps(summary, indent=2))
        elif args.command == "pretrain":
            from ssl_text.pipelines.pretrain import load_pretrain_config, pretrain

            cfg = load_pretrain_config(args.config, args.overrides)
            metrics = pretrain(cfg, resume=args.resume, overwrite=args.overwrite)
            summary = {k: metrics[k] for k in ("objective", "encoder", "selected_step", "held_out", "corpus", "total_seconds") if k in metrics}
            print(json.dumps(summary, indent=2))
        elif args.command == "self-train":
            from ssl_text.pipelines.self_training import PseudoLabeling, self_train
            from ssl_text.training.run_config import load_config

            cfg = load_config(args.config, args.overrides)
            given = {"tau": args.tau, "lambda_u": args.lambda_u}
            labeling = PseudoLabeling(
                hard_labels=args.hard_labels, balance=args.balance, **{k: v for k, v in given.items() if v is not None}
            )
            records = self_train(cfg, args.rounds, labeling, resume=args.resume, overwrite=args.overwrite, teacher=args.teacher)
            print(json.dumps([{k: r[k] for k in ("round", "algorithm", "test", "pseudo_labels") if k in r} for r in records], indent=2))
        elif args.command in ("finetune", "distill", "pipeline"):
            from ssl_text.cli.simclrv2 import run_command

            run_command(args)
        elif args.command == "evaluate":
            from ssl_text.pipelines.predict import eval_spec_from_args, evaluate_run, load_run

            cfg, _ = load_run(args.run_dir)
            spec = eval_spec_from_args(cfg, args.data, args.split, args.column_names, args.text_columns, args.label_column)
            print(json.dumps(evaluate_run(args.run_dir, spec, args.batch_size), indent=2))
        elif args.command == "predict":
            from ssl_text.pipelines.predict import predict_texts, read_texts, write_jsonl

            records = predict_texts(args.run_dir, read_texts(args.input, args.text_column), args.batch_size)
            if args.output:
                with open(args.output, "w", encoding="utf-8") as out:
                    write_jsonl(records, out)
            else:
                write_jsonl(records, sys.stdout)
        elif args.command == "push":
            from ssl_text.hub.push import push_run

            print(push_run(args.run_dir, args.repo_id, private=args.private, revision=args.revision))
        elif args.command == "push-dataset":
            from ssl_text.hub.push import push_dataset

            print(push_dataset(args.path, args.repo_id, private=args.private, revision=args.revision, split=args.split))
    except (ConfigError, DataError, RunDirError, ModelMismatchError, HubError) as err:
        print(f"ssl-text {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
