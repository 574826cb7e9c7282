"""Multi-round self-training (Noisy Student, Xie et al., 2020): `ssl-text self-train`.

Round 0 trains a teacher with the configured algorithm (`supervised`, `fixmatch`, ...).
Each round r >= 1 then

1. labels the unlabeled pool with the previous round's selected model (`round_{r-1}/best`):
   soft targets (its probabilities) or hard ones (one-hot argmax), keeping the examples whose
   confidence reaches `tau`, optionally resampled so the classes follow the labeled class
   prior (the most confident examples of a class first; a short class repeats its examples);
   with `agreement` (text classification), only among the examples whose teacher argmax is
   also the kNN vote of the teacher's own sentence embeddings (`ssl_text.algorithms.agreement`);
2. trains a student from the pretrained model on the labels plus that pseudo-labeled pool
   with the `noisy_student` loss, under noise (dropout and the strong view);
3. the student becomes the teacher of the next round.

OUTPUT/
  config.yaml         the base config (the teacher's); a resume must use the same one
  round_{r}/          an ordinary run directory per round (checkpoints, best/, metrics.json)
  pools/round_{r}/    the pseudo-labeled pool of round r (save_to_disk) and its stats.json
  rounds.json         per round: metrics, and the pool's size, class distribution and
                      pseudo-label accuracy (when the pool's true labels are known)

A finished round is skipped on `--resume`; an unfinished one continues from its last
checkpoint. A pool is written once (atomically) and reused.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from accelerate import Accelerator, PartialState

from ssl_text.algorithms.agreement import agreement_mask, knn_vote
from ssl_text.algorithms.noisy_student import NoisyStudent
from ssl_text.config import ConfigError, DatasetSpec, RunConfig, to_dict
from ssl_text.config.keys import ANALYSIS_LABEL, INDEX, LABEL, METRICS_FILE, PSEUDO_TARGET
from ssl_text.data.shards import save_dataset_atomic
from ssl_text.pipelines.train import check_aug_columns, prepare, train
from ssl_text.pipelines.unlabeled_pool import PoolTeacher, load_teacher_pool
from ssl_text.training.inference import softmax
from ssl_text.training.lifecycle import ConfigFile, run_lifecycle
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import write_text_atomic
from ssl_text.training.trainer import BEST, mixed_precision_for

ROUNDS_FILE = "rounds.json"
POOLS = "pools"
STATS_FILE = "stats.json"


@dataclass
class PseudoLabeling:
    """How a teacher's predictions on the pool become a student's targets."""

    tau: float = 0.9  # keep examples whose top teacher probability reaches tau (the documented recipe)
    hard_labels: bool = False  # one-hot argmax targets instead of the teacher's probabilities
    balance: bool = False  # resample the kept examples to the labeled class prior
    lambda_u: float = 1.0  # the student's weight of the pseudo-labeled loss
    agreement: bool = False  # only rows whose teacher argmax is the kNN vote of its embeddings (one label per text)

    def validate(self) -> None:
        if not 0.0 <= self.tau < 1.0:
            raise ConfigError(f"self-training `tau` is {self.tau}; expected a confidence in [0, 1), e.g. 0.9.")
        if self.lambda_u < 0:
            raise ConfigError(f"self-training `lambda_u` is {self.lambda_u}; expected a weight >= 0, e.g. 1.")

    def check_task(self, task_name: str) -> None:
        """Refuse the options the task cannot use: `agreement` votes one label per text."""
        from ssl_text.tasks import build_task

        if self.agreement and build_task(task_name).token_level:
            raise ConfigError(
                f"self-training `--agreement` votes one label per text with a kNN graph of sentence embeddings; task "
                f"`{task_name}` labels every word. Leave out --agreement for this task."
            )


def label_pool(cfg: RunConfig, teacher_dir: Path, labeling: PseudoLabeling, pool_dir: Path) -> dict:
    """Label the unlabeled pool of `cfg` with the model in `teacher_dir`; write it to `pool_dir`."""
    stats_file = pool_dir / STATS_FILE
    if stats_file.exists():
        return json.loads(stats_file.read_text())
    # the run's precision: the same process trains the students next, and Accelerate's state is set only once
    accelerator = Accelerator(mixed_precision=mixed_precision_for(cfg.trainer.mixed_precision))
    data = load_teacher_pool(cfg, "self-training")
    teacher = PoolTeacher(cfg, teacher_dir, data, accelerator)
    logits = teacher.logits(teacher.pool)
    if labeling.agreement:
        agree = teacher_agreement(teacher, data, logits)
        rows, targets, stats = pseudo_label_agreeing(
            teacher.task, logits, teacher.pool, data.label_names, labeling, data.labeled, agree
        )
    else:
        # the task decides what a target is: one per text, or one per word of each sentence (NER, as valid BIO)
        rows, targets, stats = teacher.task.pseudo_label_pool(logits, teacher.pool, data.label_names, labeling, data.labeled)
    if len(rows) == 0:
        highest = max((float(softmax(x).max()) for x in logits), default=0.0)
        found, fix = f"its highest confidence is {highest:.3f}", "lower --tau"
        if labeling.agreement:
            found += f"; {int(agree.sum())} of {len(agree)} examples agreed with the kNN vote (--agreement)"
            fix += " or leave out --agreement"
        raise ConfigError(
            f"no unlabeled example reached the confidence tau={labeling.tau} of the teacher in {teacher_dir} "
            f"({found}); {fix}."
        )
    if accelerator.is_main_process:
        chosen = data.unlabeled.remove_columns(INDEX).select(rows.tolist()).add_column(PSEUDO_TARGET, targets)
        save_dataset_atomic(chosen, pool_dir, {STATS_FILE: json.dumps(stats, indent=2)})
    accelerator.wait_for_everyone()
    return stats


def teacher_agreement(teacher: PoolTeacher, data, logits: np.ndarray) -> np.ndarray:
    """[N] bool over the pool: the teacher's argmax is the kNN label-spreading vote (`knn_vote`) of the teacher's own
    sentence embeddings of the labeled rows (with their labels) and the pool rows."""
    votes = knn_vote(
        teacher.embeddings(teacher.encode(data.labeled)),
        np.asarray(data.labeled[LABEL]),
        teacher.embeddings(teacher.pool),
        len(data.label_names),
    )
    return agreement_mask(logits, votes)


def pseudo_label_agreeing(task, logits: np.ndarray, pool, label_names: list[str], labeling: PseudoLabeling, labeled,
                          agree: np.ndarray):
    """`task.pseudo_label_pool` on the agreeing rows of the pool only, so tau and the class balance select among
    them (masking the logits could not drop a row at tau 0; dropping rows after selection would unbalance it).
    Returns (pool rows [M], targets, statistics) as `pseudo_label_pool` does, the statistics over the whole pool
    plus `agreeing` (how many rows agreed) and, with the pool's true labels, `agreeing_accuracy` (the teacher's
    accuracy on them)."""
    among = np.flatnonzero(agree)
    rows, targets, stats = task.pseudo_label_pool(logits[among], pool.select(among), label_names, labeling, labeled)
    rows = among[np.asarray(rows, dtype=np.int64)]
    if stats is not None:
        stats["pool_size"], stats["agreeing"] = len(logits), len(among)
        if "pool_accuracy" in stats:
            stats["agreeing_accuracy"] = stats["pool_accuracy"]
            stats["pool_accuracy"] = float((logits.argmax(axis=1) == np.asarray(pool[ANALYSIS_LABEL])).mean())
    return rows, targets, stats


def student_config(cfg: RunConfig, run_dir: Path, pool_dir: Path, labeling: PseudoLabeling) -> RunConfig:
    """The teacher's config, training `noisy_student` on the labels plus the pseudo-labeled pool."""
    student = copy.deepcopy(cfg)
    student.output_dir = str(run_dir)
    student.algorithm = NoisyStudent.Config(lambda_u=labeling.lambda_u)
    student.data.unlabeled = DatasetSpec(path=str(pool_dir), label_column=None)
    student.data.sampling.rest_as_unlabeled = False  # the pool already holds every unlabeled example
    return parse_config(to_dict(student), f"{run_dir} (self-training student)")


def _round_record(r: int, run_dir: Path, metrics: dict, stats: dict | None) -> dict:
    record = {"round": r, "run_dir": run_dir.name, "algorithm": metrics["algorithm"]}
    record["selected_step"] = metrics["selected_step"]
    for key in ("validation", "test"):
        if key in metrics:
            record[key] = metrics[key]
    if stats is not None:
        record["pseudo_labels"] = stats
    return record


def self_train(
    cfg: RunConfig,
    rounds: int,
    labeling: PseudoLabeling | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    teacher: str | Path | None = None,
) -> list[dict]:
    """Train a teacher (round 0) and `rounds` noisy students; return the records of rounds.json.

    With `teacher` (a finished run directory of the same data and labels, e.g. an earlier
    `ssl-text train`), round 0 is that run instead of a new one."""
    labeling = labeling or PseudoLabeling()
    labeling.validate()
    labeling.check_task(cfg.task)
    if rounds < 1:
        raise ConfigError(f"--rounds is {rounds}; expected at least 1 student round after the teacher.")
    out = Path(cfg.output_dir)
    teacher = Path(teacher).resolve() if teacher is not None else None
    if teacher is not None and not ((teacher / BEST).is_dir() and (teacher / METRICS_FILE).is_file()):
        raise ConfigError(
            f"--teacher {teacher} is not a finished run directory (expected {BEST}/ and metrics.json); "
            "point it at the output_dir of a completed `ssl-text train`, or leave it out to train round 0 here."
        )

    def validate() -> None:
        if resume:
            _check_saved_rounds(out / ROUNDS_FILE, labeling, teacher)
        # round 0 trains this config and the students start from its model on its data: check them all
        prepare(cfg, Accelerator(mixed_precision=mixed_precision_for(cfg.trainer.mixed_precision)))
        pool = load_teacher_pool(cfg, "self-training").unlabeled
        check_aug_columns(cfg, pool)  # the students' views of the pseudo-labeled pool, which keeps the pool's columns

    return run_lifecycle(
        out,
        ConfigFile(cfg, parse_config),
        resume=resume,
        overwrite=overwrite,
        validate=validate,
        execute=lambda _: _run_rounds(cfg, rounds, labeling, teacher),
        finished=None,  # finished rounds are skipped one by one, keeping their metrics
    )


def _check_saved_rounds(rounds_file: Path, labeling: PseudoLabeling, teacher: Path | None) -> None:
    saved = json.loads(rounds_file.read_text()) if rounds_file.exists() else None
    if saved is not None and saved.get("teacher") != (str(teacher) if teacher else None):
        raise ConfigError(
            f"--resume: {rounds_file} was started with teacher {saved.get('teacher')}, not {teacher}; resume with "
            "the same --teacher or start a new output_dir."
        )
    # an option added later is missing from older runs' records, which ran with its default
    saved_labeling = {**dataclasses.asdict(PseudoLabeling()), **saved["pseudo_labeling"]} if saved else None
    if saved is not None and saved_labeling != dataclasses.asdict(labeling):
        raise ConfigError(
            f"--resume: {rounds_file} was made with pseudo-labeling {saved['pseudo_labeling']}, not "
            f"{dataclasses.asdict(labeling)}; resume with the same options or start a new output_dir."
        )


def _run_rounds(cfg: RunConfig, rounds: int, labeling: PseudoLabeling, teacher: Path | None) -> list[dict]:
    out = Path(cfg.output_dir)
    state = PartialState()
    rounds_file = out / ROUNDS_FILE
    saved = json.loads(rounds_file.read_text()) if rounds_file.exists() else None
    records = {rec["round"]: rec for rec in (saved["rounds"] if saved else [])}
    for r in range(rounds + 1):
        run_dir = out / f"round_{r}"
        if r in records and ((run_dir / METRICS_FILE).exists() or (r == 0 and teacher is not None)):
            continue  # finished
        stats = None
        if r == 0 and teacher is not None:
            records[0] = _round_record(0, teacher, json.loads((teacher / METRICS_FILE).read_text()), None)
        else:
            if r == 0:
                round_cfg = copy.deepcopy(cfg)
                round_cfg.output_dir = str(run_dir)
            else:
                previous = teacher if r == 1 and teacher is not None else out / f"round_{r - 1}"
                pool_dir = out / POOLS / f"round_{r}"
                stats = label_pool(cfg, previous / BEST, labeling, pool_dir)
                round_cfg = student_config(cfg, run_dir, pool_dir, labeling)
            metrics = train(round_cfg, resume=run_dir.exists())
            records[r] = _round_record(r, run_dir, metrics, stats)
        if state.is_main_process:
            summary = {
                "rounds": [records[k] for k in sorted(records)],
                "pseudo_labeling": dataclasses.asdict(labeling),
                "teacher": str(teacher) if teacher else None,
            }
            write_text_atomic(rounds_file, json.dumps(summary, indent=2))
        state.wait_for_everyone()
    return [records[k] for k in sorted(records)]
