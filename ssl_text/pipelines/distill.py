"""`ssl-text distill`: a teacher run labels the unlabeled data once; a student learns from it.

The third stage of the SimCLRv2 path (Chen et al., 2020): distillation on the unlabeled data
into a student of the same architecture (self-distillation) or a smaller one. The config is an
ordinary run config (`ssl-text train`) plus a `distill:` section:

    distill:
      teacher: runs/simclrv2/finetune     # a run directory (its best/) or a model folder
      temperature: 1.0                    # T of the teacher's soft targets and of the student
      alpha: 1.0                          # distillation weight; the labeled cross-entropy gets 1 - alpha
      student: {init: alternate_layers, num_layers: 3}
      # init: model            -> start from `model.name_or_path` (e.g. the pretrained encoder,
      #                           with `model.projection_head_layers`), or from `student.name_or_path`
      #                           (any Hub id or folder): same or different architecture
      #       teacher          -> start from the teacher's weights (self-distillation)
      #       alternate_layers -> the teacher with `num_layers` of its layers, evenly spaced from the
      #                           first (6 -> 3 keeps 0, 2, 4; `student.layers` picks others), embeddings
      #                           and head copied (BERT-like `.encoder.layer` and ESM `.esm.encoder.layer`)

The student's loss is the registered algorithm `distill` (`ssl_text/algorithms/distill.py`), so
the ordinary trainer runs it; the `algorithm:` section of the config is replaced by it.

OUTPUT_DIR/ (= output_dir)
  teacher_targets/   the unlabeled data with the teacher's probabilities at T (`pseudo_target`),
                     keyed by the `index` of each unlabeled row (save_to_disk) + manifest.json
                     naming the teacher (and a hash of its weights), T and the data; reused when
                     they match, recomputed otherwise
  student_init/      the initial student weights (init: alternate_layers)
  distill.yaml       the distill section
  config.yaml, checkpoints/, best/, logs/, metrics.json, plots/   the student's run (`ssl-text train`)

Teacher targets are computed in shards of `shard_size` rows (`PoolTeacher`, the teacher self-training
uses too): under `accelerate launch` shard i goes to process i % world_size, each shard is written
atomically as soon as it is done (ssl_text/data/shards.py, the writer back-translation uses too; so a
stopped labeling resumes with the shards it has), and the main process merges them in order.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import torch
from accelerate import PartialState

from ssl_text.config import (
    ConfigError,
    DatasetSpec,
    RunConfig,
    apply_overrides,
    blame_override,
    from_dict,
    read_yaml,
    to_dict,
)
from ssl_text.config.keys import ANALYSIS_LABEL, METRICS_FILE, PSEUDO_TARGET
from ssl_text.data.shards import Shards, save_dataset_atomic
from ssl_text.hub.push import write_model_folder
from ssl_text.pipelines.unlabeled_pool import PoolTeacher, load_teacher_pool
from ssl_text.tasks import build_task
from ssl_text.training.lifecycle import ConfigFile, recorded_metrics, run_lifecycle
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import write_text_atomic
from ssl_text.training.trainer import BEST

TEACHER_TARGETS = "teacher_targets"
TARGETS_META_KEY = b"ssl_text.teacher_targets"  # a shard's statistics in its Parquet metadata (ssl_text/data/shards.py)
STUDENT_INIT = "student_init"
MANIFEST = "manifest.json"
DISTILL_FILE = "distill.yaml"
WEIGHT_FILES = ("model.safetensors", "projection_classifier.safetensors", "pytorch_model.bin")


@dataclass
class StudentConfig:
    init: Literal["model", "teacher", "alternate_layers"] = "model"
    num_layers: int | None = None  # alternate_layers: how many teacher layers the student keeps
    layers: list[int] | None = None  # alternate_layers: which ones (default: evenly spaced from the first)
    name_or_path: str | None = None  # init: model: a Hub id or folder (default: `model.name_or_path`)


@dataclass
class DistillConfig:
    teacher: str | None = None  # a run directory (uses its best/) or a model folder
    temperature: float = 1.0
    alpha: float = 1.0  # weight of the distillation loss; the labeled cross-entropy gets 1 - alpha
    view: Literal["weak", "strong"] = "weak"  # the view of the unlabeled text the student sees
    student: StudentConfig = field(default_factory=StudentConfig)
    shard_size: int = 4096  # unlabeled rows per teacher-labeling shard

    def validate(self, source: str) -> None:
        if not self.teacher:
            raise ConfigError(f"{source}: missing `distill.teacher`; name the teacher's run directory (or model folder).")
        if self.temperature <= 0:
            raise ConfigError(f"{source}: `distill.temperature` is {self.temperature}; expected a positive value, e.g. 1.")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"{source}: `distill.alpha` is {self.alpha}; expected a weight in [0, 1].")
        if self.shard_size <= 0:
            raise ConfigError(f"{source}: `distill.shard_size` is {self.shard_size}; expected a positive integer.")
        s = self.student
        if s.init == "alternate_layers":
            if s.num_layers is None and s.layers is None:
                raise ConfigError(f"{source}: `distill.student.init` is alternate_layers; set `distill.student.num_layers`, e.g. 3.")
            if s.num_layers is not None and s.num_layers < 1:
                raise ConfigError(f"{source}: `distill.student.num_layers` is {s.num_layers}; expected a positive integer.")
            if s.layers is not None and s.num_layers is not None and len(s.layers) != s.num_layers:
                raise ConfigError(f"{source}: `distill.student.layers` has {len(s.layers)} entries but num_layers is {s.num_layers}.")
        elif s.num_layers is not None or s.layers is not None:
            raise ConfigError(f"{source}: `distill.student.num_layers`/`layers` need `distill.student.init: alternate_layers`.")
        if s.name_or_path is not None and s.init != "model":
            raise ConfigError(f"{source}: `distill.student.name_or_path` needs `distill.student.init: model`.")


def parse_distill_config(raw: dict, source: str = "<config>", *, require_teacher: bool = True) -> tuple[RunConfig, DistillConfig]:
    """A run config with a `distill:` section -> (the student's base RunConfig, DistillConfig)."""
    raw = copy.deepcopy(raw)
    section = raw.pop("distill", None)
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: missing `distill` section (at least `distill.teacher: RUN_DIR`).")
    dcfg = from_dict(DistillConfig, section, source, prefix="distill.")
    if require_teacher or dcfg.teacher:
        dcfg.validate(source)
    raw["algorithm"] = {"name": "distill", "temperature": dcfg.temperature, "alpha": dcfg.alpha, "view": dcfg.view}
    return parse_config(raw, source), dcfg


def load_distill_config(path: str | Path, overrides: list[str] | None = None) -> tuple[RunConfig, DistillConfig]:
    overrides = list(overrides or [])
    raw = apply_overrides(read_yaml(path), overrides)
    try:
        return parse_distill_config(raw, str(path))
    except ConfigError as err:  # a key set on the command line is blamed on the override, not the file
        blamed = blame_override(err, str(path), overrides)
        if blamed is None:
            raise
        raise blamed from None


# ---------------------------------------------------------------------------------------
# The teacher and its targets
# ---------------------------------------------------------------------------------------


def resolve_teacher(path: str | Path) -> Path:
    """A run directory -> its best/; a model folder -> itself."""
    path = Path(path)
    if (path / BEST / "config.json").is_file():
        return path / BEST
    if (path / "config.json").is_file():
        return path
    raise ConfigError(
        f"`distill.teacher` {str(path)!r} is neither a finished run directory (with {BEST}/) nor a model folder "
        "(with config.json); point it at the output_dir of `ssl-text train`/`finetune`."
    )


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the model's weight files: the cache follows the teacher's weights, not its path."""
    digest = hashlib.sha256()
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def texts_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\0")
    return digest.hexdigest()


def label_names_of(model) -> list[str]:
    id2label = model.config.id2label
    return [id2label[i] for i in range(len(id2label))]


def teacher_targets(cfg: RunConfig, teacher_dir: Path, temperature: float, out_dir: Path, shard_size: int = 4096) -> dict:
    """Label the unlabeled data of `cfg` with the teacher's probabilities at `temperature`, once.

    Writes `out_dir` (the unlabeled rows + `pseudo_target`, save_to_disk) with `manifest.json`;
    returns the manifest (`reused: true` when an existing cache matched).
    """
    state = PartialState()
    data = load_teacher_pool(cfg, "distillation")
    pool = data.unlabeled
    texts = pool["text"] if "text" in pool.column_names else [" ".join(words) for words in pool["tokens"]]
    plan = {
        "teacher": str(teacher_dir.resolve()),
        "teacher_fingerprint": weights_fingerprint(teacher_dir),
        "temperature": temperature,
        "max_length": cfg.data.max_length,
        "label_names": data.label_names,
        "num_rows": len(pool),
        "texts_fingerprint": texts_fingerprint(texts),
        "shard_size": shard_size,
    }
    manifest_path = out_dir / MANIFEST
    shards_dir = out_dir.parent / f".{out_dir.name}.shards"
    plan_file = shards_dir / "plan.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in plan} == plan:
            state.print(f"reusing the teacher targets in {out_dir} (teacher {teacher_dir}, T={temperature})")
            if state.is_main_process and plan_file.is_file() and json.loads(plan_file.read_text()) == plan:
                shutil.rmtree(shards_dir)  # the shards of these targets, left by a stop right after their merge
            state.wait_for_everyone()
            return {**manifest, "reused": True}
        changed = sorted(k for k in plan if manifest.get(k) != plan[k])
        state.print(f"the teacher targets in {out_dir} were made with another {changed}; recomputing them.")
    state.wait_for_everyone()  # every process has read the manifest before anything is replaced

    shards = Shards(shards_dir, len(pool), shard_size, hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest(),
                    TARGETS_META_KEY)
    if state.is_main_process:
        if plan_file.is_file() and json.loads(plan_file.read_text()) != plan:
            shutil.rmtree(shards_dir)  # shards of another teacher / data: not reusable
        if not plan_file.is_file():  # written once: a stop never leaves half a plan to resume from
            shards_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(plan_file, json.dumps(plan, indent=2))
        shards.remove_partial_writes()
    state.wait_for_everyone()

    started = time.time()
    teacher = PoolTeacher(cfg, teacher_dir, data)  # every process: the pool is encoded once, on the main process first
    if label_names_of(teacher.model) != data.label_names:
        raise ConfigError(
            f"the teacher in {teacher_dir} predicts {label_names_of(teacher.model)} but the data has {data.label_names}; "
            "distill from a teacher trained on the same classes (in the same order)."
        )
    for i in shards.todo(state.process_index, state.num_processes):  # shards done before a stop are kept
        start, stop = shards.ranges[i]
        rows = teacher.pool.select(range(start, stop))
        # the task decides what a target is: softmax(logits / T) of each text, or of each word of a sentence (NER)
        targets = teacher.task.soft_targets(teacher.logits(rows), rows, temperature)
        shards.write(i, pa.table({PSEUDO_TARGET: [t.tolist() for t in targets]}), {"process": state.process_index})
    del teacher
    state.wait_for_everyone()

    if state.is_main_process:
        targets = shards.merged().column(PSEUDO_TARGET).to_pylist()
        assert len(targets) == len(pool), (len(targets), len(pool))
        labeled = pool.add_column(PSEUDO_TARGET, targets)
        shard_records = [{"shard": i, "start": st["start"], "rows": st["end"] - st["start"], "process": st["process"]}
                         for i, st in enumerate(shards.scan())]
        manifest = {**plan, "shards": shard_records, "seconds": round(time.time() - started, 1),
                    "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        if ANALYSIS_LABEL in pool.column_names:  # the pool's true labels are known (benchmark protocol)
            num_labels = len(data.label_names)
            # one target per text ([C]) or per word ([W_i, C]): flattened alike, as are the true labels
            probs = np.concatenate([np.asarray(t, dtype=np.float32).reshape(-1, num_labels) for t in targets])
            truth = np.concatenate([np.reshape(t, -1) for t in pool[ANALYSIS_LABEL]])
            seen = probs.sum(axis=1) > 0  # NER: words the tokenizer dropped have no target
            manifest["teacher_pool_accuracy"] = float((probs.argmax(1) == truth)[seen].mean())
        save_dataset_atomic(labeled, out_dir, {MANIFEST: json.dumps(manifest, indent=2)})
        shutil.rmtree(shards_dir, ignore_errors=True)
    state.wait_for_everyone()
    manifest = json.loads(manifest_path.read_text())
    return {**manifest, "reused": False}


# ---------------------------------------------------------------------------------------
# Students
# ---------------------------------------------------------------------------------------


def encoder_layers(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    """The Transformer's list of layers: `<base>.encoder.layer` (BERT-like `bert.encoder.layer`, ESM
    `esm.encoder.layer`, a projection classifier's `encoder.encoder.layer`)."""
    found = [(name, m) for name, m in model.named_modules()
             if (name == "encoder.layer" or name.endswith(".encoder.layer")) and isinstance(m, torch.nn.ModuleList)]
    if len(found) != 1:
        raise ConfigError(
            f"alternate-layer initialisation supports BERT-like encoders (`.encoder.layer`) and ESM "
            f"(`.esm.encoder.layer`); {type(model).__name__} has {len(found)} such layer lists. Use "
            "`distill.student.init: model` with a smaller model instead."
        )
    return found[0]


def alternate_layers(num_teacher_layers: int, num_layers: int) -> list[int]:
    """Evenly spaced teacher layers from the first: 6 -> 3 gives [0, 2, 4], 4 -> 2 gives [0, 2]."""
    if not 1 <= num_layers <= num_teacher_layers:
        raise ConfigError(
            f"`distill.student.num_layers` is {num_layers}; the teacher has {num_teacher_layers} layers "
            f"(expected 1..{num_teacher_layers})."
        )
    return [i * num_teacher_layers // num_layers for i in range(num_layers)]


def init_from_layers(teacher: torch.nn.Module, layers: list[int]) -> torch.nn.Module:
    """A copy of `teacher` keeping only the listed layers (in order); everything else is copied as is."""
    name, teacher_layers = encoder_layers(teacher)
    if not layers or any(not 0 <= i < len(teacher_layers) for i in layers):
        raise ConfigError(f"`distill.student.layers` is {layers}; the teacher has layers 0..{len(teacher_layers) - 1}.")
    student = copy.deepcopy(teacher)
    owner = student.get_submodule(name.rsplit(".", 1)[0])
    kept = torch.nn.ModuleList([owner.layer[i] for i in layers])
    for j, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = j
    owner.layer = kept
    student.config.num_hidden_layers = len(layers)
    _keep_contact_head_columns(student, layers)
    return student


def _keep_contact_head_columns(model: torch.nn.Module, layers: list[int]) -> None:
    """ESM's contact head reads the attention maps of every layer (layer-major, `num_attention_heads` per
    layer): keep the columns of the kept layers so the saved student loads with its new layer count."""
    for name, module in model.named_modules():
        regression = getattr(module, "regression", None)
        if not name.endswith("contact_head") or not isinstance(regression, torch.nn.Linear):
            continue
        heads = model.config.num_attention_heads
        columns = torch.cat([torch.arange(i * heads, (i + 1) * heads) for i in layers])
        new = torch.nn.Linear(len(columns), regression.out_features, bias=regression.bias is not None)
        with torch.no_grad():
            new.weight.copy_(regression.weight[:, columns])
            if regression.bias is not None:
                new.bias.copy_(regression.bias)
        module.regression = new
        if hasattr(module, "in_features"):
            module.in_features = len(columns)


def make_student_init(cfg: RunConfig, dcfg: DistillConfig, teacher_dir: Path, out: Path) -> dict:
    """Write the alternate-layer student to `out` (once); return its description."""
    state = PartialState()
    info_file = out / "student_init.json"
    if state.is_main_process and not info_file.is_file():
        task = build_task(cfg.task)
        teacher = task.load_model(str(teacher_dir), label_names_of_folder(teacher_dir))
        _, teacher_layers = encoder_layers(teacher)
        layers = dcfg.student.layers or alternate_layers(len(teacher_layers), dcfg.student.num_layers)
        student = init_from_layers(teacher, layers)
        tmp = out.with_name(f".{out.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        student.save_pretrained(tmp)
        task.load_tokenizer(str(teacher_dir)).save_pretrained(tmp)
        info = {"teacher": str(teacher_dir), "teacher_layers": len(teacher_layers), "layers": layers}
        (tmp / "student_init.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    state.wait_for_everyone()
    return json.loads(info_file.read_text())


def label_names_of_folder(folder: Path) -> list[str]:
    from transformers import AutoConfig

    id2label = AutoConfig.from_pretrained(folder).id2label
    return [id2label[i] for i in range(len(id2label))]


def student_config(cfg: RunConfig, dcfg: DistillConfig, targets_dir: Path, teacher_dir: Path, init_dir: Path) -> RunConfig:
    """The run config of the student: the `distill` loss on the teacher-labeled data, from its initial weights."""
    s = copy.deepcopy(cfg)
    init = dcfg.student.init
    if init == "teacher":
        s.model.name_or_path, s.model.projection_head_layers = str(teacher_dir), 0
    elif init == "alternate_layers":
        s.model.name_or_path, s.model.projection_head_layers = str(init_dir), 0
    elif dcfg.student.name_or_path is not None:
        s.model.name_or_path = dcfg.student.name_or_path
    s.data.unlabeled = DatasetSpec(path=str(targets_dir), label_column=None)
    s.data.sampling.rest_as_unlabeled = False  # the teacher-labeled data holds every unlabeled row
    raw = to_dict(s)
    raw["algorithm"] = {"name": "distill", "temperature": dcfg.temperature, "alpha": dcfg.alpha, "view": dcfg.view}
    return parse_config(raw, f"{cfg.output_dir} (distillation student)")


def num_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------


def distill(cfg: RunConfig, dcfg: DistillConfig, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Label the unlabeled data with the teacher (cached), then train the student; return its metrics."""
    dcfg.validate(str(cfg.output_dir))
    teacher_dir = resolve_teacher(dcfg.teacher)
    return run_lifecycle(
        Path(cfg.output_dir),
        ConfigFile(dcfg, _parse_distill_section, DISTILL_FILE),
        resume=resume,
        overwrite=overwrite,
        validate=lambda: check_distill_inputs(cfg, dcfg, teacher_dir),
        execute=lambda _: _distill(cfg, dcfg, teacher_dir),
        keep=(TEACHER_TARGETS, f".{TEACHER_TARGETS}.shards"),  # reused by --overwrite when they still match their manifest
        finished=_finished_distillation,
    )


def _parse_distill_section(raw: dict, source: str) -> DistillConfig:
    return from_dict(DistillConfig, raw, source, prefix="distill.")


def _finished_distillation(out: Path) -> dict | None:
    """The student's run writes metrics.json before the `distill` section is added: only then is it finished."""
    metrics = recorded_metrics(out)
    return metrics if metrics is not None and "distill" in metrics else None


def check_distill_inputs(cfg: RunConfig, dcfg: DistillConfig, teacher_dir: Path) -> None:
    """What the data, the teacher and the student's starting point can reveal, checked before anything is written."""
    from ssl_text.models.projection import load_classifier
    from ssl_text.models.resolve import resolve_model_path
    from ssl_text.pipelines.train import check_aug_columns, check_tokenizer_fits_model

    data = load_teacher_pool(cfg, "distillation")
    check_aug_columns(cfg, data.unlabeled)  # the student's views of the teacher-labeled pool, which keeps its columns
    taught = label_names_of_folder(teacher_dir)
    if taught != data.label_names:
        raise ConfigError(
            f"the teacher in {teacher_dir} predicts {taught} but the data has {data.label_names}; "
            "distill from a teacher trained on the same classes (in the same order)."
        )
    student = dcfg.student
    if student.init == "model":
        task = build_task(cfg.task)
        model_path = resolve_model_path(student.name_or_path or cfg.model.name_or_path)
        model = load_classifier(task, model_path, data.label_names, cfg.model.projection_head_layers, cfg.model.pooling)
        check_tokenizer_fits_model(task.load_tokenizer(model_path), model, model_path)
    elif student.init == "alternate_layers":
        from transformers import AutoConfig

        num_teacher_layers = AutoConfig.from_pretrained(teacher_dir).num_hidden_layers
        layers = student.layers or alternate_layers(num_teacher_layers, student.num_layers)
        if any(not 0 <= i < num_teacher_layers for i in layers):
            raise ConfigError(f"`distill.student.layers` is {layers}; the teacher has layers 0..{num_teacher_layers - 1}.")


def _distill(cfg: RunConfig, dcfg: DistillConfig, teacher_dir: Path) -> dict:
    from ssl_text.pipelines.train import train

    out = Path(cfg.output_dir)
    state = PartialState()
    targets = teacher_targets(cfg, teacher_dir, dcfg.temperature, out / TEACHER_TARGETS, dcfg.shard_size)
    init_info = None
    if dcfg.student.init == "alternate_layers":
        init_info = make_student_init(cfg, dcfg, teacher_dir, out / STUDENT_INIT)
    s_cfg = student_config(cfg, dcfg, out / TEACHER_TARGETS, teacher_dir, out / STUDENT_INIT)
    # The directory already holds the teacher targets: the student's run starts (or continues) in it.
    metrics = train(s_cfg, resume=True)

    task = build_task(cfg.task)
    student = task.load_model(str(out / BEST), metrics["label_names"])
    teacher = task.load_model(str(teacher_dir), metrics["label_names"])
    metrics["distill"] = {
        "teacher": str(teacher_dir),
        "temperature": dcfg.temperature,
        "alpha": dcfg.alpha,
        "student_init": dcfg.student.init,
        "student_model": s_cfg.model.name_or_path,
        "student_layers": init_info["layers"] if init_info else None,
        "teacher_num_parameters": num_parameters(teacher),
        "student_num_parameters": num_parameters(student),
        "teacher_targets": {k: targets.get(k) for k in ("num_rows", "reused", "seconds", "teacher_pool_accuracy", "shards")},
    }
    if state.is_main_process:
        # best/ gets the final metrics and a card made from them; the metrics file, with its `distill` section the
        # mark of a finished distillation, comes last
        write_model_folder(out, metrics)
        write_text_atomic(out / METRICS_FILE, json.dumps(metrics, indent=2))
    if torch.distributed.is_available() and torch.distributed.is_initialized():  # train() may have ended the group
        state.wait_for_everyone()
    return metrics
