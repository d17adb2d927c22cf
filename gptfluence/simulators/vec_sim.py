"""vec_sim: Simfluence with a learned vector per (training, test) example pair read out by a small MLP
(a variant in the released code).

    [A_i(z'), B_i(z')] = MLP(v_{i,z'})      v_{i,z'} in R^emb_dim (free parameters, default emb_dim 2)
    MLP: Linear(emb_dim, hidden) -> ReLU -> Linear(hidden, 2)

Like Simfluence it has no text features, so it says nothing about examples it never trained on. It starts at
the identity dynamics (A = 1 / batch size, B = 0) and its pair vectors carry an L2 penalty (--hyper_parameter).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Simulator, full_batch_size, with_zero_row


class VecSim(Simulator):
    name = "vec_sim"
    train_defaults = {"lr": 1e-2, "weight_decay": 0.0, "max_epoch": 40, "train_bs": 256, "warmup_steps": 100,
                      "patience": 8}

    def __init__(self, n_train: int, n_test: int, order: int = 1, emb_dim: int = 2, hidden: int = 16,
                 l2: float = 1e-5, batch_size: int = 4):
        super().__init__(n_train, n_test, 1)
        self.emb_dim, self.hidden, self.l2, self.batch_size = int(emb_dim), int(hidden), float(l2), int(batch_size)
        self.v = nn.Parameter(0.01 * torch.randn(n_train, n_test, emb_dim))
        self.head = nn.Sequential(nn.Linear(emb_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    @classmethod
    def create(cls, spec, n_train=None, n_test=None, train_emb=None, test_emb=None):
        return cls(n_train, n_test, l2=spec.l2)

    def config(self) -> dict:
        return {"n_train": self.n_train, "n_test": self.n_test, "emb_dim": self.emb_dim, "hidden": self.hidden,
                "l2": self.l2, "batch_size": self.batch_size}

    def fit_data(self, train) -> None:
        """Start at the identity dynamics for the runs' batch size."""
        self.batch_size = full_batch_size(train)
        with torch.no_grad():
            self.head[-1].weight.mul_(0.01)
            self.head[-1].bias.copy_(torch.tensor([1.0 / self.batch_size, 0.0]))

    def factor_tables(self, test_idx):
        out = self.head(self.v[:, test_idx])                         # [P, N, 2]
        return with_zero_row(out[..., :1]), with_zero_row(out[..., 1])

    def regularization(self):
        return self.l2 * self.v.pow(2).sum()
