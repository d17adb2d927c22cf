"""End-to-end checks of utils/experiments.py at tiny sizes: the unseen-data and Markov-order experiments
make their runs, train and score the simulators, and write tables and figures with real numbers."""

import json
import math
import re
from pathlib import Path

import pytest

from gptfluence.cli import experiments as exp

pytestmark = pytest.mark.slow
TINY = ["--preset", "quick", "--gpu", "0", "--threads", "1", "--model", "tiny", "--runs", "4", "--test_runs", "1",
        "--valid_num", "1", "--shot", "8", "--sample", "8", "--epochs", "2", "--bs", "2", "--n_test", "8",
        "--seeds", "42,43", "--plot_examples", "2"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Both experiments run once into one output root (they share the work folder)."""
    out = tmp_path_factory.mktemp("exp")
    texts = {e: exp.main([e, *TINY, "--out_root", str(out), *extra])
             for e, extra in (("unseen", []), ("order", ["--orders", "1,2"]))}
    return out, texts


def table_rows(path: Path) -> dict:
    """{row label: [cells]} of a markdown table."""
    rows = {}
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| |"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def numbers(cell: str) -> list[float]:
    """The three means of 'MSE (std) / MAE (std) / rho (std)'."""
    return [float(re.match(r"\s*(-?[\d.]+|nan)", part).group(1)) for part in cell.split(" / ")]


def test_unseen_table(results):
    out, _ = results
    d = out / "unseen" / "quick"
    for name in ("table.md", "bars.png", "trajectories.png", "args.json", "summary.json", "env.json"):
        assert (d / name).is_file(), name
    header = [line for line in (d / "table.md").read_text().splitlines() if line.startswith("| |")][0]
    assert "seen (train A, test A)" in header and "both unseen (B, B)" in header
    rows = table_rows(d / "table.md")
    assert set(rows) == {"No change", "Mean trajectory", "Simfluence", "GPTfluence (f!=g)", "anchor_lex_sim (ours)"}
    # Simfluence answers for the ids it saw and is shown unable for the unseen ones
    mse, mae, rho = numbers(rows["Simfluence"][0])
    assert math.isfinite(mse) and 0 <= mse < 100 and 0 <= mae < 10
    assert rows["Simfluence"][1:] == ["cannot (unseen ids)"] * 3
    # the feature simulator and the baselines answer in all four conditions
    for label in ("GPTfluence (f!=g)", "Mean trajectory", "No change", "anchor_lex_sim (ours)"):
        assert len(rows[label]) == 4 and all(math.isfinite(numbers(cell)[0]) for cell in rows[label])
    # two simulator seeds: the trained rows show a std, the deterministic baselines do not
    assert "(" in rows["GPTfluence (f!=g)"][0].split(" / ")[0] and "(" not in rows["No change"][0].split(" / ")[0]
    # the mean-trajectory cells equal a direct computation from the runs its checkpoint names: seen test ids get
    # their mean over the fitted runs, unseen ones the mean curve of the seen ids shifted to their first value
    import torch

    from gptfluence.runs import load_runs
    summary = json.loads((d / "summary.json").read_text())
    header_cells = [c.strip() for c in header.strip().strip("|").split("|")][1:]
    for col, cond in enumerate(header_cells):
        (m,) = summary["cells"][f"Mean trajectory | {cond}"]
        ckpt = torch.load(Path(m["checkpoint"]) / "best-checkpoint.pt"
                          if Path(m["checkpoint"]).is_dir() else m["checkpoint"], weights_only=False)
        fitted = load_runs(ckpt["data"]["train_runs"], test_ids=ckpt["spec"]["test_ids"])
        half = cond.rstrip(")")[-1]                # "(pool half, test half)": n_test 8 -> A = ids 0-3, B = 4-7
        test = load_runs(m["test_runs"], test_ids=list(range(4)) if half == "A" else list(range(4, 8)))
        curve = fitted.values.double().mean(0)                                           # [N_seen, T]
        if set(test.test_ids.tolist()) <= set(fitted.test_ids.tolist()):
            rows_of = [fitted.test_ids.tolist().index(i) for i in test.test_ids.tolist()]
            pred = curve[rows_of][None].expand_as(test.values)
        else:
            shape = curve.mean(0) - curve.mean(0)[0]
            pred = test.values.double()[..., :1] + shape
        mse = ((pred - test.values.double()) ** 2)[..., 1:].mean(-1).mean()
        assert numbers(rows["Mean trajectory"][col])[0] == pytest.approx(float(mse), abs=6e-5), cond


def test_order_table_matches_a_direct_computation(results):
    """The no-change row equals the MSE computed here from the held-out runs; every method has its row."""
    from gptfluence.runs import load_runs
    out, _ = results
    d = out / "order" / "quick"
    assert (d / "bars.png").stat().st_size > 1000 and (d / "trajectories.png").stat().st_size > 1000
    rows = table_rows(d / "table.md")
    assert list(rows) == ["No change", "Mean trajectory", "Simfluence (n=1)", "anchor_lex_sim (ours)",
                          "GPTfluence (n=1)", "GPTfluence (n=2)"]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["cells"]["GPTfluence (n=2)"][0]["order_n"] == 2
    no_change = summary["cells"]["No change"][0]
    rs = load_runs(no_change["test_runs"])
    err = (rs.values[..., 1:] - rs.values[..., :1]) ** 2
    assert numbers(rows["No change"][0])[0] == pytest.approx(float(err.mean(-1).mean()), abs=6e-5)


def test_rerun_skips_and_is_identical(results):
    """A second call finds every stage done and reproduces the same table."""
    out, texts = results
    again = exp.main(["order", *TINY, "--out_root", str(out), "--orders", "1,2"])
    strip = lambda t: t.rsplit("\n_", 1)[0]  # noqa: E731  (the timing line differs)
    assert strip(again) == strip(texts["order"])


def test_help_and_presets():
    args = exp.parse_args(["cp_interval", "--preset", "default", "--shot", "10"])
    assert args.shot == 10 and args.model == "small" and args.intervals == "1,2,5,10"
    with pytest.raises(SystemExit):
        exp.parse_args(["nope"])
