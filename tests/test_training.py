"""Dynamics views and training (gptfluence/training.py)."""



import torch

from gptfluence.training import Dynamics


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
