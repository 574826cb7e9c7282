"""scripts/quickstart.py stopped with SIGTERM: its worker processes stop with it instead of running on, and no
queued run starts, also when a training run catches the signal to save its checkpoint."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120  # imports and the first runs' set-up in each worker, on a loaded 2-core machine
STOP_SECONDS = 60  # a training run saves its checkpoint at the end of the current (tiny) step


@pytest.mark.slow
@pytest.mark.parametrize("stop_when", ["a run is being set up", "a student trains"])
def test_sigterm_stops_the_workers(tmp_path, tiny_bert_dir, stop_when):
    for folder in ("configs", "examples"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    never_ending = ["trainer.max_steps=1000000", "recipe.student_steps=1000000", "recipe.warm_start_iterations=1",
                    "trainer.eval_every=1000000", "trainer.save_every=1000000", f"model.name_or_path={tiny_bert_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    main = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "quickstart.py"), *never_ending], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    process, workers = psutil.Process(main.pid), []
    try:
        runs = tmp_path / "runs" / "quickstart"
        # the recipe's student training catches SIGTERM (checkpoint, then return): its worker is then free for the
        # next queued run, which must not start
        sign = "seed_*/*/config.yaml" if stop_when == "a run is being set up" else "seed_*/recipe/student/logs/*/*"
        deadline = time.time() + STARTUP_SECONDS
        while time.time() < deadline and not list(runs.glob(sign)):
            assert main.poll() is None, main.stderr.read()
            time.sleep(1)
        assert list(runs.glob(sign)), f"no {sign} after {STARTUP_SECONDS} s"
        workers = process.children(recursive=True)
        assert workers, "the quickstart started no worker process"
        started = set(runs.glob("seed_*/*/config.yaml"))  # the runs never end: no worker is free for another one
        main.send_signal(signal.SIGTERM)
        try:
            main.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the quickstart still runs {STOP_SECONDS} s after SIGTERM; runs: {sorted(runs.glob('seed_*/*'))}")
        gone, alive = psutil.wait_procs(workers, timeout=STOP_SECONDS)
        assert not alive, f"workers still running after the quickstart stopped: {alive}"
        assert main.returncode == 128 + signal.SIGTERM
        assert set(runs.glob("seed_*/*/config.yaml")) == started, "a queued run started after SIGTERM"
    finally:  # a failed test leaves no process behind
        for worker in workers:
            if worker.is_running():
                worker.kill()
        main.kill()
        main.wait()
