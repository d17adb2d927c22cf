"""The released scripts' names that map onto this repo's tools, and the preprocessing contract for raw runs still
being written: draw_cmp_curves / draw_cmp_orders_curves / draw_rescaled_pred_curves, get_min_valid_loss, the
enc_cp_sim alias, the OOD construct scripts, --run_glob with several patterns, orphan temporaries removed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from rawruns import raw_run_dir, write_raw_run

from gptfluence.formats import FLAN_TEST_OFFSETS, read_samples_id, read_trajectories, write_pred_and_gt
from gptfluence.io import DataError
from gptfluence.synthetic import make_planted

ROOT = Path(__file__).resolve().parents[1]


def _script(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem.replace("-", "_"), ROOT / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _construct(variant, raw, out, *extra):
    from gptfluence.cli import construct_runs
    return construct_runs.main(["--raw_root", str(raw), "--output_root", str(out), "--no_progress", *extra], variant)


# ---------------------------------------------------------------------------------------------- drawing

@pytest.fixture()
def pred_files(tmp_path):
    """Three pred_and_gt files of one run: the same truth, predictions off by 0.1, 0.2, 0.3."""
    steps, ids = torch.arange(1, 6), torch.arange(4)
    true = (2.0 - 0.1 * steps)[None, None].expand(1, 4, 5).clone()
    files = []
    for k in range(3):
        f = tmp_path / f"m{k}" / "pred_and_gt_loss_trajectories.out"
        f.parent.mkdir()
        write_pred_and_gt(f, ["run_seed-1"], steps, ids, true, true + 0.1 * (k + 1), torch.ones(1, 4, 5, dtype=bool))
        files.append(str(f))
    return files


@pytest.mark.parametrize("script,n,labels", [("utils/draw_cmp_curves.py", 2, ["Simfluence", "GPTfluence"]),
                                             ("utils/draw_cmp_orders_curves.py", 3, None),
                                             ("utils/draw_rescaled_pred_curves.py", 1, None)])
def test_compare_scripts_draw_with_the_released_labels(script, n, labels, pred_files, tmp_path, monkeypatch):
    from gptfluence.cli import draw_pred_curves
    seen = {}
    real = draw_pred_curves.comparison_curves

    def spy(files, labs, *a, **k):
        seen["labels"] = list(labs)
        return real(files, labs, *a, **k)
    monkeypatch.setattr(draw_pred_curves, "comparison_curves", spy)
    out = tmp_path / "cmp.png"
    _script(script).main(["--pred_files", *pred_files[:n], "--test_ids", "0-2", "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 3000
    assert len(seen["labels"]) == n
    if labels:
        assert seen["labels"] == labels


# ---------------------------------------------------------------------------------------------- logs

def test_get_min_valid_loss_reads_both_log_styles_and_history(tmp_path, capsys):
    mod = _script("utils/get_min_valid_loss.py")
    log = tmp_path / "train.log"
    log.write_text("epoch 0: train MSE 1.0, valid MSE 0.5 (0.1s)\nnoise\nepoch 1 valid mse loss 0.25\n"
                   "epoch 2: train MSE 0.3, valid MSE 0.375 (0.1s)\n")
    got = mod.main(["rte", str(log)])
    assert got == {"task": "rte", "validations": 3, "min_valid_mse": 0.25, "at_validation": 1}
    assert "minimum validation MSE: 0.25" in capsys.readouterr().out
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_text(json.dumps([{"valid_mse": 0.2}, {"valid_mse": 0.1}, {"train_mse": 0.0}]))
    assert mod.main(["--task_name", "sst2", "--log_file_path", str(run)])["min_valid_mse"] == 0.1
    (tmp_path / "empty.log").write_text("nothing here\n")
    with pytest.raises(DataError, match="no validation MSE found"):
        mod.main(["rte", str(tmp_path / "empty.log")])


# ---------------------------------------------------------------------------------------------- enc_cp_sim

def test_enc_cp_sim_is_enc_sim_on_every_kth_step(tmp_path):
    from gptfluence.checkpoint import load_checkpoint
    from gptfluence.cli import train
    task = make_planted(tmp_path, n_train=16, n_test=8, n_runs=4, sample=8, epochs=2, seed=0)
    runs = [str(d) for d in task.run_dirs]
    out = train.main(["--sim_name", "enc_cp_sim", "--cp_interval", "2", "--task", "planted", "--data_paths_dict",
                      json.dumps({"planted": {"train": runs, "test": []}}), "--train_data_path", str(task.train_path),
                      "--eval_data_path", str(task.eval_path), "--valid_num", "1", "--max_epoch", "1",
                      "--output_dir", str(tmp_path / "out"), "--no_progress"])
    ckpt = load_checkpoint(out)
    assert ckpt["sim_name"] == "enc_sim" and ckpt["spec"]["cp_interval"] == 2


# ---------------------------------------------------------------------------------------------- preprocessing

def test_runs_still_being_written_are_skipped_with_a_count(tmp_path, caplog):
    from gptfluence.preprocess import summarize
    raw, out = tmp_path / "raw", tmp_path / "runs"
    for s in (1, 2, 3):
        write_raw_run(raw_run_dir(raw, "rte", s), seed=s, n_steps=3, n_test=2)
    for s in (2, 3):  # made by make_runs: a start mark; only run 2 has finished
        (raw_run_dir(raw, "rte", s) / "run_args.json").write_text("{}")
    (raw_run_dir(raw, "rte", 2) / "run_done.json").write_text(json.dumps({"steps": 3}))
    reps = _construct("construct_runs-data", raw, out, "--task", "rte")
    assert [r.status for r in reps] == ["processed", "processed", "incomplete"]
    assert not (out / "rte" / raw_run_dir(raw, "rte", 3).name).exists()
    assert "1 raw runs skipped as still being written" in summarize(reps)


def test_orphan_temporaries_removed_and_several_globs(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "runs"
    write_raw_run(raw / "output_rte_a_seed-1", seed=1, n_steps=3, n_test=2)
    write_raw_run(raw / "output_rte_b_seed-2", seed=2, n_steps=3, n_test=2)
    write_raw_run(raw / "output_rte_c_seed-3", seed=3, n_steps=3, n_test=2)
    left = out / "rte" / "output_rte_a_seed-1" / ".all_loss_trajectory.out.x1.tmp"
    left.parent.mkdir(parents=True)
    left.write_text("half a line")
    reps = _construct("construct_runs-data", raw, out, "--task", "rte", "--run_glob", "output_rte_a_*",
                      "output_rte_c_*")
    assert [r.name for r in reps] == ["output_rte_a_seed-1", "output_rte_c_seed-3"]
    assert not left.exists() and not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("variant,metrics", [("construct_runs-data-flan-ood_multi-thread", ["loss"]),
                                             ("construct_runs-data-flan-metric-ood-multi-thread",
                                              ["loss", "bleu", "rougeL"])])
def test_ood_scripts_map_runs_into_the_flan_id_space(variant, metrics, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "runs"
    exp = write_raw_run(raw / "output_webnlg-ood_bs-4_seed-1", task="webnlg", n_steps=3, n_test=3, n_train=10,
                        seed=1, metrics=len(metrics) > 1)
    write_raw_run(raw / "output_rte_bs-4_seed-1", task="rte", n_steps=3, n_test=3, seed=1)  # not OOD: not matched
    _script(f"utils/{variant}.py").main(["--raw_root", str(raw), "--output_root", str(out), "--no_progress",
                                         "--workers", "1"])
    (d,) = [p for p in (out / "flan_ood").iterdir() if p.is_dir()]
    assert d.name == "output_webnlg-ood_bs-4_seed-1"
    assert read_samples_id(d / "train_samples_id.json") == {s: [i + 1200 for i in ids]
                                                           for s, ids in exp["samples"].items()}
    for m in metrics:
        traj = read_trajectories(d / f"all_{m}_trajectory.out", m)
        want = {i + FLAN_TEST_OFFSETS["webnlg"]: pts for i, pts in exp["values"][m].items()}
        assert {i: [(s, pytest.approx(v)) for s, v in pts] for i, pts in traj.items()} == want
