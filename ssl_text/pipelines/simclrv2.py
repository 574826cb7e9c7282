"""`ssl-text pipeline simclrv2 CONFIG`: pretrain -> fine-tune -> distill (Chen et al., 2020), one report.

SimCLRv2's recipe for few labels: (1) task-agnostic contrastive pretraining on the unlabeled data
(`ssl-text pretrain`, `pretrain.objective: contrastive`), (2) fine-tuning on the labels from the
pretrained encoder, optionally from a layer of its projection head (`ssl-text finetune`, any
algorithm), (3) distillation of the fine-tuned teacher into a student of the same or a smaller
size on the unlabeled data (`ssl-text distill`). One YAML names the three stages:

    output_dir: runs/simclrv2/agnews
    task: text_classification
    pretrain: {model: ..., data: ..., pretrain: {objective: contrastive, ...}, trainer: ...}   # or null: skip
    finetune: {data: ..., algorithm: ..., model: {projection_head_layers: 1}, trainer: ...}
    distill:  {temperature: 1.0, alpha: 1.0, student: {init: alternate_layers, num_layers: 3},
               trainer: ...}       # trainer/views/data/model here override the finetune config
    report:   {batch_size: 64, repeats: 10}

`finetune.model.name_or_path` is the pretraining stage's `encoder/` (set by the pipeline), the
distillation teacher is the fine-tuning stage's run. Each stage is an ordinary run directory:

OUTPUT_DIR/
  pipeline.yaml   the pipeline config as given (after overrides)
  pretrain/       `ssl-text pretrain` run (encoder/ with the projection head)
  finetune/       `ssl-text train` run (best/ = the teacher)
  distill/        `ssl-text distill` run (teacher_targets/, best/ = the student)
  report.json, report.md   the stages' validation/test metrics side by side, and the student's
                  inference speed against the teacher's (CPU, the same batch, median of runs)

Stages hand over only through the checkpoints they saved. Rerunning the pipeline skips a stage
whose outputs exist (pretrain: encoder/ and metrics.json; the others: best/ and metrics.json),
after checking that its saved config is the one the pipeline would run now, and continues an
unfinished stage from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import yaml
from accelerate import PartialState

from ssl_text.config import ConfigError, RunConfig, apply_overrides, blame_override, from_dict, read_yaml
from ssl_text.config.keys import METRICS_FILE
from ssl_text.data.loading import DataError
from ssl_text.models.resolve import ModelMismatchError
from ssl_text.training.lifecycle import check_launch, check_resume_config
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import check_is_a_directory, check_run_dir

PIPELINE_FILE = "pipeline.yaml"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
STAGES = ("pretrain", "finetune", "distill")
RUN_OVERRIDES = ("trainer", "views", "data", "model", "hub")  # distill keys that override the finetune config


@dataclass
class ReportConfig:
    batch_size: int = 64  # texts in the speed batch
    repeats: int = 10  # timed forward passes per model (the median is reported)
    warmup: int = 2  # untimed passes first
    split: Literal["test", "validation"] = "test"  # where the speed batch's texts come from


@dataclass
class SimCLRv2Config:
    output_dir: str
    pretrain: object | None  # PretrainRunConfig
    finetune: RunConfig
    distill_run: RunConfig | None
    distill: object | None  # DistillConfig
    report: ReportConfig = field(default_factory=ReportConfig)
    raw: dict = field(default_factory=dict)


def _deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_simclrv2_config(raw: dict, source: str = "<config>") -> SimCLRv2Config:
    from ssl_text.pipelines.distill import parse_distill_config
    from ssl_text.pipelines.pretrain import ENCODER, parse_pretrain_config

    raw = copy.deepcopy(raw)
    allowed = {"output_dir", "task", "pretrain", "finetune", "distill", "report"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{source}: unknown key `{unknown[0]}`; valid keys of a simclrv2 pipeline are {sorted(allowed)}.")
    for key in ("output_dir", "finetune"):
        if raw.get(key) is None:
            raise ConfigError(f"{source}: missing required key `{key}`.")
    out = Path(raw["output_dir"])
    task = raw.get("task", "text_classification")
    for stage in STAGES:
        section = raw.get(stage)
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"{source}: `{stage}` is {section!r}; expected a mapping (or null to skip the stage).")
        if section and ("output_dir" in section or "task" in section):
            raise ConfigError(f"{source}: `{stage}.output_dir`/`{stage}.task` are set by the pipeline (OUTPUT_DIR/{stage}, `task`).")

    pretrain_cfg = None
    if raw.get("pretrain") is not None:
        pretrain_cfg = parse_pretrain_config({**raw["pretrain"], "output_dir": str(out / "pretrain"), "task": task},
                                             f"{source} (pretrain)")
    fraw = {**raw["finetune"], "output_dir": str(out / "finetune"), "task": task}
    if pretrain_cfg is not None:
        encoder = str(out / "pretrain" / ENCODER)
        model = dict(fraw.get("model") or {})
        if model.get("name_or_path") not in (None, encoder):
            raise ConfigError(
                f"{source}: `finetune.model.name_or_path` is {model['name_or_path']!r}, but with a pretrain stage the "
                f"fine-tuning starts from its encoder ({encoder}); drop the key, or set `pretrain: null`."
            )
        fraw["model"] = {**model, "name_or_path": encoder}
    finetune_cfg = parse_config(fraw, f"{source} (finetune)")

    distill_run = distill_cfg = None
    if raw.get("distill") is not None:
        section = copy.deepcopy(raw["distill"])
        if section.get("teacher") is not None:
            raise ConfigError(f"{source}: `distill.teacher` is set by the pipeline (the finetune stage).")
        overrides = {k: section.pop(k) for k in RUN_OVERRIDES if k in section}
        draw = _deep_merge(fraw, overrides)
        draw["output_dir"] = str(out / "distill")
        draw["distill"] = {**section, "teacher": str(out / "finetune")}
        distill_run, distill_cfg = parse_distill_config(draw, f"{source} (distill)")
    report = from_dict(ReportConfig, raw.get("report") or {}, source, prefix="report.")
    if report.batch_size < 1 or report.repeats < 1 or report.warmup < 0:
        raise ConfigError(f"{source}: `report.batch_size` and `report.repeats` must be positive, `report.warmup` >= 0.")
    return SimCLRv2Config(str(out), pretrain_cfg, finetune_cfg, distill_run, distill_cfg, report, raw)


def load_simclrv2_config(path: str | Path, overrides: list[str] | None = None) -> SimCLRv2Config:
    overrides = list(overrides or [])
    raw = apply_overrides(read_yaml(path), overrides)
    try:
        return parse_simclrv2_config(raw, str(path))
    except ConfigError as err:  # a key set on the command line is blamed on the override, not the file
        blamed = blame_pipeline_override(err, str(path), overrides)
        if blamed is None:
            raise
        raise blamed from None


def blame_pipeline_override(err: ConfigError, source: str, overrides: list[str]) -> ConfigError | None:
    """`blame_override` for a pipeline config, whose stages name their errors `SOURCE (stage): ...` with the keys
    as the stage sees them (`trainer.max_steps` for the override `pretrain.trainer.max_steps=...`; the distill
    section's own keys keep their prefix, `distill.temperature`). None: the file is to blame."""
    message = str(err)
    for stage in STAGES:
        stage_source = f"{source} ({stage})"
        if not message.startswith(f"{stage_source}: "):
            continue
        for item in reversed(overrides):  # the last one given wins
            if not item.startswith(f"{stage}."):
                continue
            as_seen = [item[len(stage) + 1 :], *([item] if stage == "distill" else [])]
            if any(blame_override(err, stage_source, [seen]) is not None for seen in as_seen):
                rest = message[len(stage_source) + 2 :]
                return ConfigError(f"command-line override `{item}` (stage `{stage}`): {rest}")
        return None
    return blame_override(err, source, overrides)


# ---------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------


def stage_done(stage: str, run_dir: Path) -> bool:
    output, metrics = run_dir / ("encoder" if stage == "pretrain" else "best"), run_dir / METRICS_FILE
    if not (metrics.is_file() and output.is_dir()):
        return False
    # the student's run writes metrics.json before `distill` adds its section: a stop in between is unfinished
    return stage != "distill" or "distill" in json.loads(metrics.read_text())


def _check_finished_stage(stage: str, run_dir: Path, cfg) -> None:
    from ssl_text.pipelines.pretrain import parse_pretrain_config

    try:
        check_resume_config(run_dir, cfg, parse_pretrain_config if stage == "pretrain" else parse_config)
    except ConfigError as err:
        raise ConfigError(
            f"stage `{stage}` in {run_dir} finished with another config than this pipeline's ({err}); delete "
            f"{run_dir} to rerun it (and the stages after it), pass --overwrite, or choose another output_dir."
        ) from None


def check_stage_inputs(pc: SimCLRv2Config, *, overwrite: bool) -> None:
    """What the data and models of every stage that will run can reveal, checked before anything is written or
    deleted (the contract of `ssl_text.training.lifecycle.run_lifecycle`, here for the pipeline's folder as a whole).

    A stage's inputs that an earlier stage makes (the pretrained encoder, the fine-tuned teacher) are checked by
    that stage's own run when they exist. With --overwrite every stage runs; without, the unfinished ones.
    """
    from ssl_text.pipelines.pretrain import check_pretrain_inputs
    from ssl_text.pipelines.train import check_aug_columns, load_checked_data, prepare
    from ssl_text.pipelines.unlabeled_pool import load_teacher_pool

    state = PartialState()
    out = Path(pc.output_dir)
    check_is_a_directory(out)
    for stage, cfg in (("pretrain", pc.pretrain), ("finetune", pc.finetune), ("distill", pc.distill_run)):
        run_dir = out / stage
        if cfg is None or (not overwrite and stage_done(stage, run_dir)):
            continue
        if run_dir.exists():
            check_run_dir(run_dir, resume=True, overwrite=False)  # one that a live run holds is refused
        try:
            if stage == "pretrain":
                check_pretrain_inputs(cfg)
            elif stage == "finetune":
                if pc.pretrain is None:
                    prepare(cfg, state)
                else:  # from the pretraining stage's encoder: the data now, the model when that stage has made it
                    load_checked_data(cfg, state)
            else:  # the teacher is the fine-tuning stage's: the pool it labels, the columns the student's views name
                check_aug_columns(cfg, load_teacher_pool(cfg, "distillation").unlabeled)
        except (ConfigError, DataError, ModelMismatchError) as err:  # the same keys in every stage: name it
            raise type(err)(f"stage `{stage}`: {err}") from None


@contextlib.contextmanager
def keep_process_group():
    """Keep the default process group alive across stages.

    `Accelerator.end_training()`, which every stage calls, destroys it; under `accelerate launch`
    the next stage in the same processes would then fail at its first barrier. The group is
    destroyed once, when the pipeline ends.
    """
    original = PartialState.destroy_process_group
    PartialState.destroy_process_group = lambda self, group=None: None
    try:
        yield
    finally:
        PartialState.destroy_process_group = original
    PartialState().destroy_process_group()


def run_simclrv2(pc: SimCLRv2Config, *, overwrite: bool = False) -> dict:
    """Run (or continue) the three stages, then write report.json / report.md; return the report."""
    with keep_process_group():
        return _run_simclrv2(pc, overwrite=overwrite)


def _run_simclrv2(pc: SimCLRv2Config, *, overwrite: bool) -> dict:
    from ssl_text.pipelines.distill import DISTILL_FILE, distill, resolve_teacher, student_config
    from ssl_text.pipelines.pretrain import pretrain
    from ssl_text.pipelines.train import train

    check_launch()
    state = PartialState()
    out = Path(pc.output_dir)
    check_stage_inputs(pc, overwrite=overwrite)  # before --overwrite deletes anything
    if state.is_main_process:
        if overwrite and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / PIPELINE_FILE).write_text(yaml.safe_dump(pc.raw, sort_keys=False))
    state.wait_for_everyone()

    def skip(stage: str, run_dir: Path, cfg) -> bool:
        if not stage_done(stage, run_dir):
            if run_dir.exists():
                state.print(f"[simclrv2] {stage}: continuing the unfinished run in {run_dir}")
            return False
        _check_finished_stage(stage, run_dir, cfg)
        state.print(f"[simclrv2] skip {stage}: done ({run_dir})")
        return True

    if pc.pretrain is not None:
        run_dir = out / "pretrain"
        if not skip("pretrain", run_dir, pc.pretrain):
            state.print(f"[simclrv2] pretrain -> {run_dir}")
            pretrain(pc.pretrain, resume=run_dir.exists())
    run_dir = out / "finetune"
    if not skip("finetune", run_dir, pc.finetune):
        state.print(f"[simclrv2] finetune -> {run_dir}")
        train(pc.finetune, resume=run_dir.exists())
    if pc.distill is not None:
        run_dir = out / "distill"
        teacher_dir = resolve_teacher(pc.distill.teacher)
        s_cfg = student_config(pc.distill_run, pc.distill, run_dir / "teacher_targets", teacher_dir, run_dir / "student_init")
        if stage_done("distill", run_dir):
            from dataclasses import asdict

            saved = yaml.safe_load((run_dir / DISTILL_FILE).read_text()) if (run_dir / DISTILL_FILE).exists() else None
            if saved is not None and saved != asdict(pc.distill):
                raise ConfigError(
                    f"stage `distill` in {run_dir} finished with another distill section; delete {run_dir} to rerun "
                    "it, pass --overwrite, or choose another output_dir."
                )
        if not skip("distill", run_dir, s_cfg):
            state.print(f"[simclrv2] distill -> {run_dir}")
            distill(pc.distill_run, pc.distill, resume=run_dir.exists())
    state.wait_for_everyone()
    if state.is_main_process:  # one process times the models: others would compete for the CPU
        report = build_report(pc)
        (out / REPORT_JSON).write_text(json.dumps(report, indent=2))
        (out / REPORT_MD).write_text(report_markdown(report))
        state.print(f"[simclrv2] report: {out / REPORT_MD}")
    state.wait_for_everyone()
    return json.loads((out / REPORT_JSON).read_text())


# ---------------------------------------------------------------------------------------
# Inference speed
# ---------------------------------------------------------------------------------------


def padded_batch(task, tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """`texts` tokenized by the task, truncated and padded to exactly `max_length` tokens."""
    ids = task.tokenize(tokenizer, texts, max_length)["input_ids"]
    input_ids = torch.full((len(ids), max_length), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), max_length), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.as_tensor(row[:max_length])
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


@torch.inference_mode()
def compare_speed(models: dict[str, torch.nn.Module], batches: dict[str, dict], repeats: int = 10, warmup: int = 2) -> dict:
    """Median forward-pass time of each model on its batch, on CPU; the models take turns run by run,
    so a load change on a shared machine hits them alike."""
    for model in models.values():
        model.eval().to("cpu")
    for _ in range(warmup):
        for name, model in models.items():
            model(**batches[name])
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model(**batches[name])
            times[name].append(time.perf_counter() - start)
    return {
        name: {"median_ms": round(1000 * statistics.median(ts), 2), "runs_ms": [round(1000 * t, 2) for t in ts]}
        for name, ts in times.items()
    }


def speed_report(task_name: str, teacher_dir: Path, student_dir: Path, texts: list[str], max_length: int,
                 repeats: int = 10, warmup: int = 2) -> dict:
    """Teacher vs student inference time on the same texts (each model's tokenizer, padded to max_length)."""
    from ssl_text.pipelines.distill import label_names_of_folder, num_parameters
    from ssl_text.tasks import build_task

    task = build_task(task_name)
    models, batches, info = {}, {}, {}
    for name, folder in (("teacher", teacher_dir), ("student", student_dir)):
        tokenizer = task.load_tokenizer(str(folder))
        models[name] = task.load_model(str(folder), label_names_of_folder(folder))
        batches[name] = padded_batch(task, tokenizer, texts, max_length)
        config = models[name].config
        info[name] = {"path": str(folder), "num_parameters": num_parameters(models[name]),
                      "num_layers": getattr(config, "num_hidden_layers", None)}
    timings = compare_speed(models, batches, repeats, warmup)
    same = torch.equal(batches["teacher"]["input_ids"], batches["student"]["input_ids"])
    return {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "batch": {"texts": len(texts), "tokens": max_length, "identical_token_ids": same},
        "repeats": repeats,
        "teacher": {**info["teacher"], **timings["teacher"]},
        "student": {**info["student"], **timings["student"]},
        "speedup": round(timings["teacher"]["median_ms"] / timings["student"]["median_ms"], 2),
    }


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------


def _stage_record(run_dir: Path) -> dict | None:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    m = json.loads(path.read_text())
    keep = ("algorithm", "objective", "selected_step", "selected_on", "validation", "test", "held_out",
            "num_labeled", "num_unlabeled", "train_seconds", "total_seconds", "num_parameters", "distill")
    record = {k: m[k] for k in keep if k in m}
    if isinstance(record.get("distill"), dict):  # without the per-shard list
        d = dict(record["distill"])
        d["teacher_targets"] = {k: v for k, v in (d.get("teacher_targets") or {}).items() if k != "shards"}
        record["distill"] = d
    record["run_dir"] = str(run_dir)
    return record


def build_report(pc: SimCLRv2Config) -> dict:
    out = Path(pc.output_dir)
    report: dict = {"pipeline": "simclrv2", "output_dir": str(out), "stages": {}}
    for stage in STAGES:
        record = _stage_record(out / stage)
        if record is not None:
            report["stages"][stage] = record
    ft = pc.finetune
    if "finetune" in report["stages"]:
        report["stages"]["finetune"]["projection_head_layers"] = ft.model.projection_head_layers
    teacher, student = out / "finetune" / "best", out / "distill" / "best"
    if teacher.is_dir() and student.is_dir():
        texts = _speed_texts(pc)
        if texts:
            r = pc.report
            report["inference_speed"] = speed_report(ft.task, teacher, student, texts, ft.data.max_length, r.repeats,
                                                     r.warmup)
    return report


def _speed_texts(pc: SimCLRv2Config) -> list[str]:
    from ssl_text.data.loading import add_text_column, load_spec

    r = pc.report
    spec = getattr(pc.finetune.data, r.split) or pc.finetune.data.validation or pc.finetune.data.labeled
    ds = add_text_column(load_spec(spec), spec, f"report ({r.split})")
    texts = ds["text"][: r.batch_size]
    while texts and len(texts) < r.batch_size:  # a small split: repeat it to fill the batch
        texts = (texts * 2)[: r.batch_size]
    return texts


def _params(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _fmt(metrics: dict | None, key: str) -> str:
    if not metrics or key not in metrics:
        return "–"
    return f"{100 * metrics[key]:.1f}"


def report_markdown(report: dict) -> str:
    stages = report["stages"]
    lines = [f"# SimCLRv2 pipeline: {report['output_dir']}", ""]
    if "pretrain" in stages:
        p = stages["pretrain"]
        held = p.get("held_out") or {}
        detail = ", ".join(f"{k} {v:.4f}" for k, v in held.items() if k != "step" and isinstance(v, float))
        lines += [f"**Pretraining** ({p.get('objective')}): selected step {p.get('selected_step')} "
                  f"({p.get('selected_on')}){': ' + detail if detail else ''}; {p.get('total_seconds', 0) / 60:.1f} min.", ""]
    lines += ["| stage | model | selected step | validation accuracy | test accuracy | test macro-F1 | minutes |",
              "|---|---|---|---|---|---|---|"]
    for stage in ("finetune", "distill"):
        s = stages.get(stage)
        if s is None:
            continue
        if stage == "finetune":
            model = f"teacher ({s.get('algorithm')}, head layers {s.get('projection_head_layers', 0)})"
        else:
            d = s.get("distill") or {}
            layers = d.get("student_layers")
            model = f"student ({d.get('student_init')}{', teacher layers ' + str(layers) if layers else ''}, T={d.get('temperature')}, alpha={d.get('alpha')})"
        lines.append(f"| {stage} | {model} | {s.get('selected_step')} | {_fmt(s.get('validation'), 'accuracy')} | "
                     f"{_fmt(s.get('test'), 'accuracy')} | {_fmt(s.get('test'), 'macro_f1')} | "
                     f"{s.get('total_seconds', 0) / 60:.1f} |")
    speed = report.get("inference_speed")
    if speed:
        t, s = speed["teacher"], speed["student"]
        lines += ["", f"**Inference speed** (CPU, {speed['threads']} threads, one batch of {speed['batch']['texts']} texts x "
                  f"{speed['batch']['tokens']} tokens, median of {speed['repeats']} runs): teacher "
                  f"({t['num_layers']} layers, {_params(t['num_parameters'])} parameters) {t['median_ms']:.1f} ms, "
                  f"student ({s['num_layers']} layers, {_params(s['num_parameters'])} parameters) {s['median_ms']:.1f} ms: "
                  f"{speed['speedup']:.2f}x faster."]
    return "\n".join(lines) + "\n"
