"""Accelerate fixes the mixed precision once per process: every stage of a command must ask for the same one."""

import json
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState

from ssl_text.pipelines.self_training import PseudoLabeling, self_train
from ssl_text.pipelines.train import train
from ssl_text.training.run_config import parse_config
from tests.conftest import assert_scores_match_confusion_matrix


@pytest.fixture
def fresh_process_state():
    """What a new `ssl-text` process starts with: no AcceleratorState yet (restored to none afterwards)."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield AcceleratorState._reset_state
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.slow
def test_self_train_from_a_teacher_run_labels_the_pool_in_the_students_bf16(toy_config, tmp_path, fresh_process_state):
    teacher = toy_config("supervised")
    train(parse_config(teacher))
    fresh_process_state(reset_partial_state=True)  # `ssl-text self-train --teacher RUN` is a new process
    raw = {**toy_config("supervised"), "output_dir": str(tmp_path / "self_train")}
    raw["trainer"]["mixed_precision"] = "bf16"
    records = self_train(parse_config(raw), rounds=1, labeling=PseudoLabeling(tau=0.0), teacher=teacher["output_dir"])
    assert records[0]["run_dir"] == Path(teacher["output_dir"]).name
    student = json.loads((tmp_path / "self_train" / records[1]["run_dir"] / "metrics.json").read_text())
    assert records[1]["algorithm"] == "noisy_student" and records[1]["test"] == student["test"]
    assert_scores_match_confusion_matrix(student, num_rows=80)
    assert AcceleratorState().mixed_precision == "bf16"
