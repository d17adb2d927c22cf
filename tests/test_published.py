"""The released command lines, verbatim, on a small fixture laid out like the GPTDynamics download extracted in
the repo: gptdynamics/sft_tasks/<task>/<published file names>, runs/<task>/output_<task>_bs-4_shot-200_..._seed-N,
raw runs under gptdynamics/runs_raw. The repo's entry scripts are linked into the fixture folder and run there as
a user runs them from the repo root."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from rawruns import write_raw_run

from gptfluence.formats import write_processed_run
from gptfluence.io import write_jsonl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
RTE = "output_rte_bs-4_shot-200_sample-128_model-pythia-410m-deduped_lr-5e-7_weight-decay-0.001_epoch-3_seed-{}"
WEBNLG = ("output_webnlg_bs-4_shot-200_sample-128_model-pythia-410m-deduped_lr-1e-6_weight-decay-0.001_epoch-3"
          "_loss-output-token_seed-{}")
STEPS = 5
ENC_RTE = ("enc_sim_task-rte_metric-loss_lr-0.0001_lambda-0.0_wd-1e-05_bs-128_train-sample-nums-200_"
           "test-sample-nums-277_seed-42_step_thres-None_max_epoch-1_frozen-True_use_initial-True_concate-False")
ENC_WEBNLG = ("enc_sim_task-webnlg_metric-bleu_lr-0.0001_lambda-0.0_wd-1e-05_bs-128_train-sample-nums-200_"
              "test-sample-nums-200_seed-42_step_thres-None_max_epoch-1_frozen-True_use_initial-True_concate-False")
# the released scripts' command lines (run_enc_sim.sh, auto_test.sh, auto_test_metric.sh, run_original.sh)
RELEASED_TRAIN_WEBNLG = (
    "python train.py --sim_name enc_sim --dataset_name webnlg --task webnlg --output_dir ./output --max_epoch 1 "
    "--train_bs 128 --train_example_nums 200 --test_example_nums 200 --test_example_start_id 0 "
    "--test_example_end_id 99 --metric bleu --seed 42 --hyper_parameter 0. --lr 0.0001 --valid_epoch_interval 1 "
    "--save_epoch_interval 1 --valid_num 2 --test_num 0 --weight_decay 1e-5")
IMPLIED_TRAIN_RTE = RELEASED_TRAIN_WEBNLG.replace("webnlg", "rte").replace("--metric bleu", "--metric loss").replace(
    "--test_example_nums 200", "--test_example_nums 277")
RELEASED_TEST_RTE = (
    "python test.py --test_example_nums 200 --train_example_nums 200 --task rte --metric loss --sim_name enc_sim "
    f"--dataset_name rte --checkpoint_path output/rte/{ENC_RTE}/best-checkpoint.pt --save_dir output/rte/{ENC_RTE} "
    "--test_example_start_id 0 --test_example_end_id 199")
RELEASED_TEST_WEBNLG = (
    "python test.py --test_example_nums 200 --train_example_nums 200 --task webnlg --metric rougeL --sim_name enc_sim "
    f"--dataset_name webnlg --checkpoint_path output/webnlg/{ENC_WEBNLG}/best-checkpoint.pt "
    f"--save_dir output/webnlg/{ENC_WEBNLG} --test_example_start_id 0 --test_example_end_id 99")
RELEASED_TRAIN_ORIGINAL = (
    "python train.py --sim_name original --task output_rte_bs-4_shot-200_sample-128_lr-2e-6_weight-decay-0.001_epoch-3 "
    "--output_dir ./output --max_epoch 300 --train_bs 128 --train_example_nums 200 --test_example_nums 277 --seed 42 "
    "--hyper_parameter 0. --lr 0.001 --valid_epoch_interval 1 --save_epoch_interval 1 --valid_num 2 --test_num 0 "
    "--weight_decay 1e-5")


def _samples(n: int, task: str, rng: random.Random) -> list[dict]:
    topics = ("sports", "cooking", "music", "space")
    out = []
    for i in range(n):
        t = topics[i % 4]
        ctx = f"{task} example {i} about {t} and {rng.choice(topics)}."
        out.append({"id": i, "context": ctx, "input": ctx + (" yes" if i % 2 else " no")})
    return out


def _runs(root: Path, task: str, name: str, n_pool: int, n_ids: int, metrics: tuple):
    for seed in range(1, 33):
        rng = random.Random(seed)
        batches = {s: rng.sample(range(n_pool), 4) for s in range(1, STEPS + 1)}
        traj = {}
        for m in metrics:
            scale = {"loss": 1.0, "bleu": 20.0, "rougeL": 0.3}[m]
            traj[m] = {i: [(s, scale * (1.0 + 0.01 * (i % 5) - 0.03 * s + 0.002 * sum(b % 3 for b in batches[s])))
                           for s in range(1, STEPS + 1)] for i in range(n_ids)}
        write_processed_run(root / "runs" / task / name.format(seed), batches, traj)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("download")
    for entry in ("train.py", "test.py", "influence.py", "utils", "run_enc_sim.sh", "run_original.sh",
                  "run_vec_sim.sh", "auto_test.sh", "auto_test_metric.sh"):
        (root / entry).symlink_to(ROOT / entry)
    rng = random.Random(0)
    files = {"rte": ("rte_0_399_train.json", 400, "rte_0_276_eval.json", 277),
             "webnlg": ("webnlg_train_0-399.json", 400, "webnlg_dev_0-177.json", 178)}
    for task, (tr, n_tr, ev, n_ev) in files.items():
        write_jsonl(root / "gptdynamics" / "sft_tasks" / task / tr, _samples(n_tr, task, rng))
        write_jsonl(root / "gptdynamics" / "sft_tasks" / task / ev, _samples(n_ev, task, rng))
    _runs(root, "rte", RTE, 400, 200, ("loss",))
    _runs(root, "webnlg", WEBNLG, 400, 100, ("loss", "bleu", "rougeL"))
    raw = root / "gptdynamics" / "runs_raw"
    for s in (101, 102):
        write_raw_run(raw / RTE.format(s), task="rte", n_steps=STEPS, n_test=6, n_train=40, seed=s)
        write_raw_run(raw / WEBNLG.format(s), task="webnlg", n_steps=STEPS, n_test=6, n_train=40, seed=s, metrics=True)
        write_raw_run(raw / f"output_flan_bs-8_seed-{s}", task="flan", n_steps=4, n_train=40, seed=s, metrics=True,
                      subtasks={"sst2": 3, "rte": 3, "boolq": 3, "webnlg": 3, "wmt16_de_en": 3})
    return root


def run(repo: Path, line: str, env: dict | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    cmd = line.split()
    if cmd[0] == "python":
        cmd[0] = sys.executable
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})})
    if ok:
        assert out.returncode == 0, (line, out.stdout[-1500:], out.stderr[-3000:])
    return out


def test_construct_scripts_and_gt_curves(repo):
    run(repo, "python utils/construct_runs-data.py")
    run(repo, "python utils/construct_runs-data-metric.py")
    run(repo, "python utils/construct_runs-data-flan-multi-thread.py")
    run(repo, "python utils/construct_runs-data-flan-metric-multi-thread.py")
    for task, name in (("rte", RTE), ("webnlg", WEBNLG)):
        done = repo / "runs" / task / name.format(101)
        assert (done / ".complete").is_file() and (done / "all_loss_trajectory.out").is_file()
    assert (repo / "runs" / "webnlg" / WEBNLG.format(101) / "all_bleu_trajectory.out").is_file()
    flan = repo / "runs" / "flan" / "output_flan_bs-8_seed-101"
    ids = [json.loads(line)["id"] for line in (flan / "all_loss_trajectory.out").read_text().splitlines()]
    assert {0, 200, 477, 677, 855} <= set(ids)  # the FLAN offsets of the sub-tasks
    run(repo, "python utils/draw_gt_curves.py")
    assert (repo / "runs" / "rte" / "gt_curves_loss.png").stat().st_size > 1000


def test_released_train_and_test_lines(repo):
    run(repo, RELEASED_TRAIN_WEBNLG)
    ckpt = repo / "output" / "webnlg" / ENC_WEBNLG / "best-checkpoint.pt"
    assert ckpt.is_file()  # the folder name of the released scripts
    run(repo, IMPLIED_TRAIN_RTE)
    out = run(repo, RELEASED_TEST_RTE)
    m = json.loads((repo / "output" / "rte" / ENC_RTE / "metrics.json").read_text())
    assert m["num_runs"] == 5 and m["num_test_examples"] == 200 and m["metric"] == "loss"
    assert "all-steps MSE" in out.stdout
    lines = (repo / "output" / "rte" / ENC_RTE / "pred_and_gt_loss_trajectories.out").read_text().splitlines()
    assert len(lines) == 200 and len(json.loads(lines[0])) == 5  # one line per test id, one entry per test run
    out = run(repo, RELEASED_TEST_WEBNLG)  # a BLEU simulator scored on ROUGE-L, as the released script does
    assert "scoring it on rougeL trajectories" in out.stderr
    assert (repo / "output" / "webnlg" / ENC_WEBNLG / "pred_and_gt_rougeL_trajectories.out").is_file()


def test_shell_scripts(repo):
    out = run(repo, "bash run_enc_sim.sh 0", env={"MAX_EPOCH": "1"})
    assert "no GPU found (asked for GPU 0): running on the CPU" in out.stdout
    run(repo, "bash run_original.sh 0", env={"MAX_EPOCH": "1", "OUTPUT_DIR": "output_sf"})
    run(repo, "bash run_vec_sim.sh 0", env={"MAX_EPOCH": "1", "OUTPUT_DIR": "output_vec"})
    for folder, sim in (("output", "enc_sim"), ("output_sf", "original"), ("output_vec", "vec_sim")):
        made = [d for d in (repo / folder / "rte").iterdir() if d.name.startswith(f"{sim}_task-rte_metric-loss")]
        assert made and (made[0] / "best-checkpoint.pt").is_file(), (folder, sim)
    out = run(repo, "bash auto_test.sh 0", env={"TASKS": "rte"})
    assert "| GPTfluence |" in out.stdout
    out = run(repo, "bash auto_test_metric.sh 0", env={"TASKS": "webnlg"})
    assert "test bleu" in out.stdout


def test_released_stale_line_fails_with_one_line(repo):
    """The released run_original.sh line names a task key of old runs (it fails in the released code too)."""
    out = run(repo, RELEASED_TRAIN_ORIGINAL, ok=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "is not in the data paths dict" in out.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("script", ["reproduce.sh", "run_enc_sim.sh", "run_original.sh", "run_vec_sim.sh",
                                    "auto_test.sh", "auto_test_metric.sh", "experiments.sh", "run_requirements.sh"])
def test_shell_help_does_no_work(script, tmp_path):
    out = subprocess.run(["bash", str(ROOT / script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and script.split(".")[0] in out.stdout + (ROOT / script).read_text()
    assert "bash " in out.stdout and not any(tmp_path.iterdir())
