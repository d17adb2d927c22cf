"""Raw run dirs -> processed run dirs (gptfluence/preprocess.py and utils/construct_runs-data*.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rawruns import checkpoint_file, raw_run_dir, write_raw_run  # tests/ is on the path under pytest

from gptfluence.formats import parse_log_records, read_log, read_samples_id, read_trajectories
from gptfluence.io import DataError
from gptfluence.preprocess import MARKER, preprocess_run
from gptfluence.runs import load_runs

ROOT = Path(__file__).resolve().parents[1]


def _cli(name, raw_root, out_root, *extra):
    from gptfluence.cli import construct_runs
    return construct_runs.main(["--raw_root", str(raw_root), "--output_root", str(out_root), "--no_progress",
                                *map(str, extra)], name.removesuffix(".py"))


def _as_lists(traj):
    return {i: [(s, v) for s, v in pts] for i, pts in traj.items()}


# ---------------------------------------------------------------------------------------------- log.out

def test_parse_log_records_with_debris():
    line = "  5%|▌ | 5/96 [00:01<00:20]{'loss': 2.3, 'step': 5, 'samples_id': [12, 187, 45, 3]}  6%|▌ | 6/96"
    assert parse_log_records(line) == [{"loss": 2.3, "step": 5, "samples_id": [12, 187, 45, 3]}]
    glued = "{'loss': nan, 'step': 1, 'samples_id': [1]}{'loss': 2.0, 'step': 2, 'samples_id': [2, 3]}"
    recs = parse_log_records(glued)
    assert [r["step"] for r in recs] == [1, 2] and recs[1]["samples_id"] == [2, 3]
    assert parse_log_records("{'train_runtime': 12.3, 'epoch': 3.0}") == []
    assert parse_log_records("***** Running training *****") == []
    with pytest.raises(ValueError):
        parse_log_records("{'loss': 1, 'step': 3, 'samples_id': [1, 2}")


def test_read_log_repeated_and_corrupt(tmp_path):
    p = tmp_path / "log.out"
    p.write_text("hello\n{'loss': 1.0, 'step': 1, 'samples_id': [0, 1]}\n"
                 "{'loss': 1.0, 'step': 1, 'samples_id': [5, 6]}\n{'loss': 1.0, 'step': 2, 'samples_id': [2]}\n")
    logged = read_log(p)
    assert logged.samples_id == {1: [5, 6], 2: [2]}
    assert logged.repeated == {1: [2, 3]} and logged.n_unrelated == 1
    p.write_text("{'loss': 1.0, 'step': 1, 'samples_id': [0, 1]}\n{'loss': 1, 'step': 2, 'samples_id': [1, 2}\n")
    with pytest.raises(DataError, match=r"log\.out:2"):
        read_log(p)
    p.write_text("{'loss': 1.0, 'samples_id': [0, 1]}\n")
    with pytest.raises(DataError, match=r"log\.out:1: expected an integer 'step'"):
        read_log(p)


# ---------------------------------------------------------------------------------------------- round trip

def test_roundtrip_raw_to_tensors(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "runs"
    expected = [write_raw_run(raw_run_dir(raw, "rte", s), seed=s, n_steps=8, n_test=5, repeat_step=6)
                for s in (1, 2, 3)]
    reports = _cli("construct_runs-data.py", raw, out, "--task", "rte")
    assert [r.status for r in reports] == ["processed"] * 3
    assert reports[0].repeated_steps == [6] and reports[0].n_log_steps == 8
    assert reports[0].n_unrelated_lines == 4  # 2 header lines + eval dict + train_runtime dict
    run_dirs = [out / "rte" / raw_run_dir(raw, "rte", s).name for s in (1, 2, 3)]
    for d, exp in zip(run_dirs, expected):
        assert read_samples_id(d / "train_samples_id.json") == exp["samples"]  # last line of step 6 kept
        assert _as_lists(read_trajectories(d / "all_loss_trajectory.out")) == exp["values"]["loss"]
        assert (d / MARKER).is_file()
        first = json.loads((d / "all_loss_trajectory.out").read_text().splitlines()[0])
        assert set(first) == {"id", "loss_trajectory"} and set(first["loss_trajectory"][0]) == {"step", "loss"}
    rs = load_runs(run_dirs)
    assert rs.values.shape == (3, 5, 8) and rs.steps.tolist() == list(range(1, 9)) and rs.num_gaps == 0
    for r, exp in enumerate(expected):
        for tid, pts in exp["values"]["loss"].items():
            want = [v for _, v in pts]
            assert rs.values[r, tid].tolist() == pytest.approx(want, rel=1e-6)
        assert rs.batches[r].tolist() == [exp["samples"][s] for s in range(1, 9)]
        # the exactly repeated value (step 3 -> 4) survives preprocessing
        assert rs.values[r, :, 2].tolist() == rs.values[r, :, 3].tolist()


def test_metric_script_writes_every_metric(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "runs"
    exp = write_raw_run(raw_run_dir(raw, "webnlg", 1), task="webnlg", seed=1, n_steps=5, n_test=3, metrics=True)
    _cli("construct_runs-data-metric.py", raw, out, "--task", "webnlg")
    d = out / "webnlg" / raw_run_dir(raw, "webnlg", 1).name
    for m in ("loss", "bleu", "rougeL", "rouge1", "rouge2"):
        assert _as_lists(read_trajectories(d / f"all_{m}_trajectory.out")) == exp["values"][m]
        assert '"loss_trajectory"' in (d / f"all_{m}_trajectory.out").read_text()
    bleu = load_runs([d], metric="bleu")
    assert bleu.values[0, 2, 4].item() == pytest.approx(exp["values"]["bleu"][2][4][1], rel=1e-6)


# ---------------------------------------------------------------------------------------------- gaps

def test_gaps_reported_and_not_shifted(tmp_path, capsys):
    raw, out = tmp_path / "raw", tmp_path / "runs"
    exp_a = write_raw_run(raw_run_dir(raw, "rte", 1), seed=1, n_steps=8, n_test=4, missing_steps=(3, 5),
                          drop={6: [2]})
    write_raw_run(raw_run_dir(raw, "rte", 2), seed=2, n_steps=8, n_test=4)
    rep = _cli("construct_runs-data.py", raw, out, "--task", "rte")[0]
    assert rep.step_gaps["loss"] == [3, 5] and rep.example_gaps["loss"] == 1
    assert rep.n_recorded_steps["loss"] == 6 and rep.n_test["loss"] == 4
    summary = capsys.readouterr().out
    assert "runs: 2 processed, 0 skipped" in summary and "recorded steps per run: 6..8; test examples: 4" in summary
    assert "step gaps: 2; per-example gaps: 1" in summary and "seed-1: loss: 2 step gaps [3, 5]" in summary
    d = out / "rte" / raw_run_dir(raw, "rte", 1).name
    traj = read_trajectories(d / "all_loss_trajectory.out")
    assert [s for s, _ in traj[0]] == [1, 2, 4, 6, 7, 8]
    assert [s for s, _ in traj[2]] == [1, 2, 4, 7, 8]
    assert traj[0][2] == exp_a["values"]["loss"][0][2] and traj[0][2][0] == 4  # step 4 stays step 4
    rs = load_runs([d, out / "rte" / raw_run_dir(raw, "rte", 2).name])
    assert rs.steps.tolist() == list(range(1, 9))
    assert rs.mask[0, :, 2].tolist() == [False] * 4 and rs.mask[0, :, 4].tolist() == [False] * 4
    assert rs.mask[0, 2, 5].item() is False and rs.mask[0, 1, 5].item() is True
    assert rs.num_gaps == 4 + 4 + 1
    assert rs.values[0, 0, 3].item() == pytest.approx(exp_a["values"]["loss"][0][2][1], rel=1e-6)


def test_corrupt_checkpoint_line_names_file_and_line(tmp_path):
    raw = tmp_path / "raw"
    d = raw_run_dir(raw, "rte", 1)
    write_raw_run(d, seed=1, n_steps=3, n_test=4)
    f = checkpoint_file(d, "rte", 2)
    lines = f.read_text().splitlines()
    lines[2] = '{"id": 2, "loss": 0.5'
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"loss_rte_checkpoint-2\.out:3"):
        preprocess_run(d, tmp_path / "out", "rte")
    assert not (tmp_path / "out" / MARKER).exists()


def test_missing_dir_and_log_named(tmp_path):
    with pytest.raises(DataError, match=r"nope: run directory not found"):
        preprocess_run(tmp_path / "nope", tmp_path / "out", "rte")
    d = raw_run_dir(tmp_path, "rte", 1)
    write_raw_run(d, seed=1, n_steps=2, n_test=2)
    (d / "log.out").unlink()
    with pytest.raises(DataError, match=r"log\.out: file not found"):
        preprocess_run(d, tmp_path / "out", "rte")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no run dirs match output_rte_\*"):
        _cli("construct_runs-data.py", tmp_path / "empty", tmp_path / "o")
    (d / "log.out").write_text("{'step': 1, 'samples_id': [1]}\n")
    with pytest.raises(DataError, match=r"metric_rte: no checkpoint files"):
        preprocess_run(d, tmp_path / "out", "rte", metrics=["bleu"])


def test_nonfinite_refused_with_counts_or_dropped(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "runs"
    d = raw_run_dir(raw, "rte", 1)
    exp = write_raw_run(d, seed=1, n_steps=4, n_test=3, nonfinite={2: 1, 3: 0})
    with pytest.raises(DataError, match=r"2 non-finite 'loss' values in 2 checkpoint files: .*checkpoint-2\.out: 1"):
        _cli("construct_runs-data.py", raw, out, "--task", "rte")
    rep = _cli("construct_runs-data.py", raw, out, "--task", "rte", "--allow_nonfinite")[0]
    assert rep.nonfinite_dropped["loss"] == 2 and rep.example_gaps["loss"] == 0
    traj = read_trajectories(out / "rte" / d.name / "all_loss_trajectory.out")
    assert [s for s, _ in traj[1]] == [1, 3, 4] and _as_lists(traj) == exp["values"]["loss"]
    assert all(math.isfinite(v) for pts in traj.values() for _, v in pts)


# ---------------------------------------------------------------------------------------------- skip / redo

def test_skip_overwrite_and_interrupted(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "runs"
    d = raw_run_dir(raw, "rte", 1)
    write_raw_run(d, seed=1, n_steps=3, n_test=2)
    assert _cli("construct_runs-data.py", raw, out, "--task", "rte")[0].status == "processed"
    p = out / "rte" / d.name / "all_loss_trajectory.out"
    good = p.read_text()
    p.write_text("garbage\n")  # a hand-edited output is kept while the marker says complete
    assert _cli("construct_runs-data.py", raw, out, "--task", "rte")[0].status == "skipped"
    assert p.read_text() == "garbage\n"
    assert _cli("construct_runs-data.py", raw, out, "--task", "rte", "--overwrite")[0].status == "processed"
    assert p.read_text() == good
    (out / "rte" / d.name / MARKER).unlink()  # interrupted: outputs without the marker
    p.write_text('{"id": 0, "loss_trajectory": []}\n')
    assert _cli("construct_runs-data.py", raw, out, "--task", "rte")[0].status == "processed"
    assert p.read_text() == good
    # a changed raw file: still skipped (no --overwrite) but flagged as stale
    f = checkpoint_file(d, "rte", 2)
    f.write_text(f.read_text().replace('"id": 0', '"id": 0 '))
    rep = _cli("construct_runs-data.py", raw, out, "--task", "rte")[0]
    assert rep.status == "skipped" and rep.stale


# ---------------------------------------------------------------------------------------------- FLAN

def test_flan_offsets_and_workers_same_output(tmp_path):
    raw = tmp_path / "raw"
    sub = {"sst2": 3, "rte": 2, "webnlg": 2}
    exps = [write_raw_run(raw_run_dir(raw, "flan", s), task="flan", seed=s, n_steps=4, subtasks=sub,
                          metrics=True, missing_sub_steps={"rte": [2]}) for s in (1, 2)]
    args = ["--task", "flan", "--tasks", "sst2,rte,webnlg"]
    one = _cli("construct_runs-data-flan-metric-multi-thread.py", raw, tmp_path / "a", *args, "--workers", "1")
    _cli("construct_runs-data-flan-metric-multi-thread.py", raw, tmp_path / "b", *args, "--workers", "2")
    assert one[0].example_gaps["loss"] == 2 and one[0].step_gaps["loss"] == []  # rte ids miss step 2
    d = tmp_path / "a" / "flan" / raw_run_dir(raw, "flan", 1).name
    traj = read_trajectories(d / "all_loss_trajectory.out")
    assert sorted(traj) == [0, 1, 2, 200, 201, 677, 678]
    assert _as_lists(traj) == exps[0]["values"]["loss"]
    assert [s for s, _ in traj[200]] == [1, 3, 4]
    files_a, files_b = (sorted(p.relative_to(tmp_path / x) for p in (tmp_path / x).rglob("*")
                               if p.is_file() and ".cache" not in p.parts) for x in "ab")  # caches hold inodes
    assert files_a == files_b and len(files_a) == 2 * 7 + 1  # + dynamics_report.json
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    with pytest.raises(DataError, match="unknown FLAN sub-tasks"):
        _cli("construct_runs-data-flan-multi-thread.py", raw, tmp_path / "c", "--tasks", "sst2,cnn")


def test_scripts_help_and_import_do_no_work(tmp_path, capsys):
    for name in ("construct_runs-data.py", "construct_runs-data-metric.py",
                 "construct_runs-data-flan-multi-thread.py", "construct_runs-data-flan-metric-multi-thread.py"):
        from gptfluence.cli import construct_runs
        with pytest.raises(SystemExit) as e:
            construct_runs.build_parser(name.removesuffix(".py")).parse_args(["--help"])
        assert e.value.code == 0
        assert "--overwrite" in capsys.readouterr().out
    from gptfluence.cli.construct_runs import build_parser
    assert build_parser("construct_runs-data-metric").parse_args([]).metrics == "loss,bleu,rougeL,rouge1,rouge2"
    assert build_parser("construct_runs-data").parse_args([]).output_root == "runs"


def test_orphan_and_step0_checkpoints_and_metric_folder_loss(tmp_path):
    d = raw_run_dir(tmp_path / "raw", "rte", 1)
    write_raw_run(d, seed=1, n_steps=3, n_test=2)
    checkpoint_file(d, "rte", 0).write_text('{"id": 0, "loss": 3.0}\n{"id": 1, "loss": 3.5}\n')
    checkpoint_file(d, "rte", 99).write_text('{"id": 0, "loss": 0.1}\n{"id": 1, "loss": 0.2}\n')
    rep = preprocess_run(d, tmp_path / "out", "rte")
    assert rep.orphan_steps == [99] and rep.n_recorded_steps["loss"] == 4
    traj = read_trajectories(tmp_path / "out" / "all_loss_trajectory.out")
    assert [s for s, _ in traj[1]] == [0, 1, 2, 3] and traj[1][0] == (0, 3.5)
    # loss read from metric_<task>/ when there is no loss_<task>/ folder
    d2 = raw_run_dir(tmp_path / "raw2", "webnlg", 1)
    exp = write_raw_run(d2, task="webnlg", seed=3, n_steps=3, n_test=2, metrics=True)
    for f in (d2 / "loss_webnlg").iterdir():
        f.unlink()
    (d2 / "loss_webnlg").rmdir()
    preprocess_run(d2, tmp_path / "out2", "webnlg")
    assert _as_lists(read_trajectories(tmp_path / "out2" / "all_loss_trajectory.out")) == exp["values"]["loss"]


def test_flan_global_id_collision_refused(tmp_path):
    d = raw_run_dir(tmp_path / "raw", "flan", 1)
    write_raw_run(d, task="flan", seed=1, n_steps=2, subtasks={"sst2": 201, "rte": 2})
    with pytest.raises(DataError, match=r"local id 200 of 'sst2' maps to global id 200, already used by 'rte'"):
        preprocess_run(d, tmp_path / "out", "flan", subtasks={"rte": 200, "sst2": 0})
