"""The dynamics report (gptfluence.report): planted batch effects are found, their absence is not invented."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gptfluence import report as REP
from gptfluence.formats import write_processed_run
from gptfluence.io import DataError, write_jsonl
from gptfluence.synthetic import make_planted


def _runs(root, n_runs=8, n_train=24, n_test=10, steps=16, batch=4, effect=0.0, noise=0.01, seed=0):
    """Processed runs whose one-step change = a shared trend + noise + `effect` x (number of batch examples
    whose label equals the test example's label, minus the number with the other label)."""
    train_lab = np.arange(n_train) % 2
    test_lab = np.arange(n_test) % 2
    write_jsonl(root / "train.json", ({"id": i, "input": f"train {i} {'yes' if l else 'no'}", "context": f"train {i}",
                                       "label": int(l)} for i, l in enumerate(train_lab)))
    write_jsonl(root / "test.json", ({"id": i, "input": f"test {i} x", "context": f"test {i}", "label": int(l)}
                                     for i, l in enumerate(test_lab)))
    trend = -0.05 * np.exp(-np.arange(steps) / 6.0)
    dirs = []
    for s in range(n_runs):
        r = np.random.default_rng(seed * 100 + s)
        batches = np.stack([r.choice(n_train, size=batch, replace=False) for _ in range(steps)])
        v = 2.0 + 0.3 * np.arange(n_test) / n_test + 0.01 * r.standard_normal(n_test)
        vals = [v]
        for t in range(1, steps):
            same = (train_lab[batches[t]][:, None] == test_lab[None, :]).sum(0)
            push = same - (batch - same)
            v = v + trend[t] - effect * push + noise * r.standard_normal(n_test)
            vals.append(v)
        vals = np.stack(vals, 1)
        d = root / "runs" / f"run_seed-{s}"
        write_processed_run(d, {t + 1: batches[t].tolist() for t in range(steps)},
                            {"loss": {i: [(t + 1, float(vals[i, t])) for t in range(steps)] for i in range(n_test)}})
        dirs.append(d)
    return dirs


def test_planted_topic_effect_is_found(tmp_path):
    task = make_planted(tmp_path, n_train=32, n_test=24, n_runs=8, sample=24, epochs=2, help=0.04, hurt=0.02,
                        noise=0.002, seed=3)
    rep = REP.dynamics_report(task.run_dirs, task.train_path, task.eval_path)
    assert rep["runs"] == 8 and rep["test_examples"] == 24 and rep["steps"]["recorded"] == 12
    assert rep["groups"] == ["cooking", "finance", "sports", "weather"]  # the samples' "topic" field
    assert rep["share_explained"] > 0.5
    assert rep["per_features"]["groups"]["share_explained"] > 0.5
    assert rep["mse_batch"] < 0.5 * rep["mse_mean"]


def test_label_effect_found_and_absent_effect_not_invented(tmp_path):
    with_effect = REP.dynamics_report(_runs(tmp_path / "a", effect=0.01), tmp_path / "a/train.json",
                                      tmp_path / "a/test.json")
    assert with_effect["groups"] == ["0", "1"]
    assert with_effect["share_explained"] > 0.5
    assert with_effect["per_features"]["ids"]["share_explained"] > 0.3  # per-id counts see it too, less sharply
    assert with_effect["batch_effect_measurable"] and 0 < with_effect["share_explained_se"] < 0.1
    assert with_effect["folds"] == 8
    none = REP.dynamics_report(_runs(tmp_path / "b", effect=0.0), tmp_path / "b/train.json", tmp_path / "b/test.json")
    assert abs(none["share_explained"]) < 0.05
    assert not none["batch_effect_measurable"]
    assert none["share_mean_trajectory"] > 0.5  # the shared trend is what the mean trajectory explains
    # strong shrinkage (or "no batch effect") is chosen on every fold
    assert all(c["ridge"] is None or c["ridge"] >= 1.0 for c in none["chosen"])


def test_summary_says_when_the_groups_are_missing_and_why(tmp_path):
    """The same runs reported without the training sample file have no label / topic groups, and their share can
    read quite differently (a label effect the per-id counts see less sharply): the summary says so and why."""
    dirs = _runs(tmp_path, effect=0.01)
    with_file = REP.dynamics_report(dirs, tmp_path / "train.json", tmp_path / "test.json")
    without = REP.dynamics_report(dirs)
    assert "no_groups" not in with_file and "groups" not in without
    assert without["no_groups"].startswith("no training sample file given")
    line = [x for x in REP.format_report(without) if x.startswith("one-step change")][0]
    assert "training ids only, no label / topic groups: no training sample file given (--train_data_path)" in line
    assert not any("training ids only" in x for x in REP.format_report(with_file))
    plain = tmp_path / "plain.json"  # a file with neither label nor topic and many distinct targets
    write_jsonl(plain, ({"id": i, "input": f"train {i} word{i}", "context": f"train {i}"} for i in range(24)))
    assert "many distinct targets" in REP.dynamics_report(dirs, plain)["no_groups"]


def test_share_standard_error_by_hand():
    # three folds of (mean-trajectory, batch-fit) squared errors; the share left out fold by fold
    folds = [(4.0, 3.0), (2.0, 2.0), (4.0, 2.0)]
    loo = np.array([1 - 4.0 / 6.0, 1 - 5.0 / 8.0, 1 - 5.0 / 6.0])
    want = np.sqrt(2 / 3 * ((loo - loo.mean()) ** 2).sum())
    assert REP._jackknife_share_se(folds) == pytest.approx(want, rel=1e-12)
    assert REP._jackknife_share_se(folds[:1]) is None  # one fold: no spread to measure
    assert REP._jackknife_share_se([(0.0, 0.0), (1.0, 1.0)]) is None  # a fold left out leaves nothing to explain


def test_summary_figures_by_hand(tmp_path):
    dirs = _runs(tmp_path, n_runs=3, n_test=6, steps=5, effect=0.0, noise=0.0)
    rep = REP.dynamics_report(dirs, tmp_path / "train.json", tmp_path / "test.json",
                              accuracies={"first": [0.5, 0.5, 0.4], "last": [0.8, 0.9, 1.0]})
    vals = []
    for d in dirs:
        rows = [json.loads(x) for x in open(d / "all_loss_trajectory.out")]
        vals.append([[p["loss"] for p in r["loss_trajectory"]] for r in rows])
    vals = np.array(vals)  # [R, N, T]
    assert rep["metric_first"] == pytest.approx(vals[..., 0].mean())
    assert rep["metric_last"] == pytest.approx(vals[..., -1].mean())
    assert rep["frac_improved"] == pytest.approx((vals[..., -1] < vals[..., 0]).mean())
    assert rep["final_spread"] == pytest.approx(np.mean([vals[r, :, -1].std() for r in range(3)]))
    assert rep["final_rank_agreement"] == pytest.approx(1.0)  # same initial order, same shared trend
    assert rep["label_accuracy_first"] == pytest.approx(1.4 / 3) and rep["label_accuracy_last"] == pytest.approx(0.9)
    assert rep["transitions"] == 4 and rep["transitions_dropped"] == 0
    lines = REP.format_report(rep)
    assert any("0.467 -> 0.900" in x for x in lines) and any("rank agreement" in x for x in lines)
    path = REP.write_report(rep, tmp_path)
    assert path.name == "dynamics_report.json" and json.loads(path.read_text()) == json.loads(json.dumps(rep))


def test_accuracies_from_raw_run_dirs(tmp_path):
    dirs = _runs(tmp_path, n_runs=3, steps=4)
    raws = []
    for i in range(3):
        raw = tmp_path / "raw" / f"r{i}"
        raw.mkdir(parents=True)
        done = {"label_accuracy_first": 0.5, "label_accuracy_last": 0.7 + 0.1 * i}
        (raw / "run_done.json").write_text(json.dumps(done))
        raws.append(raw)
    rep = REP.dynamics_report(dirs, tmp_path / "train.json", tmp_path / "test.json", raw_run_dirs=raws)
    assert rep["label_accuracy_last"] == pytest.approx(0.8)
    assert rep["label_accuracy_last_per_run"] == pytest.approx([0.7, 0.8, 0.9])
    with pytest.raises(DataError, match="accuracies of 2 runs for 3"):
        REP.dynamics_report(dirs, tmp_path / "train.json", raw_run_dirs=raws[:2])
    (raws[1] / "run_done.json").write_text(json.dumps({"seconds": 1.0}))
    with pytest.raises(DataError, match=r"r1/run_done.json: no label_accuracy_first"):
        REP.read_accuracies(raws)
    (raws[1] / "run_done.json").unlink()
    with pytest.raises(DataError, match=r"r1: no run_done.json"):
        REP.read_accuracies(raws)
    assert REP.read_accuracies([]) is None


def test_bad_inputs_named(tmp_path):
    dirs = _runs(tmp_path, n_runs=3, n_train=24, steps=4)
    write_jsonl(tmp_path / "short.json", ({"id": i, "input": "x", "context": ""} for i in range(5)))
    with pytest.raises(DataError, match=r"training id \d+ outside the training file \(5 samples\)"):
        REP.dynamics_report(dirs, tmp_path / "short.json")
    with pytest.raises(DataError, match="groups: 3 entries for 24 training ids"):
        REP.dynamics_report(dirs, tmp_path / "train.json", groups=[0, 1, 0])
    with pytest.raises(DataError, match="at least 3 runs"):
        REP.batch_share(torch.zeros(2, 3, 4), {"ids": torch.zeros(2, 4, 5)})


def test_membership_and_group_counts():
    b = torch.tensor([[[0, 2, -1], [1, 1, 3]]])  # [R=1, T=2, M=3]
    c = REP.membership_counts(b, 4)
    assert c.tolist() == [[[1, 0, 1, 0], [0, 2, 0, 1]]]
    g, names = REP.group_counts(c, ["a", "b", "a", "b"])
    assert names == ["a", "b"] and g.tolist() == [[[2, 0], [0, 3]]]
    assert REP.default_groups([{"id": 0, "input": "q yes", "context": "q", "label": 1}]) == [1]
    assert REP.default_groups([{"id": i, "input": f"long text {i}", "context": ""} for i in range(8)]) is None


@pytest.mark.parametrize("reversion", [0.0, 0.3, 0.8])
def test_deviation_reversion_recovered(reversion):
    """Runs that deviate from a shared curve by an AR(1) process: the report recovers the share undone per step."""
    g = torch.Generator().manual_seed(1)
    R, N, T = 24, 20, 40
    curve = 1.0 + torch.exp(-torch.arange(T) / 10.0)
    e = torch.zeros(R, N, T, dtype=torch.float64)
    e[..., 0] = 0.1 * torch.randn(R, N, generator=g)
    for t in range(1, T):
        e[..., t] = (1 - reversion) * e[..., t - 1] + 0.01 * torch.randn(R, N, generator=g)
    values = curve + e
    mask = torch.ones(R, N, T, dtype=torch.bool)
    rep = REP.deviation_persistence(values, mask)
    assert rep["deviation_reversion"] == pytest.approx(reversion, abs=0.04)
    if reversion == 0.3:
        assert rep["deviation_half_life"] == pytest.approx(np.log(0.5) / np.log(0.7), rel=0.15)
        assert 0.2 < rep["share_reversion"] < 0.9  # the fresh noise is the rest
    if reversion == 0.0:
        assert rep["deviation_half_life"] is None or rep["deviation_half_life"] > 15
        assert rep["share_reversion"] < 0.05
    # a step missing for one run is left out, not read
    values[3, 2, 5] = float("nan")
    mask[3, 2, 5] = False
    assert REP.deviation_persistence(values, mask)["deviation_reversion"] == pytest.approx(reversion, abs=0.04)


def test_deviation_that_never_changes():
    """Runs that differ by constant offsets: nothing is undone, no share to report, and the summary still prints."""
    values = torch.linspace(1.0, 0.5, 10).repeat(3, 4, 1) + torch.tensor([0.0, 0.1, -0.1])[:, None, None]
    rep = REP.deviation_persistence(values, torch.ones(3, 4, 10, dtype=torch.bool))
    assert rep["deviation_reversion"] == 0.0 and rep["deviation_half_life"] is None
    assert rep["share_reversion"] is None
    line = REP.format_report({"metric": "loss", "runs": 3, "test_examples": 4,
                              "steps": {"first": 1, "last": 10, "recorded": 10}, "metric_first": 1.0,
                              "metric_last": 0.5, "frac_improved": 1.0, "final_spread": 0.0,
                              "final_rank_agreement": None, **rep})[-1]
    assert "0.0% of it undone" in line and "never changes" in line
