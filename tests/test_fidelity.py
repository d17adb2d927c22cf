"""bench/bench_fidelity.py (gptfluence/experiments/fidelity.py) on small planted runs: every method is trained and
scored, the table shows each of them, and the verdicts quote the numbers of the table."""

import json
import re

import pytest

from gptfluence.cli import fidelity
from gptfluence.experiments import fidelity as F
from gptfluence.runs import load_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fidelity")
    text = fidelity.main(["--preset", "quick", "--sections", "planted", "--planted_runs", "10", "--seeds", "42,43",
                          "--out_root", str(out)])
    return out / "fidelity" / "quick", text


def test_every_method_has_its_row_and_the_files_are_written(planted):
    d, text = planted
    for name in ("table.md", "summary.json", "args.json", "env.json", "fidelity.log"):
        assert (d / name).is_file(), name
    assert (d / "table.md").read_text() == text
    for m in F.METHODS:
        assert f"| {m.label} | " in text, m.label
    summary = json.loads((d / "summary.json").read_text())
    assert set(summary["planted"]) == {m.label for m in F.METHODS}
    assert len(summary["planted"]["GPTfluence"]) == 2 and len(summary["planted"]["Mean trajectory"]) == 1


def test_verdicts_quote_the_measured_numbers(planted):
    d, text = planted
    summary = json.loads((d / "summary.json").read_text())
    (ours,) = summary["planted"][F.ANCHOR.label]
    line = [c for c in summary["checks"] if "planted runs" in c][0]
    assert f"MSE {ours['all_steps_mse_mean']:.5f}" in line
    assert line.startswith("- yes:") == (ours["all_steps_mse_mean"] <= 1e-3 and
                                         ours["final_step_spearman_mean"] >= 0.9)
    # the held-out runs are the last five seeds, and the mean trajectory is scored on them
    (mean,) = summary["planted"]["Mean trajectory"]
    assert [re.search(r"seed-(\d+)", r).group(1) for r in mean["test_runs"]] == ["6", "7", "8", "9", "10"]
    rs = load_runs(mean["test_runs"])
    assert mean["num_scored_trajectories"] == rs.values.shape[0] * rs.values.shape[1]


def test_bad_sections_are_refused():
    with pytest.raises(ValueError, match="--sections"):
        fidelity.parse_args(["--sections", "planted,nope"])
    with pytest.raises(ValueError, match="--planted_runs must be >= 8"):
        fidelity.parse_args(["--planted_runs", "3"])


def test_split_blocks_hold_out_every_block_once():
    runs = [f"r{i}" for i in range(1, 12)]  # 11 runs, blocks of 3: the partial last block is left out
    blocks = F.split_blocks(runs, 3)
    assert [held for _, held in blocks] == [["r1", "r2", "r3"], ["r4", "r5", "r6"], ["r7", "r8", "r9"]]
    for train, held in blocks:
        assert sorted(train + held) == sorted(runs) and not set(train) & set(held)


def test_splits_table_gains_and_verdicts():
    ours, mean, plain = F.ANCHOR.label, F.MEAN_TRAJECTORY.label, F.ANCHOR_PLAIN.label
    res = {"a": [{ours: 0.5, mean: 1.0, plain: 1.0}, {ours: 1.0, mean: 1.0, plain: 0.9}],
           "b": [{ours: 1.0, mean: 1.0, plain: 1.0}, {ours: 2.0, mean: 1.0, plain: 1.0}]}
    text, checks = F.splits_table(res)
    assert "| block 1 | 0.5000 vs 1.0000 (+50%; anchor_sim +0%) | 1.0000 vs 1.0000 (+0%; anchor_sim +0%) | " \
           "0.7500 vs 1.0000 (+25%) |" in text
    assert "| block 2 | 1.0000 vs 1.0000 (+0%; anchor_sim +10%) | 2.0000 vs 1.0000 (-100%; anchor_sim +0%) | " \
           "1.5000 vs 1.0000 (-50%) |" in text
    assert checks[0] == "- NO: on every held-out block, on average by >= 10%: +25%, -50%"
    assert checks[1].endswith("a 1/1/0, b 0/1/1")


def test_splits_section_fits_every_block(tmp_path, monkeypatch):
    """The splits section on synthetic planted runs standing in for a preset task: every block is held out once,
    and each cell is the held-out MSE of a fit on the other runs."""
    from gptfluence.experiments import reproduce as R
    runs, files = F.planted_runs(tmp_path / "w", 9, None)

    def fake_task_runs(ws, args, task):
        return runs[:-3], runs[-3:], files, f"fake/{task}"
    monkeypatch.setattr(R, "task_runs", fake_task_runs)
    text = fidelity.main(["--preset", "quick", "--tasks", "planted", "--sections", "splits", "--runs", "9",
                          "--test_runs", "3", "--out_root", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "fidelity" / "quick" / "summary.json").read_text())
    blocks = summary["splits"]["planted"]
    assert len(blocks) == 3 and "| block 3 |" in text
    for row in blocks:
        assert set(row) == {m.label for m in F.SPLIT_METHODS} and all(v > 0 for v in row.values())
    # block 1 held out runs 1-3: its mean trajectory is the mean of runs 4-9, scored on runs 1-3
    rs_train, rs_held = load_runs(runs[3:]), load_runs(runs[:3])
    m = rs_train.values.double().mean(0)
    want = float(((rs_held.values.double() - m)[..., 1:] ** 2).mean())
    assert blocks[0][F.MEAN_TRAJECTORY.label] == pytest.approx(want, rel=1e-4)


def _checkpoints(root):
    """{best checkpoint under root/sims: its state dict, dense}."""
    from gptfluence.checkpoint import load_checkpoint
    return {str(p.relative_to(root)): load_checkpoint(p)["state_dict"]
            for p in sorted((root / "sims").glob("**/best-checkpoint.pt"))}


def test_simulators_trained_in_worker_processes_are_the_same_bits(tmp_path):
    """Workspace.train_simulators with two worker processes gives the checkpoints one process gives, bit for bit,
    and the held-out scores its workers write (heldout=) are those scored afterwards in this process; a training
    that fails in a worker stops the call with its own message."""
    from gptfluence.experiments.common import ANCHOR, GPTFLUENCE, SIMFLUENCE, UNABLE, Workspace
    from gptfluence.io import DataError
    runs, files = F.planted_runs(tmp_path / "data", 8, None)
    methods = (SIMFLUENCE, GPTFLUENCE, ANCHOR)
    got, scores = {}, {}
    # one process scoring afterwards; one process scoring as it trains; two workers scoring as they train
    for name, workers, heldout in (("w1", 1, None), ("w1h", 1, runs[-2:]), ("w2h", 2, runs[-2:])):
        ws = Workspace(tmp_path / name, workers=workers)
        ws.train_methods("planted", methods, "planted", "loss", runs[:-2], files, [42, 43], 1, heldout=heldout,
                         max_epoch=3)
        got[name] = _checkpoints(ws.root)
        # scored, or refused (Simfluence's seed-43 split leaves a training id of the held-out runs unseen)
        written = [p for p in ws.root.glob("sims/**/heldout/*.json") if p.name in ("metrics.json", "unable.json")]
        assert len(written) == (0 if heldout is None else 5)
        # the loops that follow find every simulator trained (and, with heldout, scored)
        folder = ws.simulator("planted", GPTFLUENCE, "planted", "loss", runs[:-2], files, 43, 1, max_epoch=3)
        assert len(json.loads((folder / "history.json").read_text())) == 3
        scores[name] = {m.label: ws.method_scores("planted", m, "planted", "loss", runs[:-2], runs[-2:], files,
                                                  [42, 43], 1, max_epoch=3) for m in methods}

    def comparable(cell):  # the scores less where they were written
        drop = ("checkpoint", "save_dir", "test_runs")
        return cell if isinstance(cell, str) else [{k: v for k, v in x.items() if k not in drop} for x in cell]
    for name in ("w1h", "w2h"):
        assert {m: comparable(c) for m, c in scores["w1"].items()} == \
            {m: comparable(c) for m, c in scores[name].items()}, name
    assert scores["w1"][GPTFLUENCE.label][1]["num_runs"] == 2 and scores["w1"][SIMFLUENCE.label] == UNABLE
    assert len(got["w1"]) == 5
    for other in ("w1h", "w2h"):
        assert got["w1"].keys() == got[other].keys()
        for name, state in got["w1"].items():
            assert state.keys() == got[other][name].keys()
            for k, v in state.items():
                assert torch_equal(v, got[other][name][k]), (other, name, k)
    ws = Workspace(tmp_path / "bad", workers=2)
    with pytest.raises(DataError, match="missing_train.json"):
        ws.train_methods("planted", (SIMFLUENCE, GPTFLUENCE), "planted", "loss", runs[:-2],
                         (str(tmp_path / "missing_train.json"), files[1]), [42], 1)


def torch_equal(a, b) -> bool:
    import torch
    return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b))
