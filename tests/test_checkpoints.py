"""The trainer's checkpoints (checksums, refusal to restart silently), collapse warnings under several
processes, the learning-rate schedule and the torch thread setting, on a two-feature linear model."""

import hashlib
import logging

import pytest
import torch
from accelerate import Accelerator
from transformers import get_scheduler

import ssl_text.training.trainer as trainer_module
from ssl_text.config import ConfigError
from ssl_text.config.keys import CHECKSUMS_FILE
from ssl_text.training.run_config import parse_config
from ssl_text.training.run_dir import RunDirError
from ssl_text.training.trainer import CheckpointError, linear_schedule, resolve_num_threads
from tests.test_reliability import ScriptedLoss, linear_trainer

NAN_FLOAT32 = b"\x00\x00\xc0\x7f"  # little-endian float32 NaN


def trained(tmp_path, **config):
    trainer = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=3, **config)
    trainer.fit()
    return trainer


def weights_file(tmp_path, step: int):
    return tmp_path / "checkpoints" / f"step_{step:07d}" / "model.safetensors"


def nan_in_data(path) -> None:
    """Corrupt the last weight of a safetensors file, leaving its header intact: it still loads."""
    data = bytearray(path.read_bytes())
    data[-len(NAN_FLOAT32):] = NAN_FLOAT32
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------
# Checksums and resume
# ---------------------------------------------------------------------------------------


def test_every_checkpoint_carries_the_sha256_of_each_of_its_files(tmp_path):
    trained(tmp_path)
    for folder in (tmp_path / "checkpoints").iterdir():
        lines = (folder / CHECKSUMS_FILE).read_text().splitlines()
        listed = dict(reversed(line.split("  ", 1)) for line in lines)  # `sha256sum -c` format: HASH  NAME
        files = {p.name for p in folder.iterdir() if p.name != CHECKSUMS_FILE}
        assert set(listed) == files and "model.safetensors" in files
        assert all(hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest for name, digest in listed.items())


def test_checkpoint_with_nan_written_into_its_data_is_reported_and_the_previous_one_used(tmp_path, capsys):
    trained(tmp_path)
    nan_in_data(weights_file(tmp_path, 20))
    again = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=3)
    assert again.load_latest_checkpoint().name == "step_0000016"
    out = capsys.readouterr().out
    assert "step_0000020 could not be loaded (model.safetensors does not match its checksum" in out
    assert again.progress.step == 16
    assert all(torch.isfinite(p).all() for p in again.model.parameters())


@pytest.mark.parametrize("damage", ["truncated", "nan_in_data", "file_deleted"])
def test_resume_refuses_when_no_checkpoint_loads(tmp_path, damage):
    """Before: a print, then training again from step 0 over the run's checkpoints."""
    trained(tmp_path)
    for step in (12, 16, 20):
        path = weights_file(tmp_path, step)
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[:50])
        elif damage == "nan_in_data":
            nan_in_data(path)
        else:
            path.unlink()
    again = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=3)
    with pytest.raises(CheckpointError) as caught:
        again.fit(resume=True)
    message = str(caught.value)
    assert str(tmp_path / "checkpoints") in message and "--overwrite" in message
    assert "step_0000012" in message and "step_0000020" in message
    assert isinstance(caught.value, RunDirError)  # the CLI reports it in one line, without a traceback
    assert again.progress.step == 0 and sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_0000012", "step_0000016", "step_0000020"]  # nothing trained, nothing overwritten


def test_resume_without_any_checkpoint_starts_at_step_zero(tmp_path, capsys):
    """A run stopped before its first checkpoint (and a self-training round not yet begun) starts afresh."""
    trainer = linear_trainer(tmp_path, ScriptedLoss())
    assert trainer.load_latest_checkpoint() is None and trainer.progress.step == 0
    assert "no checkpoint under" in capsys.readouterr().out


def test_a_checkpoint_written_before_checksums_still_loads(tmp_path):
    trained(tmp_path)
    (tmp_path / "checkpoints" / "step_0000020" / CHECKSUMS_FILE).unlink()
    again = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=3)
    assert again.load_latest_checkpoint().name == "step_0000020" and again.progress.step == 20


def test_a_checkpoint_with_a_file_its_checksums_do_not_list_is_refused(tmp_path, capsys):
    """A cut-short SHA256SUMS must not pass the files it no longer lists."""
    trained(tmp_path)
    manifest = tmp_path / "checkpoints" / "step_0000020" / CHECKSUMS_FILE
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines() if "model" not in line))
    again = linear_trainer(tmp_path, ScriptedLoss(), save_every=4, keep_checkpoints=3)
    assert again.load_latest_checkpoint().name == "step_0000016"
    assert "model.safetensors is not listed in SHA256SUMS" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# Collapse warnings under several processes
# ---------------------------------------------------------------------------------------


def collapse_warnings(trainer, caplog) -> list[str]:
    trainer.pseudo_counts = torch.tensor([0.0, 16.0])  # this process: every confident pseudo-label is class 1
    with caplog.at_level(logging.WARNING, logger="ssl_text.training.trainer"):
        trainer.check_collapse(step=2)
    return [r.message for r in caplog.records if "collapse" in r.message]


def test_collapse_is_judged_on_the_counts_of_every_process(tmp_path, caplog):
    trainer = linear_trainer(tmp_path, ScriptedLoss(), collapse_tv_bound=0.3)
    assert collapse_warnings(trainer, caplog), "one process alone is collapsed"
    caplog.clear()
    # A second process drew as many confident pseudo-labels of class 0: together they match the prior.
    trainer.accelerator.gather = lambda counts: torch.cat([counts, counts.flip(-1)])
    assert not collapse_warnings(trainer, caplog)


def test_only_the_main_process_warns_of_collapse(tmp_path, caplog, monkeypatch):
    trainer = linear_trainer(tmp_path, ScriptedLoss(), collapse_tv_bound=0.3)
    monkeypatch.setattr(Accelerator, "is_main_process", property(lambda self: False))
    assert not collapse_warnings(trainer, caplog)


# ---------------------------------------------------------------------------------------
# The learning-rate schedule
# ---------------------------------------------------------------------------------------


def old_factor(step: int, warmup: int, max_steps: int, kind: str) -> float:
    """The schedule every golden loss and benchmark figure was measured with."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    if kind == "constant":
        return 1.0
    return max(0.0, (max_steps - step) / max(max_steps - warmup, 1))


def hf_factors(name: str, warmup: int, max_steps: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=max_steps)
    factors = []
    for _ in range(max_steps):
        factors.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return factors


@pytest.mark.parametrize("kind, hf_name", [("linear", "linear"), ("constant", "constant_with_warmup")])
@pytest.mark.parametrize("warmup, max_steps", [(0, 7), (3, 10), (2, 2)])
def test_schedule_is_the_measured_one_and_where_it_differs_from_get_scheduler(kind, hf_name, warmup, max_steps):
    ours = [linear_schedule(warmup, max_steps, kind)(s) for s in range(max_steps)]
    assert ours == [old_factor(s, warmup, max_steps, kind) for s in range(max_steps)]
    hf = hf_factors(hf_name, warmup, max_steps)
    assert ours[warmup:] == hf[warmup:]  # identical once the warmup is over ...
    if warmup:  # ... but transformers' warmup starts one step earlier, at lr 0: a lost first step
        assert hf[0] == 0.0 and ours[0] == 1 / warmup and ours[: warmup - 1] == hf[1:warmup]


def test_the_trainer_steps_the_schedule_it_was_measured_with(tmp_path):
    trainer = linear_trainer(tmp_path, ScriptedLoss(), warmup_ratio=0.1, learning_rate=1e-3)  # 2 warmup steps of 20
    rates = []
    for _ in range(20):
        rates.append(trainer.scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert rates == pytest.approx([1e-3 * old_factor(s, 2, 20, "linear") for s in range(20)], rel=1e-12)
    assert rates[0] == pytest.approx(5e-4) and rates[2] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-3 / 18)


# ---------------------------------------------------------------------------------------
# Torch threads
# ---------------------------------------------------------------------------------------


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_num_threads_auto_leaves_a_core_free_and_respects_omp_num_threads(monkeypatch, keep_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for cpus, processes, expected in ((2, 1, 1), (1, 1, 1), (16, 1, 15), (16, 2, 7), (4, 8, 1)):
        monkeypatch.setattr(trainer_module, "available_cpus", lambda cpus=cpus: cpus)
        assert resolve_num_threads("auto", processes)[0] == expected
    assert resolve_num_threads(3, 1) == (3, "trainer.num_threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # set by the user, or by `accelerate launch`: one per process
    torch.set_num_threads(1)
    assert resolve_num_threads("auto", 4)[0] == 1


def test_the_trainer_applies_num_threads_once_at_start_and_says_so(tmp_path, capsys, keep_threads):
    torch.set_num_threads(2)
    linear_trainer(tmp_path, ScriptedLoss(), num_threads=1)
    assert torch.get_num_threads() == 1
    assert "torch CPU threads per process: 1 (trainer.num_threads)" in capsys.readouterr().out


@pytest.mark.parametrize("value, accepted", [(0, False), (-2, False), ("two", False), (True, False), ("auto", True), (3, True)])
def test_num_threads_is_validated_at_load(toy_config, value, accepted):
    raw = toy_config("supervised")
    raw["trainer"]["num_threads"] = value
    if accepted:
        assert parse_config(raw).trainer.num_threads == value
    else:
        with pytest.raises(ConfigError, match=r"`trainer\.num_threads` is "):
            parse_config(raw)
