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
