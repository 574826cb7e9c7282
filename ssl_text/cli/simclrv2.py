"""The SimCLRv2-path commands of `ssl-text`: finetune, distill and `pipeline simclrv2`
(`ssl-text pretrain` is the pretraining command, see ssl_text/pipelines/pretrain.py)."""

from __future__ import annotations

import json


def add_parsers(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a pretrained encoder on the labels (`ssl-text train` from RUN_DIR/encoder)")
    p.add_argument("config", help="YAML run config, as for `ssl-text train`")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.projection_head_layers=1")
    p.add_argument("--pretrained", default=None, metavar="PRETRAIN_RUN",
                   help="an `ssl-text pretrain` run directory: sets model.name_or_path=PRETRAIN_RUN/encoder")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in output_dir")
    p.set_defaults(run=run_finetune)

    p = sub.add_parser("distill", help="distil a teacher run into a student on the unlabeled data (config with a `distill:` section)")
    p.add_argument("config", help="YAML run config with a `distill:` section (teacher, temperature, alpha, student)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. distill.temperature=2 distill.student.num_layers=3")
    p.add_argument("--resume", action="store_true", help="continue the student's run in output_dir")
    p.add_argument("--overwrite", action="store_true", help="replace the student's run (matching teacher targets are kept)")
    p.set_defaults(run=run_distill)

    p = sub.add_parser("pipeline", help="run a multi-stage recipe: `simclrv2` = pretrain -> finetune -> distill, with a report")
    p.add_argument("name", choices=["simclrv2"], help="the recipe")
    p.add_argument("config", help="YAML pipeline config (sections pretrain, finetune, distill, report)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. pretrain.trainer.max_steps=200")
    p.add_argument("--overwrite", action="store_true", help="delete the pipeline's output_dir first (default: skip finished stages)")
    p.set_defaults(run=run_pipeline)


def _summary(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("algorithm", "selected_step", "validation", "test", "train_seconds", "distill") if k in metrics}


def run_finetune(args) -> None:
    from accelerate import PartialState

    from ssl_text.pipelines.train import train
    from ssl_text.training.run_config import load_config

    overrides = list(args.overrides)
    if args.pretrained:
        from pathlib import Path

        from ssl_text.pipelines.pretrain import ENCODER

        overrides.append(f"model.name_or_path={Path(args.pretrained) / ENCODER}")
    cfg = load_config(args.config, overrides)
    metrics = train(cfg, resume=args.resume, overwrite=args.overwrite)
    PartialState().print(json.dumps(_summary(metrics), indent=2))  # once, from the main process


def run_distill(args) -> None:
    from accelerate import PartialState

    from ssl_text.pipelines.distill import distill, load_distill_config

    cfg, dcfg = load_distill_config(args.config, args.overrides)
    summary = _summary(distill(cfg, dcfg, resume=args.resume, overwrite=args.overwrite))
    summary.get("distill", {}).get("teacher_targets", {}).pop("shards", None)
    PartialState().print(json.dumps(summary, indent=2))  # once, from the main process


def run_pipeline(args) -> None:
    from accelerate import PartialState

    from ssl_text.pipelines.simclrv2 import load_simclrv2_config, report_markdown, run_simclrv2

    report = run_simclrv2(load_simclrv2_config(args.config, args.overrides), overwrite=args.overwrite)
    PartialState().print(report_markdown(report))
