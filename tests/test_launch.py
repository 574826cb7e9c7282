"""Two CPU processes under `accelerate launch` train and evaluate together.

Accelerate 1.x's `--cpu` flag routes to its simple launcher, which starts one process unless
mpirun is configured; two CPU processes come from torchrun (`--multi_gpu`) with
`ACCELERATE_USE_CPU=true`, which makes Accelerate use the gloo backend (MULTI_CPU).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ssl_text.config import DatasetSpec
from ssl_text.pipelines.predict import evaluate_run
from tests.conftest import assert_scores_match_confusion_matrix

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_cpu_launch_trains_and_evaluates(toy_config, toy_files, tmp_path):
    raw = toy_config("fixmatch", tau=0.5)
    raw["trainer"].update(max_steps=4, eval_every=2, save_every=2)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(ROOT / "scripts" / "train.py"), str(path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('"selected_step"') == 1, proc.stdout  # the summary, printed by the main process only
    run_dir = Path(raw["output_dir"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["hardware"].startswith("2 x")
    assert [h["step"] for h in metrics["validation_history"]] == [2, 4]
    # The two processes scored every test row once: the figures equal one process's evaluation of the saved model.
    assert_scores_match_confusion_matrix(metrics, num_rows=80)
    assert evaluate_run(str(run_dir), DatasetSpec(path=toy_files["test"])) == pytest.approx(metrics["test"])
    # Each process saved its own RNG state in the checkpoint: both took part in training.
    ckpt = run_dir / "checkpoints" / "step_0000004"
    assert (ckpt / "random_states_0.pkl").exists() and (ckpt / "random_states_1.pkl").exists()
