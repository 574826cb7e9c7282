"""AG News, 40 labels: the arms of the SimCLRv2 path (issue 7), on the protocol of scripts/benchmark.py.

    python scripts/benchmark_simclrv2.py [--seeds 0,1,2] [--arms a,b,...,g] [--report] [key=value ...]
    python scripts/benchmark_simclrv2.py --speed      # only the student-vs-teacher inference speed

Arms (configs/simclrv2_agnews.yaml; the same labels, pool, validation and test per seed):
  finetune_only      (a) supervised fine-tuning of all-MiniLM-L6-v2 on the 40 labels (no pretraining,
                         no projection head)
  pretrain_finetune  (b) contrastive pretraining on the unlabeled texts, then fine-tuning from the
                         first layer of the projection head
  self_distill       (c) (b), then distillation into a student of the same size, initialised from the
                         pretrained encoder (same head layer)
  distill_3layer     (d) (b), then distillation into a 3-layer student made of the teacher's layers 0, 2, 4
  pretrain_finetune_ssl  (e) (b) with a semi-supervised fine-tune stage: pi_model on the 40 labels and
                         the pool, with scripts/benchmark.py's settings for it
  self_distill_ssl   (f) (e), then distillation into a same-size student as in (c)
  distill_3layer_ssl (g) (e), then distillation into the 3-layer student of (d)
One pretraining run (no labels used) serves every seed: runs/benchmark/simclrv2/pretrain. The
other runs are runs/benchmark/simclrv2/<arm>_seed<k>/ (metrics.json in each); finished runs are
skipped, so the script can be stopped and rerun. `key=value` overrides apply to the pipeline config
(e.g. pretrain.trainer.max_steps=300 distill.temperature=2). `--report` prints the table from what
exists; `--speed` times the 6-layer MiniLM teacher against its 3-layer alternate-layer student on one
batch of 64 test texts x 64 tokens on CPU (median of 10 runs) and writes runs/benchmark/simclrv2/speed.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys

from bench_common import (
    ROOT,
    RUNS,
    SHARED_DATA,
    chosen,
    mean_std,
    offline,
    resume_or_overwrite,
)

offline()
DATA = SHARED_DATA / "ag_news"
OUT = RUNS / "simclrv2"
CONFIG = ROOT / "configs" / "simclrv2_agnews.yaml"
VALIDATION = RUNS / "agnews" / "validation.csv"
ARMS = {"a": "finetune_only", "b": "pretrain_finetune", "c": "self_distill", "d": "distill_3layer",
        "e": "pretrain_finetune_ssl", "f": "self_distill_ssl", "g": "distill_3layer_ssl"}
TEACHERS = {"self_distill": "pretrain_finetune", "distill_3layer": "pretrain_finetune",
            "self_distill_ssl": "pretrain_finetune_ssl", "distill_3layer_ssl": "pretrain_finetune_ssl"}
# The fine-tune algorithm of (e), as scripts/benchmark.py's pi_model row (the zoo's best on AG News).
SSL_FINETUNE = {"name": "pi_model", "lambda_u": 10.0, "rampup_steps": 100}
TEACHER = "packaged:all-MiniLM-L6-v2"


def pipeline_raw(overrides: list[str]) -> dict:
    from ssl_text.config import apply_overrides, read_yaml

    return apply_overrides(read_yaml(CONFIG), overrides)


def seeded(section: dict, seed: int) -> dict:
    out = copy.deepcopy(section)
    out.setdefault("data", {}).setdefault("sampling", {})["seed"] = seed
    out.setdefault("trainer", {})["seed"] = seed
    return out


def run_arm(arm: str, seed: int, raw: dict) -> dict:
    from ssl_text.pipelines.distill import distill, parse_distill_config
    from ssl_text.pipelines.pretrain import ENCODER
    from ssl_text.pipelines.simclrv2 import RUN_OVERRIDES, _deep_merge
    from ssl_text.pipelines.train import train
    from ssl_text.training.run_config import parse_config

    task = raw.get("task", "text_classification")
    encoder = str(OUT / "pretrain" / ENCODER)
    finetune = seeded(raw["finetune"], seed)
    finetune["task"] = task
    if arm == "finetune_only":
        finetune["model"] = {"name_or_path": raw["pretrain"]["model"]["name_or_path"], "projection_head_layers": 0}
        finetune["output_dir"] = str(OUT / f"{arm}_seed{seed}")
        return train(parse_config(finetune, f"{CONFIG} ({arm})"), **resume_or_overwrite(OUT / f"{arm}_seed{seed}"))
    finetune["model"] = {**finetune.get("model", {}), "name_or_path": encoder}
    if arm in ("pretrain_finetune", "pretrain_finetune_ssl"):
        if arm == "pretrain_finetune_ssl":
            finetune["algorithm"] = dict(SSL_FINETUNE)
        finetune["output_dir"] = str(OUT / f"{arm}_seed{seed}")
        return train(parse_config(finetune, f"{CONFIG} ({arm})"), **resume_or_overwrite(OUT / f"{arm}_seed{seed}"))
    teacher_dir = OUT / f"{TEACHERS[arm]}_seed{seed}"
    section = copy.deepcopy(raw["distill"])
    overrides = {k: section.pop(k) for k in RUN_OVERRIDES if k in section}
    student = _deep_merge(finetune, overrides)
    student["output_dir"] = str(OUT / f"{arm}_seed{seed}")
    if arm in ("self_distill", "self_distill_ssl"):
        section["student"] = {"init": "model"}  # the pretrained encoder, same size, same head layer as the teacher
    student["distill"] = {**section, "teacher": str(teacher_dir)}
    cfg, dcfg = parse_distill_config(student, f"{CONFIG} ({arm})")
    return distill(cfg, dcfg, overwrite=True)


def run_pretrain(raw: dict) -> None:
    from ssl_text.pipelines.pretrain import parse_pretrain_config, pretrain

    if (OUT / "pretrain" / "metrics.json").exists():
        print("skip pretrain: done", flush=True)
        return
    section = {**raw["pretrain"], "output_dir": str(OUT / "pretrain"), "task": raw.get("task", "text_classification")}
    resume = (OUT / "pretrain").exists()
    metrics = pretrain(parse_pretrain_config(section, f"{CONFIG} (pretrain)"), resume=resume)
    print(f"pretrain: held-out {metrics.get('held_out')} ({metrics['total_seconds'] / 60:.1f} min)", flush=True)


def measure_speed(batch_size: int = 64, max_length: int = 64, repeats: int = 10, warmup: int = 2) -> dict:
    """The 6-layer MiniLM teacher vs its 3-layer alternate-layer student (layers 0, 2, 4), on the same batch."""
    import torch

    from ssl_text.config import DatasetSpec
    from ssl_text.data.loading import add_text_column, load_spec
    from ssl_text.models.resolve import resolve_model_path
    from ssl_text.pipelines.distill import alternate_layers, init_from_layers, num_parameters
    from ssl_text.pipelines.simclrv2 import compare_speed, padded_batch
    from ssl_text.tasks import build_task

    task = build_task("text_classification")
    path = resolve_model_path(TEACHER)
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    teacher = task.load_model(path, labels)
    layers = alternate_layers(teacher.config.num_hidden_layers, 3)
    student = init_from_layers(teacher, layers)
    spec = DatasetSpec(path=str(DATA / "test.csv"), column_names=["label", "title", "description"],
                       text_columns=["title", "description"], clean_text=True, label_column=None)
    texts = add_text_column(load_spec(spec), spec, "speed batch")["text"][:batch_size]
    batch = padded_batch(task, task.load_tokenizer(path), texts, max_length)
    timings = compare_speed({"teacher": teacher, "student": student}, {"teacher": batch, "student": batch}, repeats, warmup)
    result = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "batch": {"texts": len(texts), "tokens": max_length, "real_tokens": int(batch["attention_mask"].sum())},
        "repeats": repeats,
        "warmup": warmup,
        "teacher": {"model": TEACHER, "num_layers": teacher.config.num_hidden_layers,
                    "num_parameters": num_parameters(teacher), **timings["teacher"]},
        "student": {"init": "alternate_layers", "layers": layers, "num_layers": student.config.num_hidden_layers,
                    "num_parameters": num_parameters(student), **timings["student"]},
        "speedup": round(timings["teacher"]["median_ms"] / timings["student"]["median_ms"], 2),
        "torch": torch.__version__,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "speed.json").write_text(json.dumps(result, indent=2))
    return result


def report() -> str:
    rows = []
    for arm in ARMS.values():
        runs = sorted(OUT.glob(f"{arm}_seed*/metrics.json"))
        if not runs:
            continue
        metrics = [json.loads(p.read_text()) for p in runs]
        acc = [100 * m["test"]["accuracy"] for m in metrics]
        f1 = [100 * m["test"]["macro_f1"] for m in metrics]
        minutes = [m["total_seconds"] / 60 for m in metrics]
        seeds = ", ".join(p.parent.name.split("seed")[1] for p in runs)
        rows.append(f"| {arm} | {mean_std(acc)} | {' / '.join(f'{a:.1f}' for a in acc)} | "
                    f"{statistics.mean(f1):.1f} | {statistics.mean(minutes):.1f} | {seeds} |")
    lines = ["| arm | test accuracy (mean ± std) | per seed | macro-F1 | minutes per run | seeds |",
             "|---|---|---|---|---|---|", *rows]
    if (OUT / "pretrain" / "metrics.json").exists():
        p = json.loads((OUT / "pretrain" / "metrics.json").read_text())
        lines.append(f"\nPretraining (shared by the arms b-g): {p['total_seconds'] / 60:.1f} min, held-out {p.get('held_out')}.")
    if (OUT / "speed.json").exists():
        s = json.loads((OUT / "speed.json").read_text())
        lines.append(
            f"\nInference (CPU, {s['threads']} thread(s), {s['batch']['texts']} texts x {s['batch']['tokens']} tokens, median "
            f"of {s['repeats']}): teacher {s['teacher']['median_ms']:.0f} ms ({s['teacher']['num_layers']} layers, "
            f"{s['teacher']['num_parameters'] / 1e6:.1f} M parameters), 3-layer student {s['student']['median_ms']:.0f} ms "
            f"({s['student']['num_parameters'] / 1e6:.1f} M): {s['speedup']:.2f}x."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="a,b,c,d", help="letters or names of the arms to run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--speed", action="store_true", help="only time the 3-layer student against the 6-layer teacher")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of configs/simclrv2_agnews.yaml")
    args = parser.parse_args()
    os.chdir(ROOT)  # the config's data paths are relative to the repository root
    if args.report:
        print(report())
        return
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: the benchmark reads AG News from ../shared/data/ag_news next to the checkout.")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    if args.speed:
        print(json.dumps(measure_speed(), indent=2))
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    from benchmark import (
        write_validation,  # the validation rows of scripts/benchmark.py
    )

    if not VALIDATION.exists():
        write_validation(VALIDATION)
    raw = pipeline_raw(args.overrides)
    arms = [ARMS.get(a, a) for a in chosen(args.arms, [*ARMS, *ARMS.values()], "arm")]
    if any(arm != "finetune_only" for arm in arms):
        run_pretrain(raw)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for arm in arms:
            if (OUT / f"{arm}_seed{seed}" / "metrics.json").exists():
                print(f"skip {arm} seed {seed}: done", flush=True)
                continue
            if arm in TEACHERS and not (OUT / f"{TEACHERS[arm]}_seed{seed}" / "metrics.json").exists():
                run_arm(TEACHERS[arm], seed, raw)  # the teacher first
            metrics = run_arm(arm, seed, raw)
            print(f"{arm} seed {seed}: test accuracy {metrics['test']['accuracy']:.4f} "
                  f"(selected step {metrics['selected_step']}, {metrics['total_seconds'] / 60:.1f} min)", flush=True)
    print(report())


if __name__ == "__main__":
    main()
