"""`wdiff finetune`'s closing line says how many Accelerate processes ran: `accelerate launch
--cpu --num_processes 2` starts one (accelerate's simple launcher), `--multi_gpu` two."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from wdiff.cli import main

ARGS = ["--arch", "builtin-tiny", "--train-steps", "2", "--batch-size", "2", "--crop", "32"]


def test_the_closing_line_counts_one_process(tmp_path, capfd):
    assert main(["finetune", "--out", str(tmp_path / "run"), *ARGS]) == 0
    err = capfd.readouterr().err
    assert "2 steps in" in err and ", 1 process" in err


@pytest.mark.slow
def test_accelerate_launch_multi_gpu_on_a_cpu_runs_two_processes(tmp_path):
    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    if launcher is None:
        pytest.skip("accelerate's launcher is not installed beside this Python")
    out = tmp_path / "run"
    with socket.socket() as free:  # a port of its own: other runs may hold accelerate's 29500
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    command = [launcher, "launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--main_process_port", port, "-m", "wdiff"]
    command += ["finetune", "--device", "cpu", "--out", str(out), *ARGS]
    env = os.environ | {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 processes (accelerate)" in done.stderr, done.stderr[-2000:]
