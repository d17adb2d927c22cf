"""Evaluation metrics, exactly as defined in the paper (docs/method.md, section 3).

- all-steps MSE / MAE of a trajectory: mean over steps 2..T (recorded index t >= 1) of the
  squared / absolute error; mean and std (ddof = 0) over all (run, test example) trajectories.
- final-step Spearman: per held-out run, Spearman's rho over test examples between true and
  predicted values at the last step; mean and std over runs.

Trajectories whose prediction is not finite or exceeds `diverge_bound` in absolute value
are counted as diverged and left out of every mean (never averaged into inf or NaN).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import spearmanr


def trajectory_errors(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor):
    """Per-trajectory all-steps MSE and MAE over recorded steps t >= 1.

    pred, true [R, N, T]; mask [R, N, T]. Returns (mse [R, N], mae [R, N], count [R, N]);
    entries with no recorded step t >= 1 are NaN.
    """
    m = mask[..., 1:].to(pred.dtype)
    err = torch.where(mask[..., 1:], pred[..., 1:] - true[..., 1:], torch.zeros_like(pred[..., 1:]))
    cnt = m.sum(-1)
    denom = cnt.clamp(min=1)
    mse = (err ** 2).sum(-1) / denom
    mae = err.abs().sum(-1) / denom
    nan = torch.full_like(mse, float("nan"))
    return torch.where(cnt > 0, mse, nan), torch.where(cnt > 0, mae, nan), cnt


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two 1-d arrays (scipy.stats.spearmanr, average ranks for ties); NaN if either is
    constant or shorter than 2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(spearmanr(x, y).statistic)


def diverged(pred: torch.Tensor, mask: torch.Tensor, bound: float) -> torch.Tensor:
    """BoolTensor [R, N]: trajectories with a non-finite or out-of-bound prediction at a recorded step."""
    bad = ~torch.isfinite(pred) | (pred.abs() > bound)
    return (bad & mask).any(-1)


def metric_range(metric: str | None) -> tuple[float, float] | None:
    """The physically valid range of a metric: loss >= 0, BLEU in [0, 100], ROUGE in [0, 1]; None if unknown."""
    m = (metric or "").lower()
    if m in ("loss", "nll") or m.endswith("loss"):
        return 0.0, math.inf
    if m.startswith("bleu"):
        return 0.0, 100.0
    if m.startswith("rouge"):
        return 0.0, 1.0
    return None


def invalid(pred: torch.Tensor, mask: torch.Tensor, metric: str | None) -> torch.Tensor:
    """BoolTensor [R, N, T]: finite predictions at recorded steps t >= 1 outside the metric's valid range."""
    bad = torch.zeros_like(mask)
    rng = metric_range(metric)
    if rng is None:
        return bad
    lo, hi = rng
    p = pred[..., 1:]
    bad[..., 1:] = mask[..., 1:] & torch.isfinite(p) & ((p < lo) | (p > hi))
    return bad


def _mean_std(x: np.ndarray) -> tuple[float | None, float | None]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None, None
    return float(x.mean()), float(x.std())


def evaluate(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor, diverge_bound: float = 1e4,
             metric: str | None = None) -> dict:
    """All metrics of a set of rolled-out runs, as written to metrics.json.

    pred, true [R, N, T]; mask [R, N, T]. diverge_bound: |prediction| above it counts as
    diverged (the default suits loss, BLEU 0-100 and ROUGE 0-1 alike). metric: the metric's name, to
    count predictions outside its valid range (invalid_predictions, invalid_trajectories; they stay in
    the means: they are what the simulator predicted).
    """
    R, N, T = true.shape
    div = diverged(pred, mask, diverge_bound)
    mse, mae, cnt = trajectory_errors(torch.nan_to_num(pred), true, mask)
    keep = (~div) & (cnt > 0)
    out = {}
    out["all_steps_mse_mean"], out["all_steps_mse_std"] = _mean_std(mse[keep].double().numpy())
    out["all_steps_mae_mean"], out["all_steps_mae_std"] = _mean_std(mae[keep].double().numpy())
    rhos = []
    for r in range(R):
        ok = (mask[r, :, -1] & ~div[r]).numpy()
        rhos.append(spearman(true[r, ok, -1].double().numpy(), pred[r, ok, -1].double().numpy()))
    rhos = np.array(rhos, dtype=float)
    out["final_step_spearman_mean"], out["final_step_spearman_std"] = _mean_std(rhos)
    out["final_step_spearman_per_run"] = [None if not np.isfinite(v) else float(v) for v in rhos]
    out.update(num_runs=R, num_test_examples=N, num_steps=T, num_trajectories=int(R * N),
               num_scored_trajectories=int(keep.sum()), diverged_trajectories=int(div.sum()),
               diverge_bound=float(diverge_bound), undefined_spearman_runs=int((~np.isfinite(rhos)).sum()))
    bad = invalid(pred, mask, metric) & ~div[..., None]
    rng = metric_range(metric)
    out.update(invalid_predictions=int(bad.sum()), invalid_trajectories=int(bad.any(-1).sum()),
               valid_range=None if rng is None else [rng[0], None if math.isinf(rng[1]) else rng[1]])
    return out


def format_summary(m: dict, metric: str = "loss") -> str:
    """One readable paragraph of an evaluate() result."""
    def f(v):
        return "n/a" if v is None else f"{v:.4f}"
    lines = [f"{metric}: all-steps MSE {f(m['all_steps_mse_mean'])} ({f(m['all_steps_mse_std'])}), "
             f"MAE {f(m['all_steps_mae_mean'])} ({f(m['all_steps_mae_std'])}), "
             f"final-step Spearman {f(m['final_step_spearman_mean'])} ({f(m['final_step_spearman_std'])})",
             f"  {m['num_runs']} runs x {m['num_test_examples']} test examples x {m['num_steps']} steps; "
             f"{m['num_scored_trajectories']} trajectories scored"]
    if m.get("invalid_predictions"):
        lo, hi = m["valid_range"]
        lines.append(f"  WARNING: {m['invalid_predictions']} predicted values in {m['invalid_trajectories']} "
                     f"trajectories lie outside the valid range [{lo}, {'inf' if hi is None else hi}] of the {metric}")
    if m["diverged_trajectories"]:
        lines.append(f"  WARNING: {m['diverged_trajectories']} trajectories diverged (|pred| > {m['diverge_bound']:g} "
                     "or not finite) and are left out of the means")
    return "\n".join(lines)
