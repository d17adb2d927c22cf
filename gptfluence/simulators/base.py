"""The simulator interface shared by every method.

A simulator predicts a test metric after step t from the batch of step t and the
metric's last n values (n = `order`):

    phi_t(z') = sum_{j=1..n} alpha_j(c_t, z') * phi_{t-j}(z') + beta(c_t, z')
    alpha_j(c_t, z') = sum_{i in c_t} A_{i,j}(z')        beta(c_t, z') = sum_{i in c_t} B_i(z')

Each simulator only has to produce its factor tables A [P+1, N, n] and B [P+1, N]
for P training examples and N test examples (row P is the zero row that padding
ids, -1, point to). Everything else (training, rollout, influence) works on those
tables with matrix products, for all runs, steps and test examples at once.
"""

from __future__ import annotations

import torch
from torch import nn


class Simulator(nn.Module):
    """Base class. Subclasses implement `factor_tables` and set `order`, `n_train`, `n_test`."""

    name = "base"
    #: whether factors come from text features (so unseen examples can be simulated)
    uses_features = False
    #: whether predictions depend on the batches at all (False for the trajectory baselines)
    uses_batches = True
    #: whether it can predict for example ids / texts it never saw in training
    handles_unseen_ids = False
    #: whether it has parameters trained by gradient descent (the baselines are fitted in closed form)
    trainable = True
    #: training settings used when the caller gives none (train.py flags, the shell scripts, reproduce.sh and
    #: the experiments all take them from here; see gptfluence.training.TrainConfig for their meaning)
    train_defaults: dict = {}

    def __init__(self, n_train: int, n_test: int, order: int = 1):
        super().__init__()
        self.n_train, self.n_test, self.order = int(n_train), int(n_test), int(order)

    # -- to implement -----------------------------------------------------------------
    def factor_tables(self, test_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Factors of every training example for the given test examples.

        test_idx: LongTensor [N] of row indices into the simulator's test examples.
        Returns A [P+1, N, order] and B [P+1, N]; row P (the padding row) is zero.
        """
        raise NotImplementedError

    def config(self) -> dict:
        """Constructor arguments, stored in checkpoints so the simulator can be rebuilt."""
        return {"n_train": self.n_train, "n_test": self.n_test, "order": self.order}

    @classmethod
    def from_config(cls, config: dict, state_dict: dict | None = None) -> "Simulator":
        """Rebuild from config() (and, where needed, the shapes of a saved state_dict)."""
        return cls(**config)

    @classmethod
    def create(cls, spec, n_train: int | None = None, n_test: int | None = None, train_emb=None,
               test_emb=None) -> "Simulator":
        """A new simulator for a training spec (gptfluence.pipeline.TrainSpec): sizes for free-parameter
        simulators, frozen embeddings [P, d] / [N, d] for feature simulators."""
        return cls(n_train, n_test, order=spec.order)

    def fit_data(self, train) -> None:
        """Look at the training dynamics (gptfluence.training.Dynamics) before gradient training starts:
        closed-form parts, data-dependent initialisation. Default: nothing."""

    def predict(self, batches: torch.Tensor, init: torch.Tensor, test_rows: torch.Tensor,
                steps: torch.Tensor | None = None, batch_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted trajectories [R, N, T] of runs with curricula batches [R, T, M] from their first values
        init [R, N]; steps [T] are the recorded steps. batch_scale [R, T] multiplies what each step's batch
        contributes (an edited curriculum whose batches keep their mean factor; 0 = a step without an update).
        Default: the autoregressive rollout of the factors."""
        from ..rollout import rollout, rollout_from_factors
        if batch_scale is None:
            return rollout(self, batches, init, test_rows)
        alpha, beta = self.step_factors(batches, test_rows)
        s = batch_scale.to(alpha.dtype)
        alpha, beta = alpha * s[..., None, None], beta * s[..., None]
        empty = (s == 0)[..., None]
        identity = torch.zeros_like(alpha)
        identity[..., 0] = 1.0
        return rollout_from_factors(torch.where(empty[..., None], identity, alpha),
                                    torch.where(empty, torch.zeros_like(beta), beta), init.to(alpha.dtype))

    def regularization(self) -> torch.Tensor:
        """Extra loss term added to the MSE during training (default 0)."""
        return torch.zeros((), device=self.device)

    # -- shared -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def transition_factors(self, batch_ids: torch.Tensor, test_idx: torch.Tensor):
        """Factors of individual transitions (teacher-forced training).

        batch_ids: LongTensor [K, M] training ids of each transition's batch (-1 = padding).
        test_idx:  LongTensor [K] test row of each transition.
        Returns alpha [K, order] and beta [K].
        """
        uniq, inv = torch.unique(test_idx, return_inverse=True)
        A, B = self.factor_tables(uniq)                    # [P+1, U, n], [P+1, U]
        rows = _pad_to_zero_row(batch_ids, self.n_train)   # [K, M]
        alpha = A[rows, inv[:, None]].sum(1)               # [K, M, n] -> [K, n]
        beta = B[rows, inv[:, None]].sum(1)                # [K, M] -> [K]
        return alpha, beta

    def step_factors(self, batches: torch.Tensor, test_idx: torch.Tensor):
        """Factors of every step of every run, for every test example.

        batches: LongTensor [R, T, M] (-1 = padding); test_idx: LongTensor [N].
        Returns alpha [R, T, N, order] and beta [R, T, N], computed as one matrix product
        of batch-membership counts [R*T, P] with the factor tables [P, N*order].
        """
        R, T, _ = batches.shape
        A, B = self.factor_tables(test_idx)
        counts = batch_counts(batches.reshape(R * T, -1), self.n_train).to(A.dtype)  # [R*T, P]
        N = A.shape[1]
        alpha = (counts @ A[:-1].reshape(self.n_train, -1)).reshape(R, T, N, self.order)
        beta = (counts @ B[:-1]).reshape(R, T, N)
        return alpha, beta


def _pad_to_zero_row(ids: torch.Tensor, n_train: int) -> torch.Tensor:
    return torch.where(ids < 0, torch.full_like(ids, n_train), ids)


def batch_counts(batch_ids: torch.Tensor, n_train: int) -> torch.Tensor:
    """Membership counts: [K, M] ids (-1 = padding) -> FloatTensor [K, n_train]
    (how often each training example is in each batch)."""
    rows = _pad_to_zero_row(batch_ids, n_train)
    counts = torch.zeros(batch_ids.shape[0], n_train + 1, device=batch_ids.device)
    counts.scatter_add_(1, rows, torch.ones_like(rows, dtype=counts.dtype))
    return counts[:, :n_train]


def full_batch_size(train) -> int:
    """The largest number of training ids explaining one transition of the runs (gptfluence.training.Dynamics)."""
    return max(1, int((train.batches[:, 1:] >= 0).sum(-1).max()))


def with_zero_row(t: torch.Tensor) -> torch.Tensor:
    """Append the zero padding row to a factor table [P, ...] -> [P+1, ...]."""
    return torch.cat([t, t.new_zeros((1,) + tuple(t.shape[1:]))], 0)
