"""Simfluence-linear (Guu et al., 2023): free factors per (training, test) example pair.

A_i(z') and B_i(z') are free parameters, one per pair, with an L2 penalty
lambda * (||A||^2 + ||B||^2) (lambda = --hyper_parameter). There are no text
features, so nothing can be said about examples it never saw in training.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Simulator, full_batch_size, with_zero_row


class Simfluence(Simulator):
    name = "original"
    uses_features = False
    train_defaults = {"lr": 1e-2, "weight_decay": 0.0, "max_epoch": 40, "train_bs": 256, "warmup_steps": 100,
                      "patience": 8}

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

    @classmethod
    def create(cls, spec, n_train=None, n_test=None, train_emb=None, test_emb=None):
        return cls(n_train, n_test, order=spec.order, l2=spec.l2)

    def fit_data(self, train) -> None:
        """Start at the identity dynamics for the runs' batch size (alpha_1 = 1, beta = 0 for a full batch)."""
        size = full_batch_size(train)
        self.batch_size = size
        with torch.no_grad():
            self.A.zero_()
            self.A[:, :, 0] = 1.0 / size

    def factor_tables(self, test_idx):
        return with_zero_row(self.A[:, test_idx]), with_zero_row(self.B[:, test_idx])

    def regularization(self):
        return self.l2 * (self.A.pow(2).sum() + self.B.pow(2).sum())
