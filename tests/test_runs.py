"""Processed run dirs -> RunSet tensors (gptfluence/runs.py), the cache, and utils/draw_gt_curves.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from gptfluence import runs as runs_mod
from gptfluence.formats import write_processed_run
from gptfluence.io import DataError
from gptfluence.runs import cache_path, load_runs, parse_id_ranges, validate_ids

ROOT = Path(__file__).resolve().parents[1]

# Literal lines of the GPTDynamics dataset card (step 3 -> 4 repeats a value exactly).
CARD_LINE = ('{"id": 200, "loss_trajectory": [{"step": 1, "loss": 2.1776978969573975}, '
             '{"step": 2, "loss": 1.9405722618103027}, {"step": 3, "loss": 1.7367844581604004}, '
             '{"step": 4, "loss": 1.7367844581604004}]}')
CARD_SAMPLES = ['{"step": 1, "samples_id": [12, 187, 45, 3]}', '{"step": 2, "samples_id": [7, 8, 9, 10]}',
                '{"step": 3, "samples_id": [1, 2, 3, 4]}', '{"step": 4, "samples_id": [5, 6, 11, 13]}']


def _write_run(d, n_steps=6, ids=(0, 1, 2), every=1, seed=0, bs=2, values=None, start=1):
    """A processed run: batch of step s = [10*s + j]; value of (id i, step s) = seed + i + s / 100 (or `values`)."""
    samples = {s: [10 * s + j for j in range(bs)] for s in range(1, n_steps + 1)}
    rec = [s for s in range(start, n_steps + 1) if s % every == 0]
    traj = {i: [(s, values(i, s) if values else seed + i + s / 100) for s in rec] for i in ids}
    write_processed_run(d, samples, {"loss": traj})
    return Path(d)


def test_dataset_card_lines_parse(tmp_path):
    d = tmp_path / "card"
    d.mkdir()
    (d / "train_samples_id.json").write_text("\n".join(CARD_SAMPLES) + "\n")
    (d / "all_loss_trajectory.out").write_text(CARD_LINE + "\n")
    rs = load_runs([d])
    assert rs.test_ids.tolist() == [200] and rs.steps.tolist() == [1, 2, 3, 4]
    want = torch.tensor([2.1776978969573975, 1.9405722618103027, 1.7367844581604004, 1.7367844581604004])
    assert torch.equal(rs.values[0, 0], want.float())
    assert rs.values[0, 0, 2].item() == rs.values[0, 0, 3].item()  # exactly repeated value kept
    assert rs.batches[0].tolist() == [[12, 187, 45, 3], [7, 8, 9, 10], [1, 2, 3, 4], [5, 6, 11, 13]]
    assert rs.num_gaps == 0 and rs.metric == "loss"


def test_record_every_k_batches_union(tmp_path):
    d = _write_run(tmp_path / "r", n_steps=7, every=3)  # recorded at 3, 6; step 7 has no later record
    rs = load_runs([d])
    assert rs.steps.tolist() == [3, 6]
    assert rs.batches.shape == (1, 2, 6)
    assert rs.batches[0, 0].tolist() == [10, 11, 20, 21, 30, 31]  # steps 1..3
    assert rs.batches[0, 1].tolist() == [40, 41, 50, 51, 60, 61]  # steps 4..6
    # with a step-0 record and ragged recording, shorter slots are padded with -1
    d2 = tmp_path / "r2"
    samples = {s: [10 * s, 10 * s + 1] for s in range(1, 6)}
    write_processed_run(d2, samples, {"loss": {0: [(0, 1.0), (1, 0.9), (4, 0.5), (5, 0.4)]}})
    rs2 = load_runs([d2])
    assert rs2.steps.tolist() == [0, 1, 4, 5]
    assert rs2.batches[0].tolist() == [[-1] * 6, [10, 11, -1, -1, -1, -1], [20, 21, 30, 31, 40, 41],
                                       [50, 51, -1, -1, -1, -1]]


def test_union_of_steps_and_gaps_masked(tmp_path):
    a = _write_run(tmp_path / "a", n_steps=4)
    b = tmp_path / "b"
    samples = {s: [s] for s in range(1, 5)}
    write_processed_run(b, samples, {"loss": {0: [(1, 5.0), (2, 5.5), (4, 6.0)], 1: [(1, 1.0), (3, 1.5)],
                                              2: [(2, 2.0)]}})
    rs = load_runs([a, b])
    assert rs.steps.tolist() == [1, 2, 3, 4]
    assert rs.mask[1].tolist() == [[True, True, False, True], [True, False, True, False],
                                   [False, True, False, False]]
    assert rs.values[1, 0].tolist() == [5.0, 5.5, 0.0, 6.0]
    assert rs.num_gaps == 6


def test_test_id_selection(tmp_path):
    a = _write_run(tmp_path / "a", ids=(0, 1, 2, 5))
    b = _write_run(tmp_path / "b", ids=(0, 1, 2, 5), seed=1)
    rs = load_runs([a, b], test_ids=[5, 0])
    assert rs.test_ids.tolist() == [5, 0]
    assert rs.values[0, :, 0].tolist() == pytest.approx([5.01, 0.01])
    with pytest.raises(DataError, match=r"/a: 2 selected test ids not in all_loss_trajectory.out: \[3, 4\]"):
        load_runs([a, b], test_ids=[0, 3, 4])
    with pytest.raises(DataError, match="empty test id selection"):
        load_runs([a], test_ids=[])
    c = _write_run(tmp_path / "c", ids=(0, 1))
    with pytest.raises(DataError, match=r"c: 2 selected test ids .*\[2, 5\]"):
        load_runs([a, c])


def test_steps_differing_between_runs_refused(tmp_path):
    a = _write_run(tmp_path / "run_a", n_steps=6)
    b = _write_run(tmp_path / "run_b", n_steps=5)
    with pytest.raises(DataError, match=r"run_a has 6 steps, .*run_b has 5; only in the first: \[6\]"):
        load_runs([a, b])


def test_nonfinite_refused_or_masked(tmp_path):
    a = _write_run(tmp_path / "a")
    b = _write_run(tmp_path / "b", values=lambda i, s: float("nan") if (i, s) in {(1, 2), (2, 5)} else 1.0)
    with pytest.raises(DataError, match=r"2 non-finite values: .*b: 2 \(first: test id 1, step 2\)"):
        load_runs([a, b])
    rs = load_runs([a, b], allow_nonfinite=True)
    assert rs.num_gaps == 2 and not rs.mask[1, 1, 1] and not rs.mask[1, 2, 4]
    assert torch.isfinite(rs.values).all() and rs.values[1, 1, 1].item() == 0.0


def test_missing_files_named(tmp_path):
    with pytest.raises(DataError, match=r"nope: run directory not found"):
        load_runs([tmp_path / "nope"])
    a = _write_run(tmp_path / "a")
    with pytest.raises(DataError, match=r"all_bleu_trajectory\.out: file not found"):
        load_runs([a], metric="bleu")
    (a / "all_loss_trajectory.out").write_text('{"id": 0, "loss_trajectory": [{"step": 1, "loss": 1.0}]}\n{"id": 1,\n')
    with pytest.raises(DataError, match=r"all_loss_trajectory\.out:2"):
        load_runs([a], use_cache=False)


def test_cache_used_rebuilt_on_change_and_corruption(tmp_path, monkeypatch, caplog):
    a = _write_run(tmp_path / "a")
    first = load_runs([a])
    assert cache_path(a, "loss").is_file()
    calls = []
    real = runs_mod.build_run_tensors
    monkeypatch.setattr(runs_mod, "build_run_tensors", lambda *x: calls.append(x) or real(*x))
    again = load_runs([a])
    assert calls == [] and torch.equal(again.values, first.values) and torch.equal(again.batches, first.batches)
    # a source file rewritten (same size, new values) -> stale cache detected and rebuilt
    _write_run(a, values=lambda i, s: 7.0 + i + s / 100)
    with caplog.at_level(logging.WARNING, logger="gptfluence.runs"):
        changed = load_runs([a])
    assert len(calls) == 1 and "stale" in caplog.text
    assert changed.values[0, 1, 0].item() == pytest.approx(8.01)
    # a corrupt cache file -> rebuilt, with a message
    cache_path(a, "loss").write_bytes(b"not a torch file")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gptfluence.runs"):
        rebuilt = load_runs([a])
    assert len(calls) == 2 and "corrupt" in caplog.text and torch.equal(rebuilt.values, changed.values)
    assert torch.equal(load_runs([a], use_cache=False).values, changed.values)
    assert len(calls) == 3 and load_runs([a]).values.shape == (1, 3, 6) and len(calls) == 3


def test_subset_and_to(tmp_path):
    rs = load_runs([_write_run(tmp_path / f"r{k}", seed=k, values=lambda i, s, k=k: k + i + s / 100)
                    for k in range(3)])
    sub = rs.subset(run_idx=[2, 0], test_idx=[1])
    assert sub.names == [rs.names[2], rs.names[0]] and sub.test_ids.tolist() == [1]
    assert sub.values.shape == (2, 1, 6) and sub.values[0, 0, 0].item() == pytest.approx(3.01)
    assert sub.batches.shape == rs.batches[:2].shape and sub.steps.tolist() == rs.steps.tolist()
    assert rs.subset(run_idx=slice(1, 3)).num_runs == 2
    moved = rs.to("cpu")
    assert moved.values.device.type == "cpu" and torch.equal(moved.mask, rs.mask)


def test_validate_ids(tmp_path):
    rs = load_runs([_write_run(tmp_path / "a", n_steps=6, ids=(0, 4))])
    validate_ids(rs, n_train=62, n_test=5)
    with pytest.raises(DataError, match=r"a: step 6: training id 60 outside train\.json \(expected ids 0\.\.59\)"):
        validate_ids(rs, n_train=60, train_file="train.json")
    with pytest.raises(DataError, match=r"test ids \[4\] outside eval\.json \(expected ids 0\.\.3\)"):
        validate_ids(rs, n_train=100, n_test=4, test_file="eval.json")
    rk = load_runs([_write_run(tmp_path / "k", n_steps=6, every=3)])
    with pytest.raises(DataError, match=r"k: steps 4\.\.6: training id 50"):
        validate_ids(rk, n_train=50)


def test_parse_id_ranges():
    assert parse_id_ranges("0-3,7, 10 - 11") == [0, 1, 2, 3, 7, 10, 11]
    assert len(parse_id_ranges("0-99,150-199")) == 150
    for bad in ("", "1,,2", "3-1", "a", "1-2-3", "-1", "1,1"):
        with pytest.raises(DataError):
            parse_id_ranges(bad)


def test_cached_load_32x200x96_reads_no_text(tmp_path, monkeypatch):
    """The second load of a paper-sized run set comes from the per-run caches alone: no source file is parsed
    (bench/bench_simulator.py times it)."""
    dirs = [tmp_path / f"r{k}" for k in range(32)]
    base = torch.linspace(3.0, 1.0, 96).tolist()
    write_processed_run(dirs[0], {1: [0]}, {"loss": {i: [(s + 1, base[s] + i * 1e-3) for s in range(96)]
                                                     for i in range(200)}})
    traj = (dirs[0] / "all_loss_trajectory.out").read_bytes()
    for k, d in enumerate(dirs):  # same trajectories (a byte copy: faster to set up), different curricula
        write_processed_run(d, {s: [(s * 4 + j + k) % 200 for j in range(4)] for s in range(1, 97)}, {})
        (d / "all_loss_trajectory.out").write_bytes(traj)
    cold = load_runs(dirs)

    def no_parsing(*a, **k):
        raise AssertionError("a cached run was parsed again")
    monkeypatch.setattr("gptfluence.runs.build_run_tensors", no_parsing)
    warm = load_runs(dirs)
    assert warm.values.shape == (32, 200, 96) and warm.batches.shape == (32, 96, 4)
    assert torch.equal(warm.values, cold.values) and torch.equal(warm.batches, cold.batches)


def test_draw_gt_curves_writes_png(tmp_path):
    for k in range(2):
        _write_run(tmp_path / "runs" / "rte" / f"run{k}", seed=k, values=lambda i, s, k=k: 2 - s / 10 + k / 5)
    from gptfluence.cli import draw_gt_curves as mod
    out = tmp_path / "gt.png"
    got = mod.main(["--runs_root", str(tmp_path / "runs"), "--task", "rte", "--test_ids", "0-1,2",
                    "--out", str(out)])
    assert got == str(out) and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    mod.main(["--run_dirs", str(tmp_path / "runs" / "rte" / "run0"), "--out", str(tmp_path / "one.png")])
    assert (tmp_path / "one.png").stat().st_size > 3000
