"""The two-moons proving ground: every algorithm, unchanged, on a 2-D toy problem.

8 labeled points (4 per class), 1,000 unlabeled points and 2,000 fresh test points from
`sklearn.datasets.make_moons`. The algorithms are model-agnostic, so the same classes and the
same `Trainer` (with `BatchStream`s) train a small MLP here as a Transformer on text: the
collate functions produce `{"lb": {"x": ...}, "lb_labels": ...}` and `{"ulb_weak": {"x": ...},
"ulb_strong": {"x": ...}, "ulb_index": ...}`, with small Gaussian jitter as the weak view and
larger jitter as the strong one. `noisy_student` is a procedure over runs; `train_moons` runs
it as in `ssl_text.pipelines.self_training`: a supervised teacher, then students on its pseudo-labels.

Every moons hyper-parameter lives in `SETTINGS` (one entry per algorithm, the same for every
seed), tuned in CPU float32, which is what a fresh process on a CPU machine gets (the runs use
the process's Accelerate state). `scripts/moons.py` draws the pictures and the accuracy table
of `docs/moons.md`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from accelerate import Accelerator
from sklearn.datasets import make_moons

from ssl_text.algorithms import ALGORITHMS, build_algorithm
from ssl_text.config import TrainerConfig, from_dict
from ssl_text.config.keys import PSEUDO_TARGET
from ssl_text.data.batching import BatchStream
from ssl_text.pipelines.self_training import PseudoLabeling
from ssl_text.tasks.text_classification import select_pseudo_labels
from ssl_text.training.trainer import Trainer

NUM_PER_CLASS = 4
NUM_UNLABELED = 1000
NUM_TEST = 2000
NOISE = 0.1  # make_moons noise
# Tensors of a few hundred numbers: a thread pool only adds overhead (tens of times slower on a busy machine), and
# the settings were tuned on one thread; the trainer's `auto` would take more on a larger machine.
MOONS_THREADS = 1


@dataclass(frozen=True)
class MoonsSetting:
    """The moons hyper-parameters of one algorithm."""

    steps: int = 600
    learning_rate: float = 0.01
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    mu: int = 16  # unlabeled batch = mu * 8
    weak_noise: float = 0.05  # std of the weak view's Gaussian jitter
    strong_noise: float = 0.2  # std of the strong view's Gaussian jitter
    ema_decay: float | None = None  # the trainer's EMA of the weights (mean teacher's teacher)
    evaluate_ema: bool = False  # report the EMA weights instead of the raw ones
    algorithm: dict = field(default_factory=dict)  # `algorithm.*` settings
    rounds: int = 0  # noisy_student: student rounds after the supervised teacher
    labeling: PseudoLabeling = field(default_factory=PseudoLabeling)  # noisy_student: the teacher's targets


SETTINGS: dict[str, MoonsSetting] = {
    "supervised": MoonsSetting(),
    "pseudo_label": MoonsSetting(algorithm={"tau": 0.95, "rampup_steps": 100}),
    "fixmatch": MoonsSetting(steps=400, algorithm={"tau": 0.95}),
    "uda": MoonsSetting(steps=300, algorithm={"tau": 0.8, "T": 0.4}),
    # Consistency under noise wants jitter below the gap between the moons.
    "pi_model": MoonsSetting(steps=400, strong_noise=0.08, algorithm={"lambda_u": 10.0, "rampup_steps": 100}),
    "temporal_ensembling": MoonsSetting(
        steps=1000, mu=64, strong_noise=0.08, algorithm={"lambda_u": 10.0, "rampup_steps": 100}
    ),
    "mean_teacher": MoonsSetting(
        steps=1200, strong_noise=0.08, ema_decay=0.9, algorithm={"lambda_u": 10.0, "rampup_steps": 100}
    ),
    # Mixup of two points crosses the other moon, so alpha is tiny (lambda' ~ 1): MixMatch acts
    # through its sharpened two-view guess.
    "mixmatch": MoonsSetting(
        steps=1200, weak_noise=0.1, strong_noise=0.15,
        algorithm={"lambda_u": 30.0, "rampup_steps": 100, "alpha": 0.01, "T": 0.5},
    ),
    "flexmatch": MoonsSetting(steps=1000, algorithm={"tau": 0.95}),
    "freematch": MoonsSetting(algorithm={"momentum": 0.999}),
    # A supervised teacher (round 0, the `supervised` setting), then 12 rounds of noisy students. Each
    # student, trained under jitter wider than the moons' gap (0.25), is smoother than its teacher and
    # confident a little further along each moon, so the labels travel round by round (seeds 0-2, mean
    # accuracy: 2 rounds 91.7%, 5 rounds 93.9%, 8 rounds 95.6%, 12 rounds 96.4%).
    "noisy_student": MoonsSetting(steps=300, rounds=12, strong_noise=0.25, labeling=PseudoLabeling(tau=0.9)),
}


@dataclass
class MoonsData:
    labeled_x: np.ndarray  # [8, 2]
    labeled_y: np.ndarray  # [8]
    unlabeled_x: np.ndarray  # [1000, 2]
    unlabeled_y: np.ndarray  # [1000], for analysis only
    test_x: np.ndarray  # [2000, 2]
    test_y: np.ndarray  # [2000]


def make_data(seed: int) -> MoonsData:
    """The seed draws the points, which of them are labeled, and the test set."""
    x, y = make_moons(n_samples=2 * NUM_PER_CLASS + NUM_UNLABELED, noise=NOISE, random_state=seed)
    rng = np.random.default_rng(seed)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), NUM_PER_CLASS, replace=False) for c in (0, 1)])
    rest = np.setdiff1d(np.arange(len(y)), labeled)
    test_x, test_y = make_moons(n_samples=NUM_TEST, noise=NOISE, random_state=seed + 10_000)
    return MoonsData(
        x[labeled].astype(np.float32), y[labeled], x[rest].astype(np.float32), y[rest],
        test_x.astype(np.float32), test_y,
    )


class MLP(torch.nn.Module):
    """2 -> hidden -> hidden -> 2 with ReLU; `model(x=...)` returns an object with `.logits`."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.net(x))


class Rows:
    """Columns of equal length; `rows[[i, j, ...]]` gives a dict of column slices (as a `datasets.Dataset`)."""

    def __init__(self, **columns: np.ndarray):
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, index: list[int]) -> dict[str, np.ndarray]:
        return {name: column[index] for name, column in self.columns.items()}


def collate_labeled(rows: dict, generator: torch.Generator) -> dict:
    return {"lb": {"x": torch.as_tensor(rows["x"])}, "lb_labels": torch.as_tensor(rows["label"])}


def unlabeled_collator(weak_noise: float, strong_noise: float):
    """Weak and strong views: the point plus Gaussian jitter of two sizes (seeded by the stream)."""

    def collate(rows: dict, generator: torch.Generator) -> dict:
        x = torch.as_tensor(rows["x"])
        batch = {
            "ulb_weak": {"x": x + weak_noise * torch.randn(x.shape, generator=generator)},
            "ulb_strong": {"x": x + strong_noise * torch.randn(x.shape, generator=generator)},
            "ulb_index": torch.as_tensor(rows["index"]),
            "ulb_analysis_labels": torch.as_tensor(rows["label"]),
        }
        if PSEUDO_TARGET in rows:
            batch["ulb_targets"] = torch.as_tensor(rows[PSEUDO_TARGET])
        return batch

    return collate


@torch.no_grad()
def predict_proba(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    logits = model(x=torch.as_tensor(x, dtype=torch.float32, device=device)).logits.float()
    return torch.softmax(logits, dim=-1).cpu().numpy()


def accuracy(model: torch.nn.Module, data: MoonsData) -> float:
    return float((predict_proba(model, data.test_x).argmax(axis=1) == data.test_y).mean())


def _fit(
    name: str, setting: MoonsSetting, data: MoonsData, seed: int, run_dir: Path, pseudo: tuple | None = None
) -> torch.nn.Module:
    """One run of algorithm `name` with the shared Trainer; `pseudo` = (rows, targets) of a teacher."""
    torch.manual_seed(seed)
    model = MLP()
    algorithm = build_algorithm(from_dict(ALGORITHMS[name].Config, {"name": name, **setting.algorithm}), 2)
    trainer_cfg = TrainerConfig(
        max_steps=setting.steps,
        lb_batch_size=2 * NUM_PER_CLASS,
        mu=setting.mu,
        learning_rate=setting.learning_rate,
        weight_decay=setting.weight_decay,
        warmup_ratio=0.0,
        lr_schedule="constant",
        max_grad_norm=None,
        mixed_precision="no",
        eval_every=setting.steps,
        save_every=setting.steps,
        keep_checkpoints=1,
        log_every=setting.steps,
        seed=seed,
        progress_bar=False,
        num_threads=MOONS_THREADS,
        ema_decay=setting.ema_decay,
        evaluate_ema=setting.evaluate_ema,
    )
    labeled = Rows(x=data.labeled_x, label=data.labeled_y)
    if pseudo is None:
        rows = np.arange(len(data.unlabeled_x))
        unlabeled = Rows(x=data.unlabeled_x, label=data.unlabeled_y, index=rows)
    else:
        rows, targets = pseudo
        unlabeled = Rows(x=data.unlabeled_x[rows], label=data.unlabeled_y[rows], index=np.arange(len(rows)),
                         **{PSEUDO_TARGET: targets})
    needs_unlabeled = any(view.startswith("ulb") for view in algorithm.views)
    batch = trainer_cfg.lb_batch_size
    views = unlabeled_collator(setting.weak_noise, setting.strong_noise)
    trainer = Trainer(
        trainer_cfg,
        Accelerator(),  # the process's Accelerate state: a second, different one cannot be made
        model,
        algorithm,
        BatchStream(labeled, batch, seed, collate_labeled, salt=1),
        BatchStream(unlabeled, batch * setting.mu, seed, views, salt=2) if needs_unlabeled else None,
        run_dir,
        num_classes=2,
    )
    trainer.fit()
    return trainer.model_to_report()


@contextlib.contextmanager
def _one_thread():
    """The moons runs' thread count (`MOONS_THREADS`) around a whole study, predictions included, and the
    caller's count restored after it (the trainer sets its own and keeps it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(MOONS_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_moons(algorithm_name: str, seed: int, **overrides) -> tuple[torch.nn.Module, float]:
    """Train algorithm `algorithm_name` on the moons of `seed`; return (model, test accuracy).

    `overrides` replace fields of the algorithm's `SETTINGS` entry (e.g. `steps=200`).
    """
    if algorithm_name not in SETTINGS:
        raise ValueError(f"no moons setting for algorithm {algorithm_name!r}; add one to SETTINGS in {__file__}.")
    setting = dataclasses.replace(SETTINGS[algorithm_name], **overrides)
    data = make_data(seed)
    with tempfile.TemporaryDirectory(prefix="moons_") as tmp, _one_thread():
        if algorithm_name != "noisy_student":
            model = _fit(algorithm_name, setting, data, seed, Path(tmp) / "run")
            return model, accuracy(model, data)
        model = _fit("supervised", SETTINGS["supervised"], data, seed, Path(tmp) / "round_0")
        prior = np.bincount(data.labeled_y, minlength=2) / len(data.labeled_y)
        for r in range(1, setting.rounds + 1):
            pseudo = select_pseudo_labels(predict_proba(model, data.unlabeled_x), setting.labeling, prior)
            model = _fit("noisy_student", setting, data, seed, Path(tmp) / f"round_{r}", pseudo)
    return model, accuracy(model, data)
