"""Rollout and teacher forcing (gptfluence/rollout.py) against plain loops."""

import pytest
import torch
from sims import make_sims

from gptfluence.rollout import history, rollout, rollout_from_factors, teacher_forced, transition_index


@pytest.mark.parametrize("order", [1, 2])
def test_step_factors_equal_transition_factors(order):
    batches = torch.tensor([[[0, 1, 2], [3, 4, -1], [6, 6, 5]], [[1, 2, 3], [0, 5, 6], [2, -1, -1]]])  # [2, 3, 3]
    test_rows = torch.tensor([4, 0, 3])
    for sim in make_sims(order=order):
        alpha, beta = sim.step_factors(batches, test_rows)  # [R, T, N, n], [R, T, N]
        for r in range(2):
            for t in range(3):
                a, b = sim.transition_factors(batches[r, t].expand(3, -1), test_rows)
                assert torch.allclose(alpha[r, t], a, atol=1e-5), sim.name
                assert torch.allclose(beta[r, t], b, atol=1e-5), sim.name

def test_rollout_matches_a_plain_loop_and_teacher_forcing():
    sim = make_sims(order=2)[1]
    R, N, T = 2, 5, 6
    gen = torch.Generator().manual_seed(1)
    batches = torch.randint(0, 7, (R, T, 3), generator=gen)
    init = torch.rand(R, N, generator=gen) + 1
    test_rows = torch.arange(N)
    pred = rollout(sim, batches, init, test_rows)
    with torch.no_grad():
        for r in range(R):
            for n in range(N):
                phi = [init[r, n]]
                for t in range(1, T):
                    a, b = sim.transition_factors(batches[r, t][None], test_rows[n:n + 1])
                    prev = torch.stack([phi[t - 1], phi[t - 2] if t >= 2 else torch.tensor(0.0)])
                    phi.append((a[0] * prev).sum() + b[0])
                assert torch.allclose(pred[r, n], torch.stack(phi), atol=1e-4)
        # teacher forcing on the rollout's own values reproduces it exactly
        idx = transition_index(torch.ones(R, N, T, dtype=torch.bool), 2)
        tf = teacher_forced(sim, pred, batches, test_rows, idx)
        assert torch.allclose(tf, pred[idx[:, 0], idx[:, 1], idx[:, 2]], atol=1e-4)

def test_transition_index_respects_gaps_and_order():
    mask = torch.ones(1, 1, 5, dtype=torch.bool)
    mask[0, 0, 2] = False
    idx = transition_index(mask, 1)
    assert idx[:, 2].tolist() == [1, 4]  # t=2 missing, t=3 has no known previous value
    idx2 = transition_index(mask, 2)
    assert idx2[:, 2].tolist() == [1]    # t=4 needs t=2 too
    h = history(torch.arange(5.0).view(1, 1, 5), torch.tensor([[0, 0, 1]]), 3)
    assert h.tolist() == [[0.0, 0.0, 0.0]] and history(torch.arange(5.0).view(1, 1, 5),
                                                       torch.tensor([[0, 0, 3]]), 3).tolist() == [[2.0, 1.0, 0.0]]

def test_rollout_from_factors_identity_and_decay():
    alpha = torch.full((1, 4, 2, 1), 0.5)
    beta = torch.ones(1, 4, 2)
    out = rollout_from_factors(alpha, beta, torch.tensor([[4.0, 0.0]]))
    assert out[0, 0].tolist() == [4.0, 3.0, 2.5, 2.25] and out[0, 1].tolist() == [0.0, 1.0, 1.5, 1.75]
