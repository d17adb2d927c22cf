"""The honest baselines every table carries beside the simulators. They ignore the batches.

    no_change        the first recorded value repeated at every step
    mean_trajectory  per test example, the mean of its trajectories over the training runs (absolute values,
                     not shifted to the run's first value: that first value carries a transient deviation which
                     a shifted curve would keep). A test example absent from the training runs gets the mean
                     curve of the seen ones, shifted to its own first value.

Both are "trained" in closed form (fit_data) and have no gradient parameters; train.py / test.py treat them
like any simulator. Their influence is zero by construction, so influence.py refuses them.
"""

from __future__ import annotations

import torch

from ..io import DataError
from .base import Simulator


class TrajectoryBaseline(Simulator):
    """Base of the batch-blind baselines: nothing to train by gradient, predictions from the first value."""

    uses_batches = False
    handles_unseen_ids = True
    trainable = False

    def __init__(self, n_train: int, n_test: int, order: int = 1):
        super().__init__(n_train, n_test, 1)

    @classmethod
    def create(cls, spec, n_train=None, n_test=None, train_emb=None, test_emb=None):
        return cls(n_train, n_test)

    def config(self) -> dict:
        return {"n_train": self.n_train, "n_test": self.n_test}

    def factor_tables(self, test_idx):
        raise DataError(f"{self.name} ignores the batches: it has no factors (and no influence)")

    def forget_test_examples(self, n_test: int) -> None:
        """Use another test set: every example counts as unseen."""
        self.n_test = int(n_test)


class NoChange(TrajectoryBaseline):
    name = "no_change"

    def predict(self, batches, init, test_rows, steps=None, batch_scale=None):
        T = batches.shape[1]
        return init[..., None].expand(*init.shape, T).clone()


class MeanTrajectory(TrajectoryBaseline):
    name = "mean_trajectory"

    def __init__(self, n_train: int, n_test: int, order: int = 1, n_steps: int = 1):
        super().__init__(n_train, n_test)
        self.register_buffer("mean", torch.full((n_test, n_steps), float("nan")))
        self.register_buffer("steps", torch.zeros(n_steps, dtype=torch.long))

    def config(self) -> dict:
        return {**super().config(), "n_steps": int(self.steps.numel())}

    def fit_data(self, train) -> None:
        """mean[row, t] = mean over the training runs of the recorded values (NaN where never recorded)."""
        v, m = train.values.double(), train.mask
        cnt = m.sum(0)                                                    # [N, T]
        avg = torch.where(cnt > 0, (v * m).sum(0) / cnt.clamp(min=1), torch.full_like(v[0], float("nan")))
        table = torch.full((self.n_test, avg.shape[1]), float("nan"), dtype=torch.float32, device=v.device)
        table[train.test_rows] = avg.float()
        self.mean, self.steps = table, train.steps.clone()

    def forget_test_examples(self, n_test: int) -> None:
        super().forget_test_examples(n_test)
        self.mean = torch.full((n_test, self.steps.numel()), float("nan"), device=self.mean.device)

    def _columns(self, steps: torch.Tensor | None, T: int) -> torch.Tensor:
        if steps is None:
            if T != self.steps.numel():
                raise DataError(f"mean_trajectory: the runs have {T} recorded steps, the training runs had "
                                f"{self.steps.numel()}; pass the steps")
            return torch.arange(T, device=self.steps.device)
        pos = torch.searchsorted(self.steps, steps.to(self.steps.device))
        ok = (pos < len(self.steps)) & (self.steps[pos.clamp(max=len(self.steps) - 1)] == steps.to(self.steps.device))
        if not bool(ok.all()):
            missing = steps[~ok.cpu()].tolist()
            raise DataError(f"mean_trajectory: steps {missing[:8]} were not recorded in the training runs")
        return pos

    def predict(self, batches, init, test_rows, steps=None, batch_scale=None):
        cols = self._columns(steps, batches.shape[1])
        table = self.mean[test_rows.to(self.mean.device)][:, cols]       # [N, T]
        seen = torch.isfinite(table).all(1)                              # [N]
        R = init.shape[0]
        pred = table[None].expand(R, -1, -1).clone().to(init.dtype)
        if not bool(seen.all()):
            known = torch.isfinite(self.mean[:, cols]).all(1)
            if not bool(known.any()):
                raise DataError("mean_trajectory: no test example was recorded at these steps in the training runs")
            curve = self.mean[known][:, cols].mean(0)                    # the seen examples' mean curve [T]
            shifted = init[:, ~seen.to(init.device), None] + (curve - curve[0]).to(init)[None, None]
            pred[:, ~seen.to(init.device)] = shifted
        return pred
