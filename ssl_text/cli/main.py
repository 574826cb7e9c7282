"""The `ssl-text` command: train, recipe, self-train, pretrain, finetune, distill, pipeline, evaluate, augment,
predict, suggest, import-labels, push, card and push-dataset.

Every sub-command's parser names the function that runs it (`set_defaults(run=...)`), so a command
cannot parse its flags and exit 0 without doing its job (tests/test_lifecycle.py checks each one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

OVERRIDABLE = "overrides"  # commands with dotted config overrides accept them anywhere on the line
EXIT_BAD_INPUT = 2  # a config, data, model or run-directory error: nothing was trained or overwritten
EXIT_STOPPED = 3  # SIGTERM or Ctrl-C: a checkpoint was saved, `--resume` continues the run
EXIT_DIVERGED = 4  # the loss was NaN or infinite for `trainer.max_nonfinite_steps` steps in a row: a checkpoint was saved
EXIT_COLLAPSED = 5  # pseudo-labels stayed on one class for `trainer.collapse_patience` steps: a checkpoint was saved


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _print_json(obj) -> None:
    """Print once: under `accelerate launch` every process returns the metrics, the main one prints them."""
    from accelerate import PartialState

    PartialState().print(json.dumps(obj, indent=2))


def _print_once(message: str) -> None:
    """To standard error, from the main process: every process of a launch stops alike."""
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(message, file=sys.stderr)


def _pick(metrics: dict, keys: tuple[str, ...]) -> dict:
    return {k: metrics[k] for k in keys if k in metrics}


def run_train(args) -> None:
    from ssl_text.pipelines.train import train
    from ssl_text.training.run_config import load_config

    metrics = train(load_config(args.config, args.overrides), resume=args.resume, overwrite=args.overwrite)
    _print_json(_pick(metrics, ("algorithm", "selected_step", "validation", "test", "train_seconds")))


def run_recipe(args) -> None:
    from ssl_text.pipelines.recipe import recipe
    from ssl_text.training.run_config import load_config

    metrics = recipe(load_config(args.config, args.overrides), resume=args.resume, overwrite=args.overwrite)
    _print_json(_pick(metrics, ("selected_step", "selected_on", "validation", "test", "test_last_step", "recipe")))


def run_pretrain(args) -> None:
    from ssl_text.pipelines.pretrain import load_pretrain_config, pretrain

    metrics = pretrain(load_pretrain_config(args.config, args.overrides), resume=args.resume, overwrite=args.overwrite)
    _print_json(_pick(metrics, ("objective", "encoder", "selected_step", "held_out", "corpus", "total_seconds")))


def run_self_train(args) -> None:
    from ssl_text.pipelines.self_training import PseudoLabeling, self_train
    from ssl_text.training.run_config import load_config

    cfg = load_config(args.config, args.overrides)
    given = {"tau": args.tau, "lambda_u": args.lambda_u}  # left out: PseudoLabeling's defaults
    labeling = PseudoLabeling(
        hard_labels=args.hard_labels, balance=args.balance, agreement=args.agreement,
        **{k: v for k, v in given.items() if v is not None},
    )
    records = self_train(cfg, args.rounds, labeling, resume=args.resume, overwrite=args.overwrite, teacher=args.teacher)
    _print_json([_pick(r, ("round", "algorithm", "test", "pseudo_labels")) for r in records])


def run_evaluate(args) -> None:
    from ssl_text.pipelines.predict import eval_spec_from_args, evaluate_run, load_run

    cfg, _ = load_run(args.run_dir)
    spec = eval_spec_from_args(cfg, args.data, args.split, args.column_names, args.text_columns, args.label_column)
    print(json.dumps(evaluate_run(args.run_dir, spec, args.batch_size), indent=2))


def run_predict(args) -> None:
    from ssl_text.pipelines.predict import predict_texts, read_texts, write_jsonl

    records = predict_texts(args.run_dir, read_texts(args.input, args.text_column), args.batch_size)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            write_jsonl(records, out)
    else:
        write_jsonl(records, sys.stdout)


def run_suggest(args) -> None:
    from ssl_text.data.annotations import pool_spec
    from ssl_text.pipelines.suggest import suggest

    record = suggest(
        pool_spec(args.pool, args.text_columns), args.out, args.n, args.strategy, run_dir=args.run_dir,
        labeled=args.labeled, labels=args.labels, encoder=args.encoder, seed=args.seed, batch_size=args.batch_size,
    )
    if record is not None:  # the main process of a launch
        _print_json(record)
        if record["stopping"]:
            print(f"stopping signal: {record['stopping']['message']}", file=sys.stderr)


def run_import_labels(args) -> None:
    from ssl_text.data.annotations import import_labels, load_pool, pool_spec

    print(json.dumps(import_labels(args.exports, load_pool(pool_spec(args.pool, args.text_columns)), args.labels, args.out),
                     indent=2))


def run_push(args) -> None:
    from ssl_text.hub.push import push_run

    print(push_run(args.run_dir, args.repo_id, private=args.private, revision=args.revision))


def run_card(args) -> None:
    from ssl_text.hub.model_card import build_model_card

    print(build_model_card(args.run_dir, args.repo_id), end="")


def run_push_dataset(args) -> None:
    from ssl_text.hub.push import push_dataset

    print(push_dataset(args.path, args.repo_id, private=args.private, revision=args.revision, split=args.split))


def build_parser() -> argparse.ArgumentParser:
    from ssl_text.cli.augment import add_back_translate_parser
    from ssl_text.cli.simclrv2 import add_parsers as add_simclrv2_parsers

    parser = argparse.ArgumentParser(prog="ssl-text", description="Semi-supervised learning for Transformer encoders.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.max_steps=200 algorithm.tau=0.9")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in output_dir")
    p.set_defaults(run=run_train)

    p = sub.add_parser("recipe", help="the recommended semi-supervised recipe: contrastive warm start, agreement "
                       "pseudo-labels, a student (ssl_text/pipelines/recipe.py)")
    p.add_argument("config", help="YAML config (data, model, trainer for the student, optional `recipe:` section)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. recipe.keep=0.4 trainer.max_steps=200")
    p.add_argument("--resume", action="store_true", help="keep finished stages, continue the student from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recipe run in output_dir")
    p.set_defaults(run=run_recipe)

    p = sub.add_parser("self-train", help="multi-round self-training (Noisy Student): a teacher, then students on its pseudo-labels")
    p.add_argument("config", help="YAML config of the round-0 teacher (any algorithm)")
    p.add_argument("overrides", nargs="*", help="dotted overrides of that config")
    p.add_argument("--rounds", type=int, required=True, help="student rounds after the teacher (run dirs round_0..round_N)")
    p.add_argument("--tau", type=float, default=None,
                   help="keep pool examples whose teacher confidence reaches tau (default 0.9, the documented recipe)")
    p.add_argument("--hard-labels", action="store_true", help="one-hot targets instead of the teacher's probabilities")
    p.add_argument("--balance", action="store_true", help="resample the pseudo-labels to the labeled class prior")
    p.add_argument("--agreement", action="store_true",
                   help="pseudo-label only pool texts whose teacher argmax is the kNN vote of the teacher's sentence "
                        "embeddings (text classification)")
    p.add_argument("--lambda-u", type=float, default=None, help="the students' weight of the pseudo-labeled loss (default 1)")
    p.add_argument("--teacher", default=None, help="a finished run directory to use as round 0 instead of training one")
    p.add_argument("--resume", action="store_true", help="skip finished rounds, continue the unfinished one")
    p.add_argument("--overwrite", action="store_true", help="replace an existing self-training run in output_dir")
    p.set_defaults(run=run_self_train)

    p = sub.add_parser("pretrain", help="pretrain an encoder on unlabeled sequences/text (masked LM) from a YAML config")
    p.add_argument("config", help="YAML pretraining config (see ssl_text/pipelines/pretrain.py)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.max_steps=2000 data.max_length=64")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in output_dir")
    p.set_defaults(run=run_pretrain)

    add_simclrv2_parsers(sub)  # finetune, distill, pipeline simclrv2

    p = sub.add_parser("evaluate", help="evaluate a run's selected model on labeled data")
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help="local file, saved dataset folder or Hub dataset id")
    p.add_argument("--split", default=None)
    p.add_argument("--column-names", type=_csv_list, default=None, help="for CSV without header: a,b,c")
    p.add_argument("--text-columns", type=_csv_list, default=None)
    p.add_argument("--label-column", default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("augment", help="precompute augmented views of a dataset")
    augment = p.add_subparsers(dest="augment_command", required=True)
    add_back_translate_parser(augment)  # runs ssl_text.cli.augment.run_back_translate

    p = sub.add_parser("predict", help="label raw texts with a run's selected model (JSONL out)")
    p.add_argument("run_dir")
    p.add_argument("--input", required=True, help=".txt (one text per line), .csv, .jsonl or .parquet")
    p.add_argument("--text-column", default="text")
    p.add_argument("--output", default=None, help="JSONL file; default: standard output")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(run=run_predict)

    pool_help = ("data file, glob, save_to_disk folder or Hub id; or a dataset spec, as a YAML file or inline: "
                 "'{path: pool.csv, column_names: [label, title, body], text_columns: [title, body]}'")
    p = sub.add_parser("suggest", help="which texts of a pool to label next (active learning): CSV, JSONL, Label Studio tasks")
    p.add_argument("--pool", required=True, help=pool_help)
    p.add_argument("--text-columns", type=_csv_list, default=None, help="the pool's text column(s), joined (default: text)")
    p.add_argument("--run", dest="run_dir", default=None,
                   help="a finished run: its model's predictions rank the pool (warm start); without it, a cold start "
                        "from sentence embeddings")
    p.add_argument("--labeled", default=None,
                   help="a labeled file (what import-labels writes) whose texts are not suggested again; the labeled "
                        "rows of --run are left out too")
    p.add_argument("--n", type=int, required=True, help="how many texts to suggest")
    p.add_argument("--strategy", required=True,
                   help="kmeans, typicality, coreset or random (no model needed); least_confidence, entropy, margin, "
                        "bald, badge, cal, knn_disagreement (with --run); balanced_<name> spreads the picks over classes")
    p.add_argument("--labels", type=_csv_list, default=None,
                   help="cold start: the classes, for the Label Studio labeling config (a run brings its own)")
    p.add_argument("--encoder", default=None, help="cold start: the sentence encoder (default packaged:all-MiniLM-L6-v2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", required=True, help="the active-learning folder: the same one every round")
    p.set_defaults(run=run_suggest)

    p = sub.add_parser("import-labels", help="merge Label Studio JSON exports or CSVs of index,label into a labeled file")
    p.add_argument("exports", nargs="+", help="Label Studio JSON export(s) and/or CSV file(s) with columns index,label")
    p.add_argument("--pool", required=True, help=pool_help + " (the pool the texts were suggested from)")
    p.add_argument("--text-columns", type=_csv_list, default=None, help="the pool's text column(s), joined (default: text)")
    p.add_argument("--labels", type=_csv_list, required=True, help="the classes, e.g. World,Sports,Business,Sci/Tech")
    p.add_argument("--out", required=True,
                   help="the labeled file (.jsonl or .csv) to merge into: created if missing, its rows kept")
    p.set_defaults(run=run_import_labels)

    p = sub.add_parser("push", help="upload a run's selected model, config, metrics, plots and model card to the Hub")
    p.add_argument("run_dir")
    p.add_argument("repo_id", help="user/name or org/name (a bare name goes to the token owner's namespace)")
    p.add_argument("--private", action="store_true", help="create the repo as private (an existing repo keeps its visibility)")
    p.add_argument("--revision", default=None, help="branch to push to; created from main when missing")
    p.set_defaults(run=run_push)

    p = sub.add_parser("card", help="print the model card of a finished run (best/README.md), offline")
    p.add_argument("run_dir")
    p.add_argument("--repo-id", default=None, help="the Hub repo the card should name, as `ssl-text push` would write it")
    p.set_defaults(run=run_card)

    p = sub.add_parser("push-dataset", help="upload a save_to_disk folder (e.g. back-translations) as a Hub dataset")
    p.add_argument("path", help="folder written by Dataset.save_to_disk / DatasetDict.save_to_disk")
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", default=None)
    p.add_argument("--split", default="train", help="split name for a single Dataset (a DatasetDict keeps its own)")
    p.set_defaults(run=run_push_dataset)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import datasets

    datasets.disable_progress_bars()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (not hasattr(args, OVERRIDABLE) or any("=" not in item or item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    from ssl_text.augment.back_translation import BackTranslationError
    from ssl_text.config import ConfigError
    from ssl_text.data.loading import DataError
    from ssl_text.hub.push import HubError
    from ssl_text.models.resolve import ModelMismatchError
    from ssl_text.training.run_dir import RunDirError
    from ssl_text.training.trainer import NonFiniteLossError, PseudoLabelCollapseError, TrainingInterrupted

    words = (args.command, getattr(args, "augment_command", None), getattr(args, "name", None))  # name: the recipe
    command = " ".join(filter(None, words))
    try:
        args.run(args)
    except (ConfigError, DataError, RunDirError, ModelMismatchError, HubError, BackTranslationError) as err:
        print(f"ssl-text {command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingInterrupted as err:  # the checkpoint is saved: a message, not a traceback
        _print_once(f"ssl-text {command}: {err}")
        return EXIT_STOPPED
    except NonFiniteLossError as err:  # names the causes; a checkpoint is saved
        _print_once(f"ssl-text {command}: error: {err}")
        return EXIT_DIVERGED
    except PseudoLabelCollapseError as err:  # names the distribution and the advice; a checkpoint is saved
        _print_once(f"ssl-text {command}: error: {err}")
        return EXIT_COLLAPSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
