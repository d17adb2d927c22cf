"""kill -9 in the middle of make_runs.py, construct_runs-data.py and train.py, then the same command again: the
result equals an uninterrupted run's, file for file (make_runs, construct) or weight for weight (train)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rawruns import write_raw_run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def start(argv, cwd=ROOT):
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})


def kill_when(proc, ready, timeout=300):
    """SIGKILL the process as soon as ready() holds (fails if it ends first)."""
    t0 = time.time()
    while not ready():
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.stderr.read()[-2000:]}"
        assert time.time() - t0 < timeout, "never reached the point to interrupt"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def finish(argv):
    out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 0, out.stderr[-3000:]


def same_files(a: Path, b: Path, skip=("run_done.json",)):
    """The same files with the same content (locks, timings and tensor caches, which hold inodes, aside)."""
    def files(root):
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name not in skip
                      and ".lock" not in p.name and ".cache" not in p.parts)
    fa, fb = files(a), files(b)
    assert fa == fb
    for rel in fa:
        if rel.suffix == ".pt":
            x, y = torch.load(a / rel, weights_only=False), torch.load(b / rel, weights_only=False)
            assert torch.equal(x["train"], y["train"]) and torch.equal(x["test"], y["test"]), rel
        elif rel.name == "run_args.json":
            assert json.loads((a / rel).read_text()) == json.loads((b / rel).read_text())
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_make_runs_killed_and_resumed(tmp_path):
    base = ["utils/make_runs.py", "--task", "rte", "--data_root", str(tmp_path / "data"), "--n_test", "12",
            "--model", "tiny", "--model_cache", str(tmp_path / "models"), "--seeds", "1-3", "--shot", "16",
            "--sample", "12", "--epochs", "2", "--workers", "1", "--threads", "1", "--no_progress", "--no_summary",
            "--grad_features", "--grad_steps", "all", "--grad_dim", "8"]
    finish([*base, "--output_dir", str(tmp_path / "clean")])
    out = tmp_path / "killed"
    proc = start([*base, "--output_dir", str(out)])
    kill_when(proc, lambda: any(out.glob("*_seed-2/loss_rte/*-2.out")))
    assert not any(out.glob("*_seed-2/run_done.json"))
    finish([*base, "--output_dir", str(out)])
    same_files(tmp_path / "clean", out)


def test_construct_killed_and_resumed(tmp_path):
    raw = tmp_path / "raw"
    for s in range(1, 7):
        write_raw_run(raw / f"output_rte_x_seed-{s}", n_steps=40, n_test=60, seed=s, metrics=True)
    base = ["utils/construct_runs-data-metric.py", "--raw_root", str(raw), "--task", "rte", "--run_glob", "output_*",
            "--workers", "1", "--no_progress"]
    finish([*base, "--output_root", str(tmp_path / "clean")])
    out = tmp_path / "killed"
    proc = start([*base, "--output_root", str(out)])
    kill_when(proc, lambda: len(list(out.glob("rte/*/.complete"))) >= 2)
    finish([*base, "--output_root", str(out)])
    same_files(tmp_path / "clean", out)


def test_train_killed_and_resumed(tmp_path):
    from gptfluence.synthetic import make_planted
    task = make_planted(tmp_path / "planted", n_train=24, n_test=20, n_runs=6, sample=16, epochs=2, seed=0)
    runs = [str(d) for d in task.run_dirs]
    base = ["train.py", "--sim_name", "enc_sim", "--separate_proj", "--task", "planted", "--data_paths_dict",
            json.dumps({"planted": {"train": runs[:5], "test": runs[5:]}}), "--train_data_path", str(task.train_path),
            "--eval_data_path", str(task.eval_path), "--valid_num", "1", "--max_epoch", "30", "--patience", "30",
            "--no_progress"]
    finish([*base, "--output_dir", str(tmp_path / "clean")])
    out = tmp_path / "killed"
    proc = start([*base, "--output_dir", str(out)])

    def some_epochs():
        logs = list(out.glob("planted/*/train.log"))
        return bool(logs) and logs[0].read_text().count("epoch ") >= 5
    kill_when(proc, some_epochs)
    (run,) = out.glob("planted/*")
    assert not (run / "history.json").exists()
    finish([*base, "--output_dir", str(out), "--resume"])
    (clean,) = (tmp_path / "clean").glob("planted/*")
    assert json.loads((run / "history.json").read_text())[-1]["epoch"] == 30
    for name in ("best-checkpoint.pt", "last-checkpoint.pt"):
        a, b = torch.load(clean / name, weights_only=False), torch.load(run / name, weights_only=False)
        assert a["epoch"] == b["epoch"] and a["finished"] and b["finished"]
        for k in a["state_dict"]:
            assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
