"""Simulators (gptfluence/simulators): the registry, factor forms, batch counts, the baselines."""

import pytest
import torch
from sims import make_sims

from gptfluence.simulators import SIMULATORS, batch_counts, simulator_class


def test_registry_names_and_unknown():
    assert set(SIMULATORS) == {"original", "vec_sim", "enc_sim", "norder_enc_sim", "gpt_sim", "no_change",
                               "mean_trajectory", "anchor_sim", "anchor_lex_sim"}
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
