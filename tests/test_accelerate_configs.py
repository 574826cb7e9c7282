"""configs/accelerate/: the files parse with Accelerate, and the CPU one really starts two gloo processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"


@pytest.mark.parametrize(
    "name, distributed_type, processes, precision, cpu",
    [
        ("one_gpu", DistributedType.NO, 1, "no", False),
        ("multi_gpu_4_bf16", DistributedType.MULTI_GPU, 4, "bf16", False),
        ("cpu_2_processes", DistributedType.MULTI_GPU, 2, "no", True),
    ],
)
def test_configs_parse(name, distributed_type, processes, precision, cpu):
    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert (config.distributed_type, config.num_processes, config.mixed_precision, config.use_cpu) == (
        distributed_type, processes, precision, cpu)


def test_cpu_config_starts_two_gloo_processes(tmp_path):
    script = tmp_path / "who.py"
    script.write_text(  # one file per process: two processes printing to one pipe may interleave
        "from pathlib import Path\n"
        "from accelerate import Accelerator\n"
        "a = Accelerator()\n"
        "Path(f'rank{a.process_index}.txt').write_text(f'world={a.num_processes} type={a.distributed_type.value}')\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu_2_processes.yaml"),
           "--main_process_port", str(port), str(script)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = {p.name: p.read_text() for p in sorted(tmp_path.glob("rank*.txt"))}
    assert reports == {"rank0.txt": "world=2 type=MULTI_CPU", "rank1.txt": "world=2 type=MULTI_CPU"}, proc.stderr[-3000:]
