"""Simulators, rollout and metrics on small hand-made tensors."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from gptfluence.checkpoint import check_compatible
from gptfluence.io import DataError
from gptfluence.metrics import evaluate, spearman, trajectory_errors
from gptfluence.rollout import history, rollout, rollout_from_factors, teacher_forced, transition_index
from gptfluence.simulators import SIMULATORS, batch_counts, make_simulator, simulator_class
from gptfluence.training import Dynamics


def make_sims(P=7, N=5, d=8, order=1):
    torch.manual_seed(0)
    tr, te = torch.randn(P, d), torch.randn(N, d)
    sims = [make_simulator("original", {"n_train": P, "n_test": N, "order": order, "batch_size": 3}),
            make_simulator("enc_sim", {"order": order}, tr, te),
            make_simulator("enc_sim", {"order": order, "separate_proj": True}, tr, te),
            make_simulator("gpt_sim", {"order": order}, tr, te),
            make_simulator("norder_enc_sim", {"order": order}, tr, te)]
    for s in sims:  # move Simfluence away from its identity start
        if s.name == "original":
            with torch.no_grad():
                s.A.add_(0.05 * torch.randn_like(s.A))
                s.B.add_(0.05 * torch.randn_like(s.B))
    return sims


def test_registry_names_and_unknown():
    assert set(SIMULATORS) == {"original", "vec_sim", "enc_sim", "norder_enc_sim", "gpt_sim", "no_change",
                               "mean_trajectory", "anchor_sim"}
    with pytest.raises(ValueError, match="known: original"):
        simulator_class("simfluence")


@pytest.mark.parametrize("order", [1, 3])
def test_factor_tables_shapes_and_zero_row(order):
    for sim in make_sims(order=order):
        A, B = sim.factor_tables(torch.tensor([0, 2, 4]))
        assert A.shape == (8, 3, order) and B.shape == (8, 3)
        assert torch.all(A[-1] == 0) and torch.all(B[-1] == 0)


def test_enc_sim_factor_is_dot_product_of_mlp_features():
    sim = make_sims()[1]
    A, B = sim.factor_tables(torch.arange(5))
    f = sim.alpha_f[0]
    want = (f(sim.train_emb[3]) * f(sim.test_emb[2])).sum()
    assert torch.allclose(A[3, 2, 0], want, atol=1e-6)
    want_b = (sim.beta_f(sim.train_emb[1]) * sim.beta_f(sim.test_emb[4])).sum()
    assert torch.allclose(B[1, 4], want_b, atol=1e-6)


def test_norder_concat_head_matches_per_pair_forward():
    sim = make_sims(order=2)[4]
    A, B = sim.factor_tables(torch.arange(5))
    x = torch.cat([sim.train_emb[6], sim.test_emb[1]])
    W = torch.cat([sim.first_train.weight, sim.first_test.weight], 1)
    u = torch.relu(sim.second(torch.relu(W @ x + sim.first_train.bias)))
    out = sim.heads(u)
    assert torch.allclose(A[6, 1], out[:2], atol=1e-5) and torch.allclose(B[6, 1], out[2], atol=1e-5)


def test_batch_counts_counts_duplicates_and_ignores_padding():
    c = batch_counts(torch.tensor([[0, 0, 2, -1], [1, -1, -1, -1]]), 3)
    assert c.tolist() == [[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


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


def test_metrics_match_hand_computation():
    true = torch.tensor([[[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0], [0.0, 1.0, 5.0]]])
    pred = true.clone()
    pred[0, 0, 1] += 1.0     # error 1 at step 2
    pred[1, 1, 2] -= 2.0     # error -2 at step 3
    pred[1, 0, 0] += 100.0   # the first step never counts
    mask = torch.ones_like(true, dtype=torch.bool)
    m = evaluate(pred, true, mask)
    mses = np.array([0.5, 0.0, 0.0, 2.0])
    maes = np.array([0.5, 0.0, 0.0, 1.0])
    assert math.isclose(m["all_steps_mse_mean"], mses.mean()) and math.isclose(m["all_steps_mse_std"], mses.std())
    assert math.isclose(m["all_steps_mae_mean"], maes.mean()) and math.isclose(m["all_steps_mae_std"], maes.std())
    assert m["final_step_spearman_per_run"] == pytest.approx([1.0, 1.0]) and m["num_scored_trajectories"] == 4
    mse, _, cnt = trajectory_errors(pred, true, mask)
    assert cnt.tolist() == [[2, 2], [2, 2]]


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 30).astype(float), rng.random(30)
    assert math.isclose(spearman(x, y), spearmanr(x, y).statistic, rel_tol=1e-12)


def test_diverged_trajectories_are_counted_not_averaged():
    true = torch.ones(1, 3, 4)
    pred = torch.ones(1, 3, 4)
    pred[0, 1, 3] = float("inf")
    pred[0, 2, 2] = 1e9
    m = evaluate(pred, true, torch.ones_like(true, dtype=torch.bool))
    assert m["diverged_trajectories"] == 2 and m["num_scored_trajectories"] == 1
    assert m["all_steps_mse_mean"] == 0.0 and math.isfinite(m["all_steps_mse_mean"])


def test_dynamics_every_merges_batches():
    T = 7
    batches = torch.arange(T * 2).view(1, T, 2)
    d = Dynamics(torch.arange(T, dtype=torch.float).view(1, 1, T), torch.ones(1, 1, T, dtype=torch.bool), batches,
                 torch.tensor([0]), torch.arange(1, T + 1))
    e = d.every(3)
    assert e.steps.tolist() == [1, 4, 7]
    assert e.batches[0, 1].tolist() == [2, 3, 4, 5, 6, 7] and e.batches[0, 2].tolist() == [8, 9, 10, 11, 12, 13]
    assert e.values[0, 0].tolist() == [0.0, 3.0, 6.0]
    assert d.up_to(3).steps.tolist() == [1, 2, 3]


def test_check_compatible_names_the_setting():
    ckpt = {"path": "x.pt", "spec": {"sim_name": "enc_sim", "encoder": "all-MiniLM-L6-v2"}, "n_train": 200}
    check_compatible(ckpt, sim_name="enc_sim", n_train=200, metric=None)
    with pytest.raises(DataError, match="sim_name: checkpoint has 'enc_sim', asked for 'original'"):
        check_compatible(ckpt, sim_name="original")
    with pytest.raises(DataError, match="n_train: checkpoint has 200, asked for 100"):
        check_compatible(ckpt, n_train=100)
