"""Teacher-forced predictions (training) and autoregressive rollout (evaluation).

Conventions (see docs/ARCHITECTURE.md): values [R, N, T] with mask [R, N, T];
batches [R, T, M] with batches[:, t] explaining the change from recorded step t-1 to t;
history before the first recorded step is zero-padded.
"""

from __future__ import annotations

import torch

from .simulators.base import Simulator


def transition_index(mask: torch.Tensor, order: int = 1) -> torch.Tensor:
    """All teacher-forcing samples: (run, test row, t) with t >= 1 where the value at t and
    the `order` previous values that exist (t-j >= 0) are recorded.

    mask: BoolTensor [R, N, T]. Returns LongTensor [K, 3].
    """
    R, N, T = mask.shape
    ok = mask[:, :, 1:].clone()
    for j in range(1, order + 1):
        prev = torch.ones_like(ok)
        prev[:, :, j - 1:] = mask[:, :, : T - j]  # for t-j < 0 the zero padding counts as known
        ok &= prev
    r, n, t = ok.nonzero(as_tuple=True)
    return torch.stack([r, n, t + 1], 1)


def history(values: torch.Tensor, idx: torch.Tensor, order: int) -> torch.Tensor:
    """True previous values of each transition, zero-padded: [K, order] (column j-1 = phi_{t-j})."""
    r, n, t = idx.unbind(1)
    cols = []
    for j in range(1, order + 1):
        tj = t - j
        v = values[r, n, tj.clamp(min=0)]
        cols.append(torch.where(tj >= 0, v, torch.zeros_like(v)))
    return torch.stack(cols, 1)


def teacher_forced(sim: Simulator, values: torch.Tensor, batches: torch.Tensor, test_rows: torch.Tensor,
                   idx: torch.Tensor) -> torch.Tensor:
    """One-step predictions for transitions idx [K, 3] given the true history.

    values [R, N, T]; batches [R, T, M]; test_rows [N] simulator rows of the N test examples.
    Returns [K] predicted values at step t.
    """
    r, n, t = idx.unbind(1)
    alpha, beta = sim.transition_factors(batches[r, t], test_rows[n])
    return (alpha * history(values, idx, sim.order)).sum(-1) + beta


def rollout_from_factors(alpha: torch.Tensor, beta: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
    """Run the recurrence phi_t = sum_j alpha_j[t] phi_{t-j} + beta[t] for t = 1..T-1.

    alpha [R, T, N, n], beta [R, T, N], init [R, N] (the true first value).
    Returns predictions [R, N, T] with pred[..., 0] = init.
    """
    R, T, N, order = alpha.shape
    preds = [init]
    for t in range(1, T):
        nxt = beta[:, t].clone()
        for j in range(1, order + 1):
            if t - j >= 0:
                nxt = nxt + alpha[:, t, :, j - 1] * preds[t - j]
        preds.append(nxt)
    return torch.stack(preds, -1)


@torch.no_grad()
def rollout(sim: Simulator, batches: torch.Tensor, init: torch.Tensor, test_rows: torch.Tensor) -> torch.Tensor:
    """Autoregressive rollout along each run's real curriculum.

    batches [R, T, M]; init [R, N] true values at the first recorded step; test_rows [N].
    Returns predictions [R, N, T] (float32; may hold inf/NaN if the simulator diverges:
    see gptfluence.metrics.evaluate, which counts such trajectories).
    """
    alpha, beta = sim.step_factors(batches, test_rows)
    return rollout_from_factors(alpha, beta, init)
