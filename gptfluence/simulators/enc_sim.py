"""GPTfluence (enc_sim): factors are dot products of features of frozen text embeddings.

    A_{i,j}(z') = < f_j(h_i), g_j(h_z') >      B_i(z') = < f'(h_i), g'(h_z') >

h = frozen encoder embedding [d] (default all-MiniLM-L6-v2, CLS pooling, d = 384).
As released, f_j = g_j is one 2-layer MLP per factor (Linear d->d, ReLU, Linear d->d)
shared by the training and the test side; `separate_proj=True` gives the training and
test sides their own MLPs, as in the paper's equations. With order n > 1 this is the
dot-product form of the n-th order simulator (one MLP per alpha_j).

A whole factor table [P, N] is one matrix product of the two feature matrices.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Simulator, full_batch_size, with_zero_row


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def _shrink(layer: nn.Linear, c: float, scale: float = 0.1) -> None:
    """Shrink a last layer's weights and set its bias to c along the first output unit."""
    layer.weight.mul_(scale)
    layer.bias.zero_()
    layer.bias[0] = c


class FeatureSimulator(Simulator):
    """Base for simulators whose factors come from frozen embeddings of the examples.

    Holds train_emb [P, d] and test_emb [N_test, d] as buffers; `set_examples` swaps in
    embeddings of other (unseen) examples.
    """

    uses_features = True
    handles_unseen_ids = True

    def __init__(self, train_emb: torch.Tensor, test_emb: torch.Tensor, order: int = 1):
        super().__init__(train_emb.shape[0], test_emb.shape[0], order)
        if train_emb.shape[1] != test_emb.shape[1]:
            raise ValueError(f"train and test embeddings differ in width: {train_emb.shape[1]} vs {test_emb.shape[1]}")
        self.dim = int(train_emb.shape[1])
        self.register_buffer("train_emb", train_emb.float().clone())
        self.register_buffer("test_emb", test_emb.float().clone())

    def set_examples(self, train_emb: torch.Tensor | None = None, test_emb: torch.Tensor | None = None):
        """Use other training and/or test examples (embeddings [P', d], [N', d])."""
        for name, emb in (("train_emb", train_emb), ("test_emb", test_emb)):
            if emb is None:
                continue
            if emb.shape[1] != self.dim:
                raise ValueError(f"{name}: expected width {self.dim}, got {emb.shape[1]}")
            setattr(self, name, emb.float().to(self.device))
        self.n_train, self.n_test = self.train_emb.shape[0], self.test_emb.shape[0]

    def config(self) -> dict:
        return {"order": self.order, "dim": self.dim}

    @classmethod
    def from_config(cls, config: dict, state_dict: dict | None = None) -> "FeatureSimulator":
        """Placeholders of the saved embeddings' shapes (load_state_dict fills them)."""
        cfg = dict(config)
        dim = cfg.pop("dim")
        if state_dict is not None:
            n_tr, n_te = state_dict["train_emb"].shape[0], state_dict["test_emb"].shape[0]
        else:
            n_tr, n_te = cfg.pop("n_train", 1), cfg.pop("n_test", 1)
        cfg.pop("n_train", None)
        cfg.pop("n_test", None)
        return cls(torch.zeros(n_tr, dim), torch.zeros(n_te, dim), **cfg)


class EncSim(FeatureSimulator):
    name = "enc_sim"
    train_defaults = {"lr": 1e-3, "weight_decay": 1e-5, "max_epoch": 40, "train_bs": 256, "warmup_steps": 100,
                      "patience": 8}

    def __init__(self, train_emb, test_emb, order: int = 1, separate_proj: bool = False, hidden: int | None = None):
        super().__init__(train_emb, test_emb, order)
        d, h = self.dim, int(hidden or self.dim)
        self.separate_proj, self.hidden = bool(separate_proj), h
        self.alpha_f = nn.ModuleList(mlp(d, h, d) for _ in range(order))
        self.beta_f = mlp(d, h, d)
        if separate_proj:
            self.alpha_g = nn.ModuleList(mlp(d, h, d) for _ in range(order))
            self.beta_g = mlp(d, h, d)
        else:
            self.alpha_g, self.beta_g = self.alpha_f, self.beta_f

    def config(self) -> dict:
        return {**super().config(), "separate_proj": self.separate_proj, "hidden": self.hidden}

    def fit_data(self, train) -> None:
        """Start near the identity dynamics: the last layers of the MLPs shrunk and biased so that
        alpha_1 = sum_i <f_1(h_i), g_1(h_z)> is about 1 for a full batch, the other alphas and beta about 0."""
        c = (1.0 / full_batch_size(train)) ** 0.5
        with torch.no_grad():
            for j, (f, g) in enumerate(zip(self.alpha_f, self.alpha_g)):
                for net in {id(f): f, id(g): g}.values():
                    _shrink(net[-1], c if j == 0 else 0.0)
            for net in {id(self.beta_f): self.beta_f, id(self.beta_g): self.beta_g}.values():
                _shrink(net[-1], 0.0)

    @classmethod
    def create(cls, spec, n_train=None, n_test=None, train_emb=None, test_emb=None):
        return cls(train_emb, test_emb, order=spec.order, separate_proj=spec.separate_proj)

    def factor_tables(self, test_idx):
        h_tr, h_te = self.train_emb, self.test_emb[test_idx]
        A = torch.stack([f(h_tr) @ g(h_te).T for f, g in zip(self.alpha_f, self.alpha_g)], -1)  # [P, N, n]
        B = self.beta_f(h_tr) @ self.beta_g(h_te).T                                              # [P, N]
        return with_zero_row(A), with_zero_row(B)


class GPTSim(EncSim):
    """gpt_sim: the enc_sim factors on features from a causal LM (last-token hidden state)."""

    name = "gpt_sim"
