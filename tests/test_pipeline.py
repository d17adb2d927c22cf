"""gptfluence/pipeline: specs filled from the simulators' defaults, the released folder names and run split,
folder reuse, the run maker's plan (launcher shards, workers), what test_simulator writes."""

import json
import logging
from pathlib import Path

import pytest
import torch

from gptfluence import pipeline as PL
from gptfluence.io import DataError
from gptfluence.pipeline import RunSpec, TestSpec, TrainSpec, default_run_name, train_simulator
from gptfluence.pipeline.runs import check_run_spec, launcher_shard, plan_workers
from gptfluence.pipeline.simulate import _split_runs
from gptfluence.simulators import simulator_class
from gptfluence.synthetic import make_planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    task = make_planted(root, n_train=16, n_test=10, n_runs=7, sample=8, epochs=2, seed=2)
    runs = [str(d) for d in task.run_dirs]
    return root, task, runs


def spec(planted, **kw):
    root, task, runs = planted
    base = dict(task="planted", run_dirs=runs[:6], test_dirs=runs[6:], valid_num=1, train_file=str(task.train_path),
                eval_file=str(task.eval_path), output_dir=str(root / "out"), progress=False)
    return TrainSpec(**{**base, **kw})


def test_defaults_come_from_the_simulator(planted):
    for name in ("original", "enc_sim", "vec_sim"):
        s = spec(planted, sim_name=name).resolved()
        for k, v in simulator_class(name).train_defaults.items():
            assert getattr(s, k) == v, (name, k)
    s = spec(planted, sim_name="enc_sim", lr=5e-4).resolved()
    assert s.lr == 5e-4  # a flag wins over the default
    assert spec(planted, sim_name="enc_sim").resolved().encoder == "all-MiniLM-L6-v2"


def test_released_folder_name():
    s = TrainSpec(sim_name="enc_sim", task="webnlg", metric="bleu", lr=1e-4, l2=0.0, weight_decay=1e-5, train_bs=128,
                  train_example_nums=200, test_example_nums=200, seed=42, max_epoch=1)
    assert default_run_name(s) == ("enc_sim_task-webnlg_metric-bleu_lr-0.0001_lambda-0.0_wd-1e-05_bs-128_"
                                   "train-sample-nums-200_test-sample-nums-200_seed-42_step_thres-None_max_epoch-1_"
                                   "frozen-True_use_initial-True_concate-False")
    fg = TrainSpec(**{**s.__dict__, "separate_proj": True})
    assert default_run_name(fg) != default_run_name(s) and default_run_name(fg).endswith("_separate_proj-True")
    assert default_run_name(TrainSpec(sim_name="mean_trajectory", task="rte")) == \
        "mean_trajectory_task-rte_metric-loss_seed-42"


def test_run_split_is_seeded_and_released():
    s = TrainSpec(run_dirs=[f"r{i}" for i in range(10)], valid_num=2, test_num=3, seed=42)
    train, valid, held = _split_runs(s)
    assert len(valid) == 2 and len(held) == 3 and len(train) == 5
    assert sorted(train + valid + held) == list(range(10))
    import random
    order = list(range(10))
    random.Random(42).shuffle(order)  # valid = the first valid_num of the shuffled list, then test_num held out
    assert valid == sorted(order[:2]) and held == sorted(order[2:5])
    with pytest.raises(DataError, match="leave no training run"):
        _split_runs(TrainSpec(run_dirs=["a", "b"], valid_num=1, test_num=1))


def test_train_test_roundtrip_and_folder_reuse(planted, caplog):
    res = train_simulator(spec(planted, sim_name="mean_trajectory"))
    for f in ("spec.json", "train.log", "best-checkpoint.pt", "last-checkpoint.pt", "history.json", "env.json"):
        assert (res.out_dir / f).is_file(), f
    saved = json.loads((res.out_dir / "spec.json").read_text())
    assert saved["sim_name"] == "mean_trajectory" and saved["train_example_nums"] == 16
    with pytest.raises(DataError, match="trained with other settings"):
        train_simulator(spec(planted, sim_name="mean_trajectory", valid_num=2, run_name=res.out_dir.name))
    m = PL.test_simulator(TestSpec(checkpoint=str(res.out_dir), plot_examples=0, progress=False))
    assert m["num_runs"] == 1 and m["test_runs"][0].endswith("run_seed-7") and m["invalid_predictions"] == 0
    with caplog.at_level(logging.WARNING):
        m2 = PL.test_simulator(TestSpec(checkpoint=str(res.out_dir), plot_examples=0, metric="loss", progress=False))
    assert m2["all_steps_mse_mean"] == m["all_steps_mse_mean"]
    ckpt = torch.load(res.out_dir / "best-checkpoint.pt", weights_only=False)
    assert ckpt["finished"] and ckpt["data"]["test_runs"] == [planted[2][6]]


def test_run_spec_checks_and_plans(monkeypatch):
    for kw, msg in (({"bs": 0}, "--bs must be >= 1"), ({"lr": -1.0}, "--lr must be a positive"),
                    ({"seeds": []}, "no run seeds"), ({"seeds": [1, 1]}, "repeats a seed"),
                    ({"sample": 300}, "larger than the training pool")):
        with pytest.raises(ValueError, match=msg):
            check_run_spec(RunSpec(**kw))
    # the scoring batch: 16 on the CPU and 64 on a GPU unless given; decoding keeps its own
    from gptfluence.pipeline.runs import run_settings
    files = (Path(__file__), Path(__file__))
    cpu, gpu = (run_settings(RunSpec(), *files, torch.device(d)) for d in ("cpu", "cuda"))
    assert (cpu["eval_batch_size"], gpu["eval_batch_size"], cpu["gen_batch_size"]) == (16, 64, 64)
    assert run_settings(RunSpec(eval_batch_size=5), *files, torch.device("cuda"))["eval_batch_size"] == 5
    assert launcher_shard([1, 2, 3, 4, 5]) == ([1, 2, 3, 4, 5], 0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launcher_shard([1, 2, 3, 4, 5]) == ([2, 4], 1, 2)
    assert plan_workers(RunSpec(threads=3), torch.device("cpu"), 4, world=2)[0] == 1  # the launcher parallelises
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    assert launcher_shard(list(range(1, 8))) == ([3, 6], 2, 3)
    workers, threads = plan_workers(RunSpec(), torch.device("cpu"), 1)
    assert workers == 1 and threads >= 1
    assert plan_workers(RunSpec(workers=2, threads=1), torch.device("cpu"), 5) == (2, 1)
