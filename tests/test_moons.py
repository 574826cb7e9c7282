"""The two-moons proving ground: every registered algorithm, the same Trainer, a small MLP.

8 labels alone leave the supervised MLP below 90% on 2,000 fresh test points (mean of 3
seeds); the semi-supervised algorithms must reach 95%. `noisy_student` runs as its moons
variant (a supervised teacher, then noisy students on its pseudo-labels, see
`moons_lib.train_moons`). Settings live in `moons_lib.SETTINGS`.
"""

from functools import lru_cache

import numpy as np
import pytest
from moons_lib import SETTINGS, train_moons

from ssl_text.algorithms import ALGORITHMS

SEEDS = (0, 1, 2)

# Algorithms that cannot reach 95% here, and why. They still run (strict xfail): if one starts
# passing, the test says so and docs/moons.md should be updated.
LIMITED = {
    "pseudo_label": (
        "pseudo-labels of a view trained on that same view are entropy minimisation: nothing carries a "
        "label from one point to its neighbours, so a supervised boundary that cuts through a moon stays "
        "(seeds 0 and 2 keep ~85%)"
    ),
}


# Stage procedures without a moons variant: their student needs a teacher's run first.
NO_MOONS_VARIANT = {
    "distill": "the third SimCLRv2 stage (ssl_text/pipelines/distill.py): it distils a fine-tuned teacher run, it does not "
    "learn from unlabeled data by itself",
}


@lru_cache(maxsize=None)
def mean_accuracy(name: str) -> float:
    return float(np.mean([train_moons(name, seed)[1] for seed in SEEDS]))


def test_every_algorithm_has_a_moons_setting():
    assert set(SETTINGS) == set(ALGORITHMS) - set(NO_MOONS_VARIANT)


def test_supervised_alone_stays_below_90_percent():
    assert mean_accuracy("supervised") < 0.90


def _case(name: str):
    if name in LIMITED:
        return pytest.param(name, marks=pytest.mark.xfail(reason=LIMITED[name], strict=True))
    if name in NO_MOONS_VARIANT:
        return pytest.param(name, marks=pytest.mark.skip(reason=NO_MOONS_VARIANT[name]))
    return name


@pytest.mark.parametrize("name", [_case(n) for n in sorted(ALGORITHMS) if n != "supervised"])
def test_semi_supervised_algorithm_reaches_95_percent(name):
    accuracy = mean_accuracy(name)
    assert accuracy >= 0.95, f"{name}: mean accuracy {accuracy:.3f} over seeds {SEEDS}"


def test_moons_runs_train_on_one_thread_whatever_the_machine(monkeypatch):
    """The settings were tuned on one thread: the trainer's `auto` must not take more on a larger machine."""
    import moons_lib
    import torch

    import ssl_text.training.trainer as trainer_module

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(trainer_module, "available_cpus", lambda: 16)  # auto would take 15
    seen = []

    class Recording(moons_lib.Trainer):
        def fit(self, resume: bool = False):
            seen.append(torch.get_num_threads())
            return super().fit(resume)

    monkeypatch.setattr(moons_lib, "Trainer", Recording)
    train_moons("supervised", 0, steps=2)
    assert seen == [1]
