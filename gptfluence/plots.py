"""Figures (PNG, matplotlib Agg), one function per kind, each written atomically:

    plot_trajectories      true vs predicted curves, one panel per test example (test.py, comparisons, what-if)
    plot_run_predictions   the same from tensors of one run (test.py)
    plot_gt_curves         recorded curves of many runs, one panel per test example (draw_gt_curves.py)
    plot_bars              grouped bars (experiment summaries)
    plot_scatter           predicted vs actual values, one colour per method (influence check)
    plot_lines             y against x, one line per method, one panel per quantity (mislabelled data)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> None:
    """tight_layout, write the PNG atomically (temporary file, then rename), close the figure."""
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)


def _grid(n: int, ncols: int, w: float = 4.2, h: float = 3.0):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def plot_trajectories(path: str | os.PathLike, steps: Sequence[int], curves: Sequence[dict], metric: str = "loss",
                      ncols: int = 3) -> None:
    """One panel per test example.

    curves: dicts {"title": str, "gt": [T] (None for missing), "pred": {label: [T] or (steps, values)}}; pred
    may be empty; a curve may carry its own "steps" (else `steps`), a prediction its own (steps, values).
    """
    if not curves:
        raise ValueError("nothing to plot")
    fig, axes = _grid(len(curves), ncols)
    for ax, c in zip(axes, curves):
        xs = c.get("steps", steps)
        gt = [float("nan") if v is None else v for v in c.get("gt") or []]
        if gt:
            ax.plot(xs, gt, color="black", lw=1.6, label="true")
        for label, pred in c.get("pred", {}).items():
            px, py = pred if isinstance(pred, tuple) else (xs, pred)
            ax.plot(px, [float("nan") if v is None else v for v in py], lw=1.2, ls="--", label=label)
        ax.set_title(c["title"], fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_run_predictions(path, run_name: str, steps: Sequence[int], test_ids: Sequence[int], true, mask,
                         preds: Mapping[str, object], metric: str, k: int = 6) -> None:
    """plot_trajectories for the first k test examples of one run: true [N, T], mask [N, T], preds {label: [N, T]}."""
    k = min(k, len(test_ids))
    curves = [{"title": f"{Path(str(run_name)).name[-24:]} id {int(test_ids[n])}",
               "gt": [float(v) if ok else None for v, ok in zip(true[n].tolist(), mask[n].tolist())],
               "pred": {lab: p[n].tolist() for lab, p in preds.items()}} for n in range(k)]
    plot_trajectories(path, list(steps), curves, metric)


def plot_gt_curves(path, steps: Sequence[int], values, test_ids: Sequence[int], metric: str, ncols: int = 4,
                   title: str = "") -> None:
    """Recorded curves: values [R, N, T] (NaN where not recorded), one panel per test example, one line per run."""
    R, N, _ = values.shape
    fig, axes = _grid(N, ncols, 3.6, 2.8)
    for k, ax in enumerate(axes):
        for r in range(R):
            ax.plot(steps, values[r, k], lw=0.9, alpha=0.8)
        ax.set_title(f"test id {int(test_ids[k])}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title or f"true {metric} trajectories ({R} runs)", fontsize=10)
    save_figure(fig, path)


def plot_bars(path, groups: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str, title: str) -> None:
    """Grouped bars: series = {label: [value per group]} (None / NaN = no bar, marked 'n/a')."""
    n = max(len(series), 1)
    w = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(groups) * n * 0.6 + 2), 3.4))
    for i, (label, vals) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * w for g in range(len(groups))]
        ok = [v is not None and math.isfinite(v) for v in vals]
        ax.bar(xs, [v if good else 0.0 for v, good in zip(vals, ok)], w, label=label)
        for x, good in zip(xs, ok):
            if not good:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_scatter(path, points: Mapping[str, Sequence[tuple[float, float, str]]], xlabel: str, ylabel: str,
                 title: str, markers: Mapping[str, str] | None = None) -> None:
    """Predicted (x) vs actual (y): points = {method: [(x, y, kind), ...]}; kind picks the marker
    (markers = {kind: matplotlib marker}); the diagonal y = x is drawn."""
    markers = markers or {}
    fig, ax = plt.subplots(figsize=(6, 5))
    lim = 1e-9
    for method, pts in points.items():
        colour = None
        for kind in dict.fromkeys(k for _, _, k in pts):
            sel = [(x, y) for x, y, k in pts if k == kind]
            xs, ys = zip(*sel)
            h = ax.scatter(xs, ys, s=18, marker=markers.get(kind, "o"), alpha=0.7, color=colour,
                           label=method if colour is None else None)
            colour = h.get_facecolor()[0]
            lim = max(lim, max(abs(v) for v in xs + ys))
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=120)


def plot_lines(path, x: Sequence[float], panels: Mapping[str, Mapping[str, Sequence[float]]], xlabel: str) -> None:
    """One panel per quantity: panels = {ylabel: {method: [y per x]}}."""
    fig, axes = _grid(len(panels), len(panels), 4.6, 4.0)
    for ax, (ylabel, lines) in zip(axes, panels.items()):
        for method, ys in lines.items():
            ax.plot(x, ys, "o-", ms=4, label=method)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=120)
