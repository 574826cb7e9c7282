"""The pseudo-label collapse guard: warnings, the stop after `trainer.collapse_patience` collapsed steps (checkpoint,
exit status 5, advice), what does not stop a run, resuming a stopped run, and MixMatch feeding the guard."""

from types import SimpleNamespace

import datasets
import pytest
import torch
import yaml
from accelerate import Accelerator

from ssl_text.algorithms.base import LossOutput
from ssl_text.algorithms.mixmatch import MixMatch
from ssl_text.cli.main import EXIT_COLLAPSED, main
from ssl_text.config import ConfigError, TrainerConfig
from ssl_text.config.keys import CHECKPOINTS
from ssl_text.data.batching import BatchStream
from ssl_text.training.run_config import load_config
from ssl_text.training.trainer import COLLAPSE_DOMINANT_SHARE, PseudoLabelCollapseError, Trainer
from tests.test_algorithms import make
from tests.test_zoo import PointModel, state

NUM_CLASSES = 4
UNIFORM = [0.25] * NUM_CLASSES
ULB = 8  # pseudo-labels per step


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, NUM_CLASSES)

    def forward(self, x):
        return SimpleNamespace(logits=self.layer(x))


def collapsed(step):
    """Every unlabeled example confidently class 0."""
    return [0] * ULB, [1.0] * ULB


def balanced(step):
    return [i % NUM_CLASSES for i in range(ULB)], [1.0] * ULB


class Stream:
    """An algorithm whose pseudo-labels and confidence mask per step come from `script(step)`."""

    views = ("lb",)

    def __init__(self, script):
        self.config = SimpleNamespace(name="stream")
        self.script = script

    def compute_loss(self, model, batch, state):
        logits = model(**batch["lb"]).logits
        labels, mask = self.script(state.step)
        return LossOutput(total=torch.nn.functional.cross_entropy(logits, batch["lb_labels"]), parts={},
                          pseudo_labels=torch.tensor(labels), mask=torch.tensor(mask))


def four_class_trainer(run_dir, algorithm, num_classes=NUM_CLASSES, **config):
    """40 steps, the first 4 of them warmup, a uniform labeled prior over 4 classes (or `num_classes`)."""
    ds = datasets.Dataset.from_dict({"x": [[float(i), float(-i)] for i in range(16)],
                                     "label": [i % num_classes for i in range(16)]})

    def collate(rows, generator):
        return {"lb": {"x": torch.tensor(rows["x"])}, "lb_labels": torch.tensor(rows["label"])}

    settings = {"max_steps": 40, "warmup_ratio": 0.1, "log_every": 2, "progress_bar": False, "save_every": 100,
                "collapse_patience": 6, **config}  # fmt: skip
    return Trainer(TrainerConfig(**settings), Accelerator(cpu=True), Linear(), algorithm,
                   BatchStream(ds, 4, 0, collate), None, run_dir, num_classes=num_classes,
                   label_prior=[1 / num_classes] * num_classes)


def warnings_of(caplog) -> list[str]:
    return [r.message for r in caplog.records if "collapse" in r.message]


# ---------------------------------------------------------------------------------------
# Hand-made pseudo-label streams
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_every, stop_step", [(1, 10), (2, 10), (3, 12)])
def test_the_run_stops_once_the_collapse_has_lasted_patience_steps_after_the_warmup(tmp_path, log_every, stop_step):
    """Warmup ends at step 4: steps 5-10 are the 6 collapsed steps of patience, whatever the logging window
    (a window of 3 is judged at its end, step 12)."""
    trainer = four_class_trainer(tmp_path, Stream(collapsed), log_every=log_every)
    with pytest.raises(PseudoLabelCollapseError) as err:
        trainer.fit()
    assert trainer.progress.step == stop_step and trainer.progress.collapsed_steps >= 6
    checkpoint = tmp_path / CHECKPOINTS / f"step_{stop_step:07d}"
    message = str(err.value)
    assert checkpoint.is_dir() and f"saved to {checkpoint}" in message
    assert f"step {stop_step}: possible pseudo-label collapse" in message
    assert "[1.0, 0.0, 0.0, 0.0] against a labeled prior of [0.25, 0.25, 0.25, 0.25]" in message
    assert "trainer.collapse_patience=6" in message and "higher tau" in message  # the default advice
    assert "--resume trainer.collapse_patience=null" in message


def test_a_two_class_collapse_stops_the_run_with_the_default_bound(tmp_path, caplog):
    """Two balanced classes: one class everywhere is a total variation of 0.5, the largest there is, which the bound
    of 0.5 (taken as a share of that largest) now catches; 3 of 4 on one class (0.25, not over) only passes."""
    with pytest.raises(PseudoLabelCollapseError, match=r"total variation 0\.50 > 0\.25"):
        four_class_trainer(tmp_path / "collapsed", Stream(collapsed), num_classes=2).fit()
    lopsided = Stream(lambda step: ([0] * 6 + [1] * 2, [1.0] * ULB))
    caplog.clear()
    with caplog.at_level("WARNING", logger="ssl_text.training.trainer"):
        assert four_class_trainer(tmp_path / "lopsided", lopsided, num_classes=2).fit().step == 40
    assert not warnings_of(caplog)


def test_a_collapse_shorter_than_the_patience_only_warns(tmp_path, caplog):
    """Collapsed for 4 steps, one balanced window, collapsed again: the count starts over, the run finishes."""
    trainer = four_class_trainer(tmp_path, Stream(lambda step: balanced(step) if step % 6 in (4, 5) else collapsed(step)))
    with caplog.at_level("WARNING", logger="ssl_text.training.trainer"):
        trainer.fit()
    assert trainer.progress.step == 40 and len(warnings_of(caplog)) > 10


def test_a_collapse_within_the_warmup_does_not_count(tmp_path):
    trainer = four_class_trainer(tmp_path, Stream(lambda step: collapsed(step) if step < 10 else balanced(step)),
                                 warmup_ratio=0.25)  # warmup: 10 steps
    trainer.fit()
    assert trainer.progress.step == 40


def test_a_lopsided_trickle_of_confident_pseudo_labels_never_stops_the_run(tmp_path, caplog):
    """FixMatch early on: the few texts above tau are all one class (3 of 8 confident, under
    COLLAPSE_MIN_COVERAGE); or most, not all, confident labels are one class (7 of 8, under
    COLLAPSE_DOMINANT_SHARE). Both are far from the prior, and warned, yet not a collapse to stop."""
    trickle = Stream(lambda step: ([0] * ULB, [1.0] * 3 + [0.0] * 5))
    mostly = Stream(lambda step: ([0] * 7 + [1], [1.0] * ULB))
    assert 7 / 8 < COLLAPSE_DOMINANT_SHARE
    for name, algorithm in (("trickle", trickle), ("mostly", mostly)):
        caplog.clear()
        trainer = four_class_trainer(tmp_path / name, algorithm, log_every=4)  # 12 confident labels a window
        with caplog.at_level("WARNING", logger="ssl_text.training.trainer"):
            trainer.fit()
        assert trainer.progress.step == 40 and trainer.progress.collapsed_steps == 0
        assert len(warnings_of(caplog)) == 10, name  # every window is over the bound


@pytest.mark.parametrize("patience", [None, 0])
def test_without_patience_a_collapse_only_warns(tmp_path, caplog, patience):
    trainer = four_class_trainer(tmp_path, Stream(collapsed), collapse_patience=patience)
    with caplog.at_level("WARNING", logger="ssl_text.training.trainer"):
        trainer.fit()
    assert trainer.progress.step == 40 and len(warnings_of(caplog)) == 20


def test_the_patience_count_is_judged_on_every_process(tmp_path):
    """Alone this process's pseudo-labels are collapsed; a second process drew the other classes."""
    trainer = four_class_trainer(tmp_path, Stream(collapsed), log_every=10)
    trainer.pseudo_counts, trainer.pseudo_drawn = torch.tensor([16.0, 0, 0, 0]), torch.tensor([16.0])
    trainer.check_collapse(step=10)
    assert trainer.progress.collapsed_steps == 6
    trainer.accelerator.gather = lambda t: torch.cat([t, t.roll(1, dims=-1) if t.shape[-1] > 1 else t])
    trainer.pseudo_counts, trainer.pseudo_drawn = torch.tensor([16.0, 0, 0, 0]), torch.tensor([16.0])
    trainer.check_collapse(step=20)
    assert trainer.progress.collapsed_steps == 0  # together: two classes, 16 texts each


def test_a_run_stopped_by_the_guard_resumes_from_its_checkpoint(tmp_path):
    with pytest.raises(PseudoLabelCollapseError):
        four_class_trainer(tmp_path, Stream(collapsed)).fit()
    still = four_class_trainer(tmp_path, Stream(collapsed))
    with pytest.raises(PseudoLabelCollapseError, match="step 12: "):
        still.fit(resume=True)  # the count was checkpointed: one more collapsed window stops it again
    warn_only = four_class_trainer(tmp_path, Stream(collapsed), collapse_patience=None)
    assert warn_only.fit(resume=True).step == 40
    recovered = four_class_trainer(tmp_path / "other", Stream(collapsed))
    with pytest.raises(PseudoLabelCollapseError):
        recovered.fit()
    recovered = four_class_trainer(tmp_path / "other", Stream(balanced))
    assert recovered.fit(resume=True).step == 40 and recovered.progress.collapsed_steps == 0


# ---------------------------------------------------------------------------------------
# MixMatch feeds the guard its guessed labels
# ---------------------------------------------------------------------------------------


def test_mixmatch_reports_its_guessed_labels_to_the_guard(tmp_path):
    """The guess is the sharpened mean over the weak and the strong view: its argmax, one per unlabeled text,
    every one counted (MixMatch has no confidence mask). Text 1's weak view alone says class 0, the mean class 1."""
    algo = make("mixmatch", T=0.5, alpha=0.75, lambda_u=8.0, rampup_steps=0)
    model = PointModel()
    b = {
        "lb": {"x": torch.tensor([[1.0, 0.0], [0.0, 1.0]])},
        "lb_labels": torch.tensor([0, 1]),
        "ulb_weak": {"x": torch.tensor([[2.0, -1.0], [0.6, 0.1]])},
        "ulb_strong": {"x": torch.tensor([[1.5, -0.5], [-1.0, 1.5]])},
    }
    out = algo.compute_loss(model, b, state(step=7, seed=5))
    with torch.no_grad():
        weak, strong = (torch.softmax(model(**b[v]).logits, -1) for v in ("ulb_weak", "ulb_strong"))
    assert weak.argmax(-1).tolist() == [0, 0]
    assert out.pseudo_labels.tolist() == ((weak + strong) / 2).argmax(-1).tolist() == [0, 1]
    assert out.mask.tolist() == [1.0, 1.0]
    trainer = four_class_trainer(tmp_path, algo)
    trainer.log_parts(out, b)
    assert trainer.pseudo_counts.tolist() == [1.0, 1.0, 0.0, 0.0] and trainer.pseudo_drawn.tolist() == [2.0]


def test_pi_model_collapse_advice_names_its_own_knobs():
    advice = make("pi_model", lambda_u=10.0, rampup_steps=100).collapse_advice
    assert "algorithm.lambda_u" in advice and "rampup_steps` (now 100)" in advice and "ssl-text recipe" in advice
    assert "higher tau" not in advice  # pi_model has no tau


def test_mixmatch_collapse_advice_names_its_own_knobs():
    plain = make("mixmatch").collapse_advice
    aligned = make("mixmatch", dist_align_momentum=0.99).collapse_advice
    for advice in (plain, aligned):
        assert "algorithm.lambda_u" in advice and "algorithm.rampup_steps" in advice and "fixmatch" in advice
        assert "higher tau" not in advice  # MixMatch has no tau
    assert "dist_align_momentum" in plain and "dist_align_momentum" not in aligned


# ---------------------------------------------------------------------------------------
# The command: exit status, message, checkpoint, --resume
# ---------------------------------------------------------------------------------------


def test_the_command_stops_a_collapsed_run_with_status_5_and_resume_accepts_it(toy_config, tmp_path, monkeypatch,
                                                                              capsys):
    original = MixMatch.compute_loss

    def one_class(self, model, batch, state):  # the real loss, its guesses replaced by a collapse onto class 0
        out = original(self, model, batch, state)
        out.pseudo_labels = torch.zeros_like(out.pseudo_labels)
        return out

    monkeypatch.setattr(MixMatch, "compute_loss", one_class)
    raw = toy_config("mixmatch", rampup_steps=2)
    raw["trainer"].update(max_steps=6, collapse_patience=3)  # no warmup, a window a step
    config = tmp_path / "mixmatch.yaml"
    config.write_text(yaml.safe_dump(raw))
    run_dir = tmp_path / "run_mixmatch"
    assert raw["output_dir"] == str(run_dir)

    assert main(["train", str(config)]) == EXIT_COLLAPSED
    err = capsys.readouterr().err
    checkpoint = run_dir / CHECKPOINTS / "step_0000003"
    assert err.startswith("ssl-text train: error: step 3: possible pseudo-label collapse") and "Traceback" not in err
    assert "[1.0, 0.0, 0.0, 0.0] against a labeled prior of [0.25, 0.25, 0.25, 0.25]" in err
    assert "dist_align_momentum" in err and "algorithm.lambda_u" in err  # MixMatch's own advice
    assert f"saved to {checkpoint}" in err and checkpoint.is_dir()
    assert not (run_dir / "metrics.json").exists()

    assert main(["train", str(config), "--resume"]) == EXIT_COLLAPSED  # same config: still collapsed, next window
    assert "step 4: " in capsys.readouterr().err
    assert main(["train", str(config), "--resume", "trainer.collapse_patience=null"]) == 0
    assert (run_dir / "metrics.json").is_file() and (run_dir / CHECKPOINTS / "step_0000006").is_dir()


# ---------------------------------------------------------------------------------------
# The setting
# ---------------------------------------------------------------------------------------


def test_collapse_patience_is_validated_at_load(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"output_dir": "runs/x", "data": {"labeled": {"path": "missing.csv"}},
                                    "algorithm": {"name": "mixmatch"}}))
    assert load_config(path).trainer.collapse_patience == 50
    assert load_config(path, ["trainer.collapse_patience=null"]).trainer.collapse_patience is None
    assert load_config(path, ["trainer.collapse_patience=0"]).trainer.collapse_patience == 0
    with pytest.raises(ConfigError, match=r"override `trainer.collapse_patience=-5`: `trainer\.collapse_patience` is -5; "
                                          r"expected the steps .* an integer >= 0 \(e\.g\. 50\), or null \(or 0\) to only warn"):
        load_config(path, ["trainer.collapse_patience=-5"])
    with pytest.raises(ConfigError, match=r"`trainer\.collapse_patience` is 'soon' \(str\)"):
        load_config(path, ["trainer.collapse_patience=soon"])

