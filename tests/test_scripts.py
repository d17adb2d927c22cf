"""Entry points: every script answers --help, and the shell scripts fall back to the CPU with a notice."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["train.py", "test.py", "influence.py",
           *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "utils").glob("*.py")),
           *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.py"))]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    out = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout and len(out.stdout) > 200


def test_shell_script_without_gpu_says_so_and_names_what_is_missing(tmp_path):
    env = dict(os.environ, OUTPUT_DIR=str(tmp_path / "nothing"), TASKS="rte", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(["bash", "auto_test.sh", "0"], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 1
    assert "no GPU found (asked for GPU 0): running on the CPU" in out.stdout
    assert "no checkpoints for metrics 'loss'" in out.stderr and "bash run_enc_sim.sh 0" in out.stderr


def test_bad_input_ends_with_one_line_and_exit_code_2(tmp_path):
    out = subprocess.run([sys.executable, "train.py", "--task", "rte", "--data_paths_dict",
                          '{"rte": {"train": ["%s/missing_run"]}}' % tmp_path], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "missing_run: run directory not found" in out.stderr
