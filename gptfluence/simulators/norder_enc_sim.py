"""GPTfluence n-th order (norder_enc_sim), with the released concat head.

For each (training example i, test example z') pair:
    x = concat(h_i, h_z')                       [2d]
    u = ReLU(W2 ReLU(W1 x + b1) + b2)           W1: 2d -> 2d, W2: 2d -> 100
    alpha_j = <a_j, u> + c_j (j = 1..n),  beta = <b, u> + c

The first layer splits as W1 x = W1a h_i + W1b h_z', so the [P, N, 2d] hidden table is
a broadcast sum of two small products, not P*N separate forward calls. Missing
history before the first step is zero-padded (see gptfluence.rollout).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import full_batch_size, with_zero_row
from .enc_sim import FeatureSimulator


class NOrderEncSim(FeatureSimulator):
    name = "norder_enc_sim"
    train_defaults = {"lr": 1e-3, "weight_decay": 1e-5, "max_epoch": 40, "train_bs": 256, "warmup_steps": 100,
                      "patience": 8}

    def __init__(self, train_emb, test_emb, order: int = 1, head_hidden: int = 100):
        super().__init__(train_emb, test_emb, order)
        d = self.dim
        self.head_hidden = int(head_hidden)
        self.first_train = nn.Linear(d, 2 * d)              # W1a (and b1)
        self.first_test = nn.Linear(d, 2 * d, bias=False)   # W1b
        self.second = nn.Linear(2 * d, head_hidden)
        self.heads = nn.Linear(head_hidden, order + 1)      # alpha_1..alpha_n, beta

    def config(self) -> dict:
        return {**super().config(), "head_hidden": self.head_hidden}

    @classmethod
    def create(cls, spec, n_train=None, n_test=None, train_emb=None, test_emb=None):
        """The concat head as released; with --concate 0 the dot-product form (an n-th order enc_sim)."""
        if not spec.concat:
            from .enc_sim import EncSim
            return EncSim(train_emb, test_emb, order=spec.order, separate_proj=spec.separate_proj)
        return cls(train_emb, test_emb, order=spec.order)

    def fit_data(self, train) -> None:
        """Start near the identity dynamics: alpha_1 about 1 for a full batch, the other heads about 0."""
        with torch.no_grad():
            self.heads.weight.mul_(0.01)
            self.heads.bias.zero_()
            self.heads.bias[0] = 1.0 / full_batch_size(train)

    def factor_tables(self, test_idx):
        a = self.first_train(self.train_emb)                # [P, 2d]
        b = self.first_test(self.test_emb[test_idx])        # [N, 2d]
        hidden = torch.relu(a[:, None, :] + b[None, :, :])  # [P, N, 2d]
        out = self.heads(torch.relu(self.second(hidden)))   # [P, N, n+1]
        return with_zero_row(out[..., :-1]), with_zero_row(out[..., -1])
