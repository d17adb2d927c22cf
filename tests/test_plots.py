"""gptfluence/plots.py: every figure kind writes a PNG atomically (no temporary file left)."""

import numpy as np

from gptfluence import plots


def test_every_plotter_writes_a_png(tmp_path):
    steps = [1, 2, 3]
    plots.plot_trajectories(tmp_path / "a.png", steps, [{"title": "x", "gt": [1.0, None, 0.5],
                                                         "pred": {"m": [1.0, 0.8, 0.6]}}])
    plots.plot_gt_curves(tmp_path / "b.png", steps, np.ones((2, 3, 3)), [0, 1, 2], "loss")
    plots.plot_bars(tmp_path / "c.png", ["rte", "sst2"], {"m": [0.1, float("nan")]}, "mse", "t")
    plots.plot_scatter(tmp_path / "d.png", {"m": [(0.1, 0.2, "helpful"), (-0.1, 0.0, "random")]}, "x", "y", "t")
    plots.plot_lines(tmp_path / "e.png", [0, 1], {"found": {"m": [0, 1]}, "acc": {"m": [0.5, 0.6]}}, "fraction")
    for name in "abcde":
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert not list(tmp_path.glob("*.tmp*"))


def test_predictions_recorded_at_other_steps_keep_their_steps(tmp_path):
    """A simulator trained on every k-th step predicts fewer points than the truth has: drawn at its own steps
    (the checkpoint-interval figure), never a shape error."""
    from gptfluence.plots import plot_trajectories
    curves = [{"title": "id 0", "gt": [1.0, 0.9, None, 0.7], "pred": {"k=1": [1.0, 0.8, 0.8, 0.7],
                                                                     "k=2": ([2, 4], [0.85, 0.72])}}]
    plot_trajectories(tmp_path / "t.png", [1, 2, 3, 4], curves)
    assert (tmp_path / "t.png").stat().st_size > 1000
