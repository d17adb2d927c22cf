"""Runs made by several processes are the runs one process makes, file for file: two ranks under torchrun (each
makes seeds r, r + W, ...), and worker pools kept open across calls (the runs of several tasks in one pool, each
worker loading the base model once)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_resume import same_files

from gptfluence.pipeline import RunSpec, make_runs
from gptfluence.runtime import WorkerPools

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _cli(argv, extra_env=None):
    out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **(extra_env or {})})
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tmp_path_factory.mktemp("models")  # the tiny base model, built by the first test that needs it


def test_two_ranks_under_torchrun_make_the_files_of_one_process(tmp_path, models):
    base = ["utils/make_runs.py", "--task", "rte", "--data_root", str(tmp_path / "data"), "--n_test", "12",
            "--model", "tiny", "--model_cache", str(models), "--seeds", "1-4", "--shot", "16",
            "--sample", "12", "--epochs", "2", "--no_progress", "--no_summary", "--grad_features", "--grad_steps",
            "all", "--grad_dim", "8"]
    _cli([*base, "--workers", "1", "--threads", "1", "--output_dir", str(tmp_path / "one")])
    two = _cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *base, "--output_dir",
                str(tmp_path / "two")])
    # each rank made its own share: seeds 1, 3 on rank 0 and 2, 4 on rank 1
    assert "2 runs of rte (rank 0 of 2)" in two.stderr and "2 runs of rte (rank 1 of 2)" in two.stderr
    same_files(tmp_path / "one", tmp_path / "two")


def test_an_open_pool_serves_several_calls_with_the_files_of_fresh_ones(tmp_path, models):
    spec = RunSpec(task="rte", seeds=[1, 2, 3], data_root=str(tmp_path / "data"), n_test=10, model="tiny",
                   model_cache=str(models), shot=16, sample=8, bs=4, epochs=1, workers=2, threads=1,
                   progress=False, summary=False)
    other = replace(spec, task="boolq")
    for s in (spec, other):  # fresh pools, one per call (what make_runs does alone)
        make_runs(replace(s, output_dir=str(tmp_path / "fresh" / s.task)))
    with WorkerPools() as pools:
        make_runs(replace(spec, output_dir=str(tmp_path / "pooled" / "rte")), pools)
        ex = pools.get(2, 1)
        before = set(ex._processes)
        make_runs(replace(other, output_dir=str(tmp_path / "pooled" / "boolq")), pools)
        assert pools.get(2, 1) is ex and set(ex._processes) == before  # the same two processes did both tasks
    for task in ("rte", "boolq"):
        same_files(tmp_path / "fresh" / task, tmp_path / "pooled" / task)
    # a call that finds every run made loads no model and starts no worker; one that finds a run interrupted
    # (no run_done.json) makes that run again in the open pool, the same files
    with WorkerPools() as pools:
        make_runs(replace(spec, output_dir=str(tmp_path / "pooled" / "rte")), pools)
        assert pools._pools == {}
        done, = (tmp_path / "pooled" / "rte").glob("*_seed-2/run_done.json")
        done.unlink()
        make_runs(replace(spec, output_dir=str(tmp_path / "pooled" / "rte")), pools)
        assert list(pools._pools) == [(2, 1)] and done.is_file()
    same_files(tmp_path / "fresh" / "rte", tmp_path / "pooled" / "rte")
