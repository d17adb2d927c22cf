"""Gradient-based baselines of the paper (docs/method.md, section 5): TracIn-CP and Grad-Dot.

Both predict a test example's LOSS trajectory from last-layer gradient features recorded by the
run maker (utils/make_runs.py --grad_features; format in gptfluence/dynamics.py):

    <raw run dir>/grads/grads_step-<t>.pt   features at theta_{t-1} (the parameters step t's update
                                            was computed from) + "learning_rate" lr_t of that update
    <raw run dir>/grads/grads_final.pt      features at the final parameters

Influence of training example i on test example z' at optimizer step u (positive = the step LOWERS
the loss of z', first order):   lr_u * <g_i, g_z'>   for every i in the batch c_u (counted with
multiplicity). The gradients g come from
    TracIn-CP(all)  the checkpoint of every step (theta_{u-1} for step u);
    TracIn-CP(k)    k evenly spaced recorded checkpoints; a checkpoint stands for its own step and the
                    steps after it until the next one (steps before the first one use the first one);
    Grad-Dot        the final parameters for every step.
lr_u is the learning rate of optimizer step u, read from the raw log.out ('learning_rate'); where the
log is not found, from the grads_step-<u>.pt file, else (no file for step u) the learning rate of the
checkpoint standing for u (an approximation; a warning says how many steps it concerns). Grad-Dot with
neither log nor step files weights every step by lr = 1 (a warning says so).

Prediction. With recorded steps s_0 < s_1 < ... (RunSet.steps) and the cumulative influence
    I_t = sum_{s_0 < u <= s_t} lr_u sum_{i in c_u} <g_i, g_z'>      (I_0 = 0)
the trajectory is   L_t = L_0 - (a * I_t + c)   for t >= 1 (L_0 = the true first recorded value, as
test.py's rollout starts from it), with ONE global affine rescaling (a, c) fitted by least squares on
the simulator-training runs only and applied unchanged to the held-out runs. Steps between records
(record_interval > 1) are summed exactly: the sum runs over optimizer steps, each with its own lr.

These baselines predict loss (nats) only; BLEU / ROUGE requests are refused (check_metric).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import torch

from ..io import DataError
from .gradfiles import (
    GradFeatures,
    find_grads_dir,
    list_grad_steps,
    load_grad_features,
    read_grads_lr,
    read_log_learning_rates,
)

log = logging.getLogger(__name__)

METHODS = ("tracin_cp", "grad_dot")

def check_metric(metric: str) -> None:
    """Raise DataError unless metric == "loss": TracIn-CP / Grad-Dot do not predict BLEU / ROUGE."""
    if metric != "loss":
        raise DataError(f"metric {metric!r}: TracIn-CP and Grad-Dot predict the loss only (first-order change of "
                        "a differentiable loss); they do not predict BLEU / ROUGE-L (use --metric loss)")

def parse_num_checkpoints(value: str | int | None) -> int | None:
    """--num_checkpoints: a positive integer, or 'all' (-> None: every step's checkpoint)."""
    if value is None or str(value).strip().lower() == "all":
        return None
    try:
        k = int(value)
    except ValueError:
        raise DataError(f"--num_checkpoints {value!r}: expected a positive integer or 'all'") from None
    if k < 1:
        raise DataError(f"--num_checkpoints {value!r}: expected a positive integer or 'all'")
    return k

def method_name(method: str, num_checkpoints: int | None = 10) -> str:
    """sim_name written to metrics.json: "tracin_cp(10)", "tracin_cp(all)" or "grad_dot"."""
    if method == "grad_dot":
        return "grad_dot"
    if method == "tracin_cp":
        return f"tracin_cp({'all' if num_checkpoints is None else num_checkpoints})"
    raise DataError(f"unknown baseline method {method!r} (expected one of {', '.join(METHODS)})")

def select_checkpoints(available: Sequence[int], k: int | None) -> list[int]:
    """k evenly spaced steps among the recorded checkpoint steps `available` (sorted); k None or
    k >= len(available): all of them. k = 1: the first. Evenly spaced by position:
    available[round(i (L-1) / (k-1))], i = 0..k-1 (with available = 1..T this equals
    dynamics.parse_grad_steps(k, T))."""
    av = sorted(available)
    if not av:
        raise DataError("no recorded checkpoints to choose from")
    if k is None or k >= len(av):
        return av
    if k == 1:
        return [av[0]]
    return [av[round(i * (len(av) - 1) / (k - 1))] for i in range(k)]

def assign_checkpoints(opt_steps: torch.Tensor, chosen: Sequence[int]) -> torch.Tensor:
    """LongTensor [S]: index into `chosen` (sorted steps) of the checkpoint standing for each optimizer
    step: the last chosen step <= it (steps before the first chosen one use the first)."""
    ck = torch.as_tensor(list(chosen), dtype=torch.long)
    return (torch.searchsorted(ck, opt_steps, right=True) - 1).clamp(min=0)

def batch_weights(samples: torch.Tensor, lrs: torch.Tensor, n_train: int) -> torch.Tensor:
    """W [S, n_train] float64: W[u, i] = lr_u * (times id i is in the batch of step u).

    samples [S, B] training ids, -1 padded; lrs [S]."""
    valid = samples >= 0
    counts = torch.zeros(samples.shape[0], n_train, dtype=torch.float64)
    counts.scatter_add_(1, samples.clamp(min=0), valid.to(torch.float64))
    return counts * lrs.to(torch.float64)[:, None]

def step_influence(weights: torch.Tensor, ckpt_of_step: torch.Tensor, train_feats: Sequence[torch.Tensor],
                   test_feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-step influence [S, N] float64: sum_i W[u, i] <g_i^(k), g_z^(k)>, k = ckpt_of_step[u].

    weights [S, P] (batch_weights); ckpt_of_step [S] indices into the K feature pairs;
    train_feats[k] [P, D] (rows = training ids), test_feats[k] [N, D] (rows = the selected test examples).
    One pair of matrix products per checkpoint: (W_k @ G_train) @ G_test^T.
    """
    S, N = weights.shape[0], test_feats[0].shape[0]
    out = torch.zeros(S, N, dtype=torch.float64)
    for k in range(len(train_feats)):
        rows = torch.nonzero(ckpt_of_step == k).flatten()
        if len(rows):
            out[rows] = (weights[rows] @ train_feats[k].double()) @ test_feats[k].double().T
    return out

def cumulative_at(step_inf: torch.Tensor, opt_steps: torch.Tensor, rec_steps: torch.Tensor) -> torch.Tensor:
    """Cumulative influence at the recorded steps, relative to the first one: I [N, T] with
    I[:, t] = sum over optimizer steps u in (rec_steps[0], rec_steps[t]] of step_inf[u] (I[:, 0] = 0).

    step_inf [S, N] for the ascending optimizer steps opt_steps [S]; rec_steps [T] ascending."""
    cum = torch.cat([torch.zeros(1, step_inf.shape[1], dtype=step_inf.dtype), step_inf.cumsum(0)])  # [S+1, N]
    pos = torch.searchsorted(opt_steps, rec_steps, right=True)  # steps <= rec_steps[t]
    at = cum[pos].T  # [N, T]
    return at - at[:, :1]

def fit_rescaling(influence: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Least-squares (a, c) of  L_0 - L_t = a * I_t + c  over every recorded (run, example, t >= 1)
    whose first value is recorded too. influence, values [R, N, T]; mask [R, N, T].

    Pass the simulator-TRAINING runs only. A constant influence (no slope to fit) gives a = 0.
    """
    ok = mask[..., 1:] & mask[..., :1]
    if not ok.any():
        raise DataError("no recorded (first, later) value pairs in the training runs to fit the rescaling on")
    x = influence[..., 1:][ok].double()
    y = (values[..., :1] - values[..., 1:])[ok].double()
    xm, ym = x.mean(), y.mean()
    var = ((x - xm) ** 2).sum()
    if float(var) <= 0.0:
        log.warning("the cumulative influence is constant on the training runs: fitting the offset only (a = 0)")
        return 0.0, float(ym)
    a = ((x - xm) * (y - ym)).sum() / var
    return float(a), float(ym - a * xm)

def predict_trajectories(influence: torch.Tensor, first: torch.Tensor, a: float, c: float) -> torch.Tensor:
    """pred [R, N, T] float32: L_t = L_0 - (a * I_t + c) for t >= 1, pred[..., 0] = L_0.

    influence [R, N, T]; first [R, N] the true first recorded values."""
    pred = first[..., None].double() - (a * influence.double() + c)
    pred[..., 0] = first.double()
    return pred.float()

def _step_lrs(opt_steps: torch.Tensor, log_lrs: dict, feats: GradFeatures, chosen: Sequence[int],
              ckpt_of_step: torch.Tensor | None, name: str) -> torch.Tensor:
    """lr_u [S] float64 per optimizer step: the log, else the step's grads file, else its checkpoint's."""
    out, approx, none = [], 0, 0
    step_lr = {s: g.lr for s, g in feats.steps.items()}
    on_disk = set(feats.available)
    for j, u in enumerate(opt_steps.tolist()):
        if u in log_lrs:
            out.append(log_lrs[u])
        elif u in step_lr:
            out.append(step_lr[u])
        elif u in on_disk:
            out.append(read_grads_lr(feats.grads_dir / f"grads_step-{u}.pt"))
        elif ckpt_of_step is not None and chosen:
            out.append(step_lr[chosen[int(ckpt_of_step[j])]])
            approx += 1
        else:
            out.append(1.0)
            none += 1
    if approx:
        log.warning("%s: no log.out learning rate for %d of %d steps: using the learning rate of the checkpoint "
                    "standing for them (pass --raw_root to read the exact ones)", name, approx, len(out))
    if none:
        log.warning("%s: no learning rate for %d of %d steps (no log.out, no grads_step file): weighting them "
                    "by 1 (pass --raw_root to read them from log.out)", name, none, len(out))
    return torch.tensor(out, dtype=torch.float64)

def run_influence(run_dir: str | os.PathLike, opt_steps: torch.Tensor, samples: torch.Tensor,
                  rec_steps: torch.Tensor, test_ids: torch.Tensor, method: str, num_checkpoints: int | None = 10,
                  raw_root: str | os.PathLike | None = None) -> tuple[torch.Tensor, list[int]]:
    """Cumulative influence I [N, T] (float64, see cumulative_at) of one run on the test ids,
    and the checkpoint steps used ([] for Grad-Dot).

    opt_steps [S] ascending optimizer steps; samples [S, B] their batches (-1 padded); rec_steps [T];
    test_ids [N]. num_checkpoints: k for TracIn-CP, None = every step's checkpoint.
    """
    method_name(method, num_checkpoints)  # validates the method
    name = Path(run_dir).name
    gdir = find_grads_dir(run_dir, raw_root)
    if method == "grad_dot":
        chosen = []
        feats = load_grad_features(run_dir, raw_root, steps=[], final=True)
    else:
        avail = list_grad_steps(gdir)
        if num_checkpoints is None:
            lacking = sorted(set(opt_steps.tolist()) - set(avail))
            if lacking:
                raise DataError(f"{gdir}: TracIn-CP(all) needs the features of every optimizer step; "
                                f"{len(lacking)} of {len(opt_steps)} steps have none (first: {lacking[:5]}); "
                                "re-make the runs with `utils/make_runs.py --grad_features --grad_steps all`")
        chosen = select_checkpoints(avail, num_checkpoints)
        if num_checkpoints is not None and len(chosen) < num_checkpoints:
            log.warning("%s: TracIn-CP(%d) asked, but only %d checkpoints were recorded: using all of them",
                        name, num_checkpoints, len(chosen))
        feats = load_grad_features(run_dir, raw_root, steps=chosen, final=False)
    _check_ids(feats, samples, test_ids, gdir, name)
    ckpt_of_step = assign_checkpoints(opt_steps, chosen) if chosen else None
    lrs = _step_lrs(opt_steps, read_log_learning_rates(run_dir, raw_root), feats, chosen, ckpt_of_step, name)
    grads = [feats.final] if method == "grad_dot" else [feats.steps[s] for s in chosen]
    if ckpt_of_step is None:
        ckpt_of_step = torch.zeros(len(opt_steps), dtype=torch.long)
    n_train = grads[0].train.shape[0]
    W = batch_weights(samples, lrs, n_train)
    inf = step_influence(W, ckpt_of_step, [g.train for g in grads], [g.test[test_ids] for g in grads])
    return cumulative_at(inf, opt_steps, rec_steps), chosen

def _check_ids(feats: GradFeatures, samples: torch.Tensor, test_ids: torch.Tensor, gdir: Path, name: str) -> None:
    """Every training id of the batches and every selected test id must have a feature row."""
    known = set(feats.train_ids.tolist())
    used = set(samples[samples >= 0].unique().tolist())
    if used - known:
        bad = sorted(used - known)
        raise DataError(f"{name}: training ids {bad[:10]} of its batches have no gradient feature in {gdir} "
                        "(expected the run's pool ids in 'train_ids')")
    have_t = set(feats.test_ids.tolist())
    bad_t = [t for t in test_ids.tolist() if t not in have_t]
    if bad_t:
        raise DataError(f"{name}: test ids {bad_t[:10]} have no gradient feature in {gdir} "
                        "(expected them in 'test_ids')")

def runset_influence(runset, method: str, num_checkpoints: int | None = 10,
                     raw_root: str | os.PathLike | None = None, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """Cumulative influence I [R, N, T] (float64) of every run of a RunSet (loss), and
    {run name: checkpoint steps used}. One run's features are in memory at a time."""
    from tqdm.auto import tqdm

    from ..runs import load_run

    check_metric(runset.metric)
    R, N, T = runset.values.shape
    out = torch.zeros(R, N, T, dtype=torch.float64)
    used = {}
    for r, name in enumerate(tqdm(runset.names, desc=method_name(method, num_checkpoints), unit="run",
                                  disable=not progress)):
        run = load_run(name, "loss")
        out[r], used[name] = run_influence(name, run["opt_steps"], run["samples"], runset.steps, runset.test_ids,
                                           method, num_checkpoints, raw_root)
    return out, used

def fit_and_predict(train_rs, test_rs, method: str, num_checkpoints: int | None = 10,
                    raw_root: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """Fit (a, c) on the training runs, predict the test runs.

    Returns {"pred": [R_test, N, T], "scale": a, "offset": c, "train_influence": [R_train, N, T],
    "test_influence": [R_test, N, T], "checkpoints": {run: steps}}. The test runs' values enter only
    as their first recorded value L_0.
    """
    check_metric(train_rs.metric)
    check_metric(test_rs.metric)
    i_train, ck_train = runset_influence(train_rs, method, num_checkpoints, raw_root, progress)
    a, c = fit_rescaling(i_train, train_rs.values, train_rs.mask)
    i_test, ck_test = runset_influence(test_rs, method, num_checkpoints, raw_root, progress)
    pred = predict_trajectories(i_test, test_rs.values[..., 0], a, c)
    return {"pred": pred, "scale": a, "offset": c, "train_influence": i_train, "test_influence": i_test,
            "checkpoints": {**ck_train, **ck_test}}

def _tracin_checkpoints(run_dir, num_checkpoints: int | None, raw_root) -> tuple[list[int], GradFeatures]:
    """The TracIn-CP checkpoint steps of a run (select_checkpoints) and their loaded features."""
    gdir = find_grads_dir(run_dir, raw_root)
    chosen = select_checkpoints(list_grad_steps(gdir), num_checkpoints)
    return chosen, load_grad_features(run_dir, raw_root, steps=chosen, final=False)

def example_influence(run_dir: str | os.PathLike, opt_steps: torch.Tensor, samples: torch.Tensor,
                      test_ids: torch.Tensor, num_checkpoints: int | None = 10,
                      raw_root: str | os.PathLike | None = None) -> tuple[torch.Tensor, list[int]]:
    """TracIn-CP influence of EVERY training example on each test example over one whole run.

    S[i, z] = sum over optimizer steps u whose batch holds i (with multiplicity) of lr_u <g_i^(k), g_z^(k)>,
    k = the checkpoint standing for u (assign_checkpoints). Positive = i's updates LOWER z's loss (first
    order). Removing a set of examples from the run changes z's final loss by about +a * sum_{i in set} S[i, z]
    (a = the fitted rescaling of fit_rescaling).

    opt_steps [S] ascending optimizer steps; samples [S, B] their batches (-1 padded); test_ids [N].
    Returns (S [P, N] float64 with P = the largest training id with a feature + 1, checkpoint steps used).
    """
    name = Path(run_dir).name
    chosen, feats = _tracin_checkpoints(run_dir, num_checkpoints, raw_root)
    gdir = feats.grads_dir
    _check_ids(feats, samples, test_ids, gdir, name)
    ckpt_of_step = assign_checkpoints(opt_steps, chosen)
    lrs = _step_lrs(opt_steps, read_log_learning_rates(run_dir, raw_root), feats, chosen, ckpt_of_step, name)
    grads = [feats.steps[s] for s in chosen]
    P = grads[0].train.shape[0]
    W = batch_weights(samples, lrs, P)                                    # [S, P]
    out = torch.zeros(P, len(test_ids), dtype=torch.float64)
    for k, g in enumerate(grads):
        w = W[ckpt_of_step == k].sum(0)                                   # [P] lr-weighted occurrences
        out += w[:, None] * (g.train.double() @ g.test[test_ids].double().T)
    return out, chosen

def self_influence_from_grads(train_feats: Sequence[torch.Tensor], lrs: Sequence[float]) -> torch.Tensor:
    """TracIn-CP self-influence: sum_k lr_k <g_i^(k), g_i^(k)>, float64 [P].

    train_feats[k] [P, D] the training features at checkpoint k; lrs[k] the learning rate of that
    checkpoint's update. Large = the example's own loss moves much under its own updates (hard or
    atypical examples, e.g. mislabelled ones)."""
    if len(train_feats) != len(lrs) or not len(lrs):
        raise ValueError(f"expected one learning rate per checkpoint, got {len(train_feats)} feature sets "
                         f"and {len(lrs)} learning rates")
    out = torch.zeros(train_feats[0].shape[0], dtype=torch.float64)
    for g, lr in zip(train_feats, lrs):
        g = g.double()
        out += float(lr) * (g * g).sum(1)
    return out

def tracin_self_influence(run_dir: str | os.PathLike, num_checkpoints: int | None = None,
                          raw_root: str | os.PathLike | None = None) -> tuple[torch.Tensor, list[int]]:
    """TracIn-CP self-influence of every pool example of a run, from its grads_step files:
    (scores float64 [P] indexed by training id (zeros for ids without a feature), checkpoint steps used).

    num_checkpoints: k evenly spaced recorded checkpoints (None: all). The learning rate of a checkpoint
    is the one stored in its grads_step file (the lr of the update computed at those parameters)."""
    chosen, feats = _tracin_checkpoints(run_dir, num_checkpoints, raw_root)
    grads = [feats.steps[s] for s in chosen]
    return self_influence_from_grads([g.train for g in grads], [g.lr for g in grads]), chosen
