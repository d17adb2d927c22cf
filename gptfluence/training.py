"""Teacher-forced training of a simulator with validation by full rollout.

As released: MSE on one-step predictions given the true history, minibatches of
(run, test example, step) transitions, Adam with coupled L2 weight decay, linear
warm-up then linear decay to 0, validation by autoregressive rollout on held-out
runs, the best checkpoint kept, early stopping.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from .metrics import evaluate
from .rollout import teacher_forced, transition_index
from .simulators.base import Simulator

log = logging.getLogger("gptfluence.training")


@dataclass
class Dynamics:
    """The tensors a simulator trains or is scored on (a view of a RunSet).

    values [R, N, T] float, mask [R, N, T] bool, batches [R, T, M] long (-1 pad),
    test_rows [N] long (simulator test rows of the N test examples), steps [T] long.
    """
    values: torch.Tensor
    mask: torch.Tensor
    batches: torch.Tensor
    test_rows: torch.Tensor
    steps: torch.Tensor

    @classmethod
    def from_runset(cls, rs, device="cpu") -> "Dynamics":
        return cls(rs.values.float().to(device), rs.mask.to(device), rs.batches.long().to(device),
                   rs.test_ids.long().to(device), rs.steps.long().to(device))

    @property
    def num_runs(self) -> int:
        return self.values.shape[0]

    def runs(self, idx) -> "Dynamics":
        """The subset of runs idx (a list of run indices)."""
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.values.device)
        return Dynamics(self.values[idx], self.mask[idx], self.batches[idx], self.test_rows, self.steps)

    def up_to(self, max_step: int) -> "Dynamics":
        """Only the recorded steps <= max_step."""
        keep = int((self.steps <= max_step).sum())
        if keep < 2:
            raise ValueError(f"step threshold {max_step} keeps {keep} recorded steps; need at least 2")
        return Dynamics(self.values[..., :keep], self.mask[..., :keep], self.batches[:, :keep], self.test_rows,
                        self.steps[:keep])

    def every(self, k: int) -> "Dynamics":
        """As if metrics had been recorded only every k-th recorded step (from the first).

        The batches of the skipped steps are merged into the next kept transition, so a
        transition still holds every training example seen since the previous kept step.
        """
        if k <= 1:
            return self
        T = self.steps.shape[0]
        kept = list(range(0, T, k))
        merged = []
        for a, b in zip([-1] + kept[:-1], kept):
            merged.append(self.batches[:, a + 1:b + 1].flatten(1, 2) if a >= 0 else self.batches[:, b])
        width = max(m.shape[1] for m in merged)
        pad = lambda m: torch.nn.functional.pad(m, (0, width - m.shape[1]), value=-1)
        batches = torch.stack([pad(m) for m in merged], 1)
        ix = torch.tensor(kept, device=self.values.device)
        return Dynamics(self.values[..., ix], self.mask[..., ix], batches, self.test_rows, self.steps[ix])


@dataclass
class TrainConfig:
    lr: float = 1e-4
    weight_decay: float = 1e-5
    max_epoch: int = 300
    train_bs: int = 128
    warmup_steps: int = 200
    patience: int = 10
    clip: float = 1.0
    valid_epoch_interval: int = 1
    save_epoch_interval: int = 1
    seed: int = 42
    show_progress: bool = True


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad_validations: int = 0
    history: list = field(default_factory=list)


def make_optimizer(sim: Simulator, cfg: TrainConfig, total_steps: int):
    """Adam with coupled L2 (weight_decay), linear warm-up over cfg.warmup_steps, then linear decay to 0
    (transformers' get_linear_schedule_with_warmup)."""
    from transformers import get_linear_schedule_with_warmup
    opt = torch.optim.Adam(sim.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(0, min(cfg.warmup_steps, total_steps - 1))
    return opt, get_linear_schedule_with_warmup(opt, warm, max(total_steps, 1))


def validate(sim: Simulator, data: Dynamics) -> dict:
    """Roll every run out from its true first value (Simulator.predict); evaluate() of the result."""
    sim.eval()
    with torch.no_grad():
        pred = sim.predict(data.batches, data.values[..., 0], data.test_rows, data.steps)
    sim.train()
    return evaluate(pred.cpu(), data.values.cpu(), data.mask.cpu())


def fit_closed_form(sim: Simulator, fitted: Dynamics, save=None) -> TrainState:
    """The 'training' of a simulator without gradient parameters (already fitted in Simulator.fit_data on
    `fitted`, the training and validation runs together: a closed form needs no held-out epoch selection, and a
    simulator that chooses settings does so by cross-validation inside these runs). Records the in-sample MSE,
    then writes the best and last checkpoints."""
    state = TrainState()
    m = validate(sim, fitted)
    state.history.append({"epoch": 0, "train_mse": m["all_steps_mse_mean"], "fitted_runs": int(fitted.values.shape[0]),
                          "seconds": 0.0})
    state.best_epoch = 0
    if save:
        save("best", state, None, None)
        save("last", state, None, None)
    return state


def _train_epoch(sim: Simulator, train: Dynamics, idx: torch.Tensor, cfg: TrainConfig, opt, sched,
                 state: TrainState) -> dict:
    """One epoch of teacher-forced minibatch steps over the transitions idx, in a seeded order; returns the
    epoch's record (mean train MSE, seconds) and advances state.epoch / state.step."""
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + state.epoch)
    order = torch.randperm(len(idx), generator=gen).to(idx.device)
    total = 0.0
    for k in range(math.ceil(len(idx) / cfg.train_bs)):
        b = idx[order[k * cfg.train_bs:(k + 1) * cfg.train_bs]]
        pred = teacher_forced(sim, train.values, train.batches, train.test_rows, b)
        mse = torch.mean((pred - train.values[b[:, 0], b[:, 1], b[:, 2]]) ** 2)
        loss = mse + sim.regularization()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(sim.parameters(), cfg.clip)
        opt.step()
        sched.step()
        state.step += 1
        total += mse.item() * len(b)
    state.epoch += 1
    return {"epoch": state.epoch, "train_mse": total / len(idx), "seconds": time.perf_counter() - t0}


def _validate_epoch(sim: Simulator, valid: Dynamics, state: TrainState, rec: dict) -> bool:
    """Roll the simulator out on the validation runs, add the figures to rec (appended to the history) and
    update the best epoch and the patience count; True when the validation MSE improved (a diverged or
    undefined rollout counts as inf)."""
    m = validate(sim, valid)
    val = m["all_steps_mse_mean"]
    val = math.inf if val is None or m["diverged_trajectories"] else val
    rec.update(valid_mse=val, valid_mae=m["all_steps_mae_mean"], valid_spearman=m["final_step_spearman_mean"],
               valid_diverged=m["diverged_trajectories"])
    improved = val < state.best_val
    if improved:
        state.best_val, state.best_epoch, state.bad_validations = val, state.epoch, 0
    else:
        state.bad_validations += 1
    state.history.append(rec)
    return improved


def fit(sim: Simulator, train: Dynamics, valid: Dynamics | None, cfg: TrainConfig,
        save: Callable[[str, TrainState, torch.optim.Optimizer, object], None] | None = None,
        state: TrainState | None = None, resume_from: dict | None = None) -> TrainState:
    """Train `sim` in place; returns the final TrainState (history holds one dict per epoch).

    save(kind, state, optimizer, scheduler) is called with kind "best" when the validation
    MSE improves and "last" every cfg.save_epoch_interval epochs and at the end.
    resume_from: a "last" checkpoint dict with optimizer / scheduler / train_state entries.
    """
    idx = transition_index(train.mask, sim.order)
    if len(idx) == 0:
        raise ValueError("no training transitions: every trajectory is shorter than 2 recorded steps")
    steps_per_epoch = math.ceil(len(idx) / cfg.train_bs)
    opt, sched = make_optimizer(sim, cfg, cfg.max_epoch * steps_per_epoch)
    state = state or TrainState()
    if resume_from is not None:
        opt.load_state_dict(resume_from["optimizer"])
        sched.load_state_dict(resume_from["scheduler"])
        state = TrainState(**resume_from["train_state"])
        log.info("resuming after epoch %d (best validation MSE %.5g at epoch %d)",
                 state.epoch, state.best_val, state.best_epoch)
    sim.train()
    bar = tqdm(total=cfg.max_epoch, initial=state.epoch, desc="epochs", disable=not cfg.show_progress)
    while state.epoch < cfg.max_epoch:
        rec = _train_epoch(sim, train, idx, cfg, opt, sched, state)
        if valid is not None and state.epoch % cfg.valid_epoch_interval == 0:
            improved = _validate_epoch(sim, valid, state, rec)
            if improved and save:
                save("best", state, opt, sched)
        else:
            state.history.append(rec)
        log.info("epoch %d: train MSE %.5g%s (%.1fs)", state.epoch, rec["train_mse"],
                 f", valid MSE {rec['valid_mse']:.5g}" if "valid_mse" in rec else "", rec["seconds"])
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in rec.items() if k in ("train_mse", "valid_mse")})
        stop = valid is not None and state.bad_validations >= cfg.patience
        if save and (state.epoch % cfg.save_epoch_interval == 0 or stop or state.epoch == cfg.max_epoch):
            save("last", state, opt, sched)
        if stop:
            log.info("early stop: validation MSE did not improve for %d validations (best %.5g at epoch %d)",
                     cfg.patience, state.best_val, state.best_epoch)
            break
    bar.close()
    if save and (valid is None or state.best_epoch < 0):
        if valid is not None:
            log.warning("every validation rollout diverged or was undefined: best-checkpoint.pt holds the last "
                        "epoch's weights (best_val = inf); check the learning rate and the data")
        save("best", state, opt, sched)
    return state
