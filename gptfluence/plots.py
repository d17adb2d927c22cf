"""Trajectory plots (PNG, matplotlib Agg): true and predicted curves side by side."""

from __future__ import annotations

import math
import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_trajectories(path: str | os.PathLike, steps: Sequence[int], curves: Sequence[dict], metric: str = "loss",
                      ncols: int = 3) -> None:
    """One panel per test example.

    curves: dicts {"title": str, "gt": [T] (None for missing), "pred": {label: [T]}}; pred may be empty.
    """
    n = len(curves)
    if n == 0:
        raise ValueError("nothing to plot")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, c in zip(axes.flat, curves):
        gt = [float("nan") if v is None else v for v in c.get("gt", [])]
        if gt:
            ax.plot(steps, gt, color="black", lw=1.6, label="true")
        for label, pred in c.get("pred", {}).items():
            ax.plot(steps, pred, lw=1.2, ls="--", label=label)
        ax.set_title(c["title"], fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> None:
    """tight_layout, write the PNG atomically (temporary file, then rename), close the figure."""
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
