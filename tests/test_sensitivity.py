"""utils/sensitivity.py: a run re-made with two batches swapped, the chaos share D / V on planted deviations
(no chaos, all chaos, half of each) and end to end at tiny sizes (the identical re-make reproduces the run)."""

import json

import pytest
import torch

from gptfluence import runmaker as D
from gptfluence.cli import sensitivity as CLI
from gptfluence.experiments import sensitivity as S
from gptfluence.io import DataError


def test_swap_steps_trades_two_batches_and_nothing_else():
    full = D.make_curriculum(20, 12, 4, 2, seed=3)
    swapped = D.make_curriculum(20, 12, 4, 2, seed=3, swap_steps=[2, 5])
    assert swapped[1] == full[4] and swapped[4] == full[1] and full[1] != full[4]
    assert [b for k, b in enumerate(swapped) if k not in (1, 4)] == [b for k, b in enumerate(full) if k not in (1, 4)]
    with pytest.raises(DataError, match=r"expected two steps in 1\.\.6"):
        D.make_curriculum(20, 12, 4, 2, seed=3, swap_steps=[1, 7])
    with pytest.raises(DataError, match="expected two steps"):
        D.make_curriculum(20, 12, 4, 2, seed=3, swap_steps=[1, 2, 3])
    with pytest.raises(ValueError, match="two different steps"):
        S.parse_swap("2,2")
    with pytest.raises(ValueError, match="two different steps"):
        S.parse_swap("0,1")
    assert S.parse_swap(" 3 , 1") == [3, 1]


def _planted(content_sd: float, chaos_sd: float, R: int = 400, S_: int = 200, T: int = 6, N: int = 8):
    """Runs whose deviation from a shared curve is content (kept by a swap) + chaos (drawn anew by a swap)."""
    g = torch.Generator().manual_seed(0)
    curve = torch.linspace(1.0, 0.2, T)[:, None].expand(T, N)

    def runs(content, n):
        return curve + content + chaos_sd * torch.randn(n, T, N, generator=g, dtype=torch.float64)
    content = content_sd * torch.randn(R, T, N, generator=g, dtype=torch.float64)
    every = runs(content, R)
    orig = every[:S_]
    remade = runs(content[:S_], S_)
    return every, orig, remade


@pytest.mark.parametrize("content_sd,chaos_sd,share", [(1.0, 0.0, 0.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.5)])
def test_chaos_share_recovers_the_planted_share(content_sd, chaos_sd, share):
    every, orig, remade = _planted(content_sd, chaos_sd)
    res = S.chaos_share(every, orig, remade)
    assert res["chaos_share"] == pytest.approx(share, abs=0.05)
    assert res["chaos_share_last"] == pytest.approx(share, abs=0.1)
    assert len(res["per_step_share"]) == 6 and all(abs(x - share) < 0.15 for x in res["per_step_share"][1:])
    per_run = torch.tensor(res["chaos_share_per_run"], dtype=torch.float64)
    assert len(per_run) == 200 and per_run.mean().item() == pytest.approx(res["chaos_share"], rel=1e-9, abs=1e-12)
    with pytest.raises(DataError, match=">= 2 runs"):
        S.chaos_share(every[:1], orig, remade)


def test_cli_refuses_bad_flags():
    with pytest.raises(ValueError, match="--swap_steps"):
        CLI.parse_args(["--swap_steps", "1"])
    with pytest.raises(ValueError, match=r"--n_runs must be in 1\.\.12"):
        CLI.parse_args(["--n_runs", "13"])


@pytest.mark.slow
def test_end_to_end_tiny(tmp_path):
    argv = ["--preset", "quick", "--tasks", "rte", "--model", "tiny", "--runs", "4", "--test_runs", "2",
            "--valid_num", "1", "--shot", "8", "--sample", "8", "--epochs", "2", "--bs", "2", "--n_test", "6",
            "--out_root", str(tmp_path)]
    text = CLI.main(argv)
    out = tmp_path / "sensitivity" / "quick"
    summary = json.loads((out / "summary.json").read_text())
    (r,) = summary["tasks"]
    assert (out / "table.md").read_text() == text and "| rte | 4 x 8, 0.0003 |" in text
    assert r["swapped_seeds"] == [3, 4] and r["swap_steps"] == [1, 2]
    # the identical re-make (no gradient features, no text metrics) reproduces the preset's run exactly
    assert r["control_max_abs_diff"] == 0.0
    # the swap changes the run after step 1 (both batches are seen by step 2) and the share is a real ratio
    assert r["max_abs_change"] > 0 and 0 < r["chaos_share"] < 5
    assert len(r["per_step_share"]) == 8 and r["per_step_share"][0] >= 0
    args = json.loads((out / "args.json").read_text())
    assert args["swap_steps"] == "1,2" and args["n_runs"] == 2
