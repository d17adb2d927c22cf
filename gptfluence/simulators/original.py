"""Simfluence-linear (Guu et al., 2023): free factors per (training, test) example pair.

A_i(z') and B_i(z') are free parameters, one per pair, with an L2 penalty
lambda * (||A||^2 + ||B||^2) (lambda = --hyper_parameter). There are no text
features, so nothing can be said about examples it never saw in training.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Simulator, with_zero_row


class Simfluence(Simulator):
    name = "original"
    uses_features = False

    def __init__(self, n_train: int, n_test: int, order: int = 1, l2: float = 1e-5, batch_size: int = 4):
        super().__init__(n_train, n_test, order)
        self.l2, self.batch_size = float(l2), int(batch_size)
        # Start at the identity dynamics: a batch of `batch_size` gives alpha_1 = 1, beta = 0.
        A = torch.zeros(n_train, n_test, order)
        A[:, :, 0] = 1.0 / batch_size
        self.A = nn.Parameter(A)
        self.B = nn.Parameter(torch.zeros(n_train, n_test))

    def config(self) -> dict:
        return {**super().config(), "l2": self.l2, "batch_size": self.batch_size}

    def factor_tables(self, test_idx):
        return with_zero_row(self.A[:, test_idx]), with_zero_row(self.B[:, test_idx])

    def regularization(self):
        return self.l2 * (self.A.pow(2).sum() + self.B.pow(2).sum())
