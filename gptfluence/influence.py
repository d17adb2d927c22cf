"""Counterfactual influence of training examples, read off a trained simulator.

A simulator's step factors are sums over the batch (see gptfluence.simulators.base):

    alpha_j[t](z') = sum_i C[t, i] * A[i, z', j]        beta[t](z') = sum_i C[t, i] * B[i, z']

with C [T, P] the membership counts of the curriculum. Removing training example i from
every batch it is in changes them to alpha_j[t] - C[t, i] * A[i], beta[t] - C[t, i] * B[i];
adding it once more to those batches ("add") to alpha_j[t] + C[t, i] * A[i], ...; inserting it
into chosen steps ("add" with insert_steps) adds A[i], B[i] at those steps. In general a
counterfactual is a change of counts D [T, P] (column i = what happens to example i), and
the rollout of all P counterfactuals, for all N test examples, is one recurrence over T on a
[P, N] state (chunked over P to bound memory). No Python loop over examples or runs.

Shapes: R runs (curricula), T recorded steps, M ids per step, P training examples,
N test examples, n = simulator order. batches [R, T, M] (a single curriculum [T, M] is
promoted to R = 1); as in rollout, batches[:, t] explains the change from step t-1 to t and
batches[:, 0] is never simulated (the initial value is the value after it).

Sign convention (every score in this module): influence > 0 means the training example
HELPS the test example, i.e. its presence lowers a loss-like metric or raises a
higher-is-better metric (BLEU, ROUGE):

    mode "remove", loss-like:        influence = cf_removed_final - baseline_final
    mode "remove", higher is better: influence = baseline_final - cf_removed_final
    mode "add",    loss-like:        influence = baseline_final - cf_added_final
    mode "add",    higher is better: influence = cf_added_final - baseline_final

The "trajectory" score is the same signed difference averaged over the simulated steps
t = 1..T-1. Values are in the metric's own units (loss in nats, BLEU 0-100, ROUGE 0-1).

Note on the removal model: because factors are sums over the batch, removing an example
also removes its share of alpha (about 1/M of it for a simulator near the identity
dynamics), so absolute scores may share an offset; rankings compare examples fairly.
Examples that never appear at a simulated step have no removal counterfactual and are
left out of rankings (see InfluenceResult.used).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .curricula import (
    MODES,
    as_init,
    as_runs,
    batch_sizes,
    check_ids,
    check_mode,
    counterfactual_counts,
    edit_curriculum,
    read_curriculum,
)
from .io import DataError
from .simulators.base import Simulator, batch_counts

# the largest [R, T, chunk, N] block additive_influence builds at once (2^24 float64 = 128 MiB; a few live at once)
ADDITIVE_CHUNK_ELEMENTS = 1 << 24

# ----------------------------------------------------------------------------------------------
# Conventions
# ----------------------------------------------------------------------------------------------

def sign_convention(mode: str = "remove", higher_is_better: bool = False, metric: str = "loss") -> str:
    """One sentence stating what a positive score means and how it is computed."""
    check_mode(mode)
    cf = "cf_removed_final" if mode == "remove" else "cf_added_final"
    if (mode == "remove") != higher_is_better:
        formula = f"{cf} - baseline_final"
    else:
        formula = f"baseline_final - {cf}"
    effect = "raises" if higher_is_better else "lowers"
    return (f"influence > 0 = the training example helps: its presence {effect} the {metric} "
            f"({'higher is better' if higher_is_better else 'lower is better'}); "
            f"influence = {formula} (mode {mode}); trajectory score = the same difference averaged over "
            f"simulated steps; units of the {metric}")


def metric_higher_is_better(metric: str) -> bool:
    """loss / perplexity -> False; BLEU, ROUGE*, accuracy -> True."""
    m = metric.lower()
    if m in ("loss", "ppl", "perplexity", "nll") or m.endswith("loss"):
        return False
    if m.startswith(("bleu", "rouge", "acc", "f1", "exact")):
        return True
    raise ValueError(f"do not know whether higher {metric!r} is better; pass higher_is_better explicitly")


def _signed(change: torch.Tensor, mode: str, higher_is_better: bool) -> torch.Tensor:
    """cf - baseline -> influence (positive = the example helps)."""
    flip = (mode == "remove") != higher_is_better  # remove & loss: cf - base; add & loss: base - cf; ...
    return change if flip else -change


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# The recurrence
# ----------------------------------------------------------------------------------------------

def _scan(alpha, beta, A, B, delta, init, keep_traj: bool, sizes=None):
    """Baseline and counterfactual rollouts side by side.

    alpha [R, T, X, N, n], beta [R, T, X, N]: baseline factors (X = 1, shared by the counterfactuals,
    or X = p, one baseline per counterfactual). A [p, N, n], B [p, N]: the factor rows that change;
    delta [R, T, p] their count changes; init [R, X, N]. sizes [R, T] (batch sizes; only with renormalisation):
    counterfactual factors are scaled by sizes / (sizes + delta), so the batch keeps its mean.
    Returns final change [R, p, N], mean change over t = 1..T-1 [R, p, N], the baseline [R, X, N, T]
    and, if keep_traj, the change at every step [R, p, N, T] (zero at t = 0).
    """
    R, T, X, N, n = alpha.shape
    p = A.shape[0]
    base_hist, cf_hist = [init], [init.expand(R, p, N)]
    base_traj = [init]
    total = torch.zeros(R, p, N, dtype=alpha.dtype, device=alpha.device)
    traj = torch.zeros(R, p, N, T, dtype=alpha.dtype, device=alpha.device) if keep_traj else None
    change = torch.zeros_like(total)
    for t in range(1, T):
        d = delta[:, t, :, None]                                   # [R, p, 1]
        s = 1.0 if sizes is None else _rescale(sizes[:, t, None, None], d)
        nb = beta[:, t]                                            # [R, X, N]
        nc = s * (nb + d * B)                                      # [R, p, N]
        for j in range(1, min(n, t) + 1):
            a = alpha[:, t, :, :, j - 1]                           # [R, X, N]
            nb = nb + a * base_hist[-j]
            nc = nc + s * (a + d * A[:, :, j - 1]) * cf_hist[-j]
        if sizes is not None:  # a batch emptied by the counterfactual makes no update: the value stays
            nc = torch.where(sizes[:, t, None, None] + d <= 0, cf_hist[-1], nc)
        base_hist = (base_hist + [nb])[-n:]
        cf_hist = (cf_hist + [nc])[-n:]
        base_traj.append(nb)
        change = nc - nb
        total += change
        if keep_traj:
            traj[..., t] = change
    mean = total / max(T - 1, 1)
    return change, mean, torch.stack(base_traj, -1), traj


def _rescale(m: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """m / (m + d): the factor that keeps a batch's mean when its size changes from m to m + d (1 if empty;
    an emptied batch is handled in _scan as no update)."""
    new = m + d
    return torch.where(new > 0, m / new.clamp(min=1e-12), torch.ones_like(new))


def _chunks(n: int, size: int | None):
    size = n if not size or size <= 0 else size
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


# ----------------------------------------------------------------------------------------------
# Influence of every training example on every test example
# ----------------------------------------------------------------------------------------------

@dataclass
class InfluenceResult:
    """Scores of P' training examples on N test examples along R curricula.

    final      [R, P', N] influence on the final value (positive = helps; see the module docstring)
    trajectory [R, P', N] the same signed change averaged over simulated steps t = 1..T-1
    baseline   [R, N, T]  the baseline rollout
    used       [R, P']    True where the example's counterfactual changes the curriculum
    train_idx  [P']       training ids the rows stand for
    delta      [R, P', N, T] raw change cf - baseline at every step (only with return_trajectory)
    """
    final: torch.Tensor
    trajectory: torch.Tensor
    baseline: torch.Tensor
    used: torch.Tensor
    train_idx: torch.Tensor
    mode: str
    higher_is_better: bool
    delta: torch.Tensor | None = None

    @property
    def convention(self) -> str:
        return sign_convention(self.mode, self.higher_is_better)


@torch.no_grad()
def influence_from_factors(A: torch.Tensor, B: torch.Tensor, batches: torch.Tensor, init, mode: str = "remove",
                           higher_is_better: bool = False, insert_steps=None, train_idx=None,
                           chunk_size: int | None = 256, return_trajectory: bool = False,
                           renormalize: bool = True, dtype=torch.float64) -> InfluenceResult:
    """Influence of training examples on test examples, from factor tables.

    A [P+1, N, n], B [P+1, N] (row P = padding, zero), as Simulator.factor_tables returns.
    batches [T, M] or [R, T, M]; init: number, [N] or [R, N] (value at the first recorded step).
    train_idx: training ids to score (default all P). chunk_size: training examples per recurrence pass
    (memory ~ 3 * R * chunk * N values, plus R * chunk * N * T with return_trajectory).
    renormalize: scale a changed batch's factors by m / m' (old / new batch size), i.e. the batch keeps
    the mean of its examples' factors, as a mean-reduced loss would; without it (the default) factors are
    plain sums and removing an example also removes its share of the batch's alpha.
    """
    batches = as_runs(batches).to(A.device)
    P, N, n = A.shape[0] - 1, A.shape[1], A.shape[2]
    R, T, _ = batches.shape
    check_ids(batches, P)
    A, B = A.to(dtype), B.to(dtype)
    init = as_init(init, R, N, dtype, A.device)
    counts = batch_counts(batches.reshape(R * T, -1), P).to(dtype)                        # [R*T, P]
    alpha = (counts @ A[:P].reshape(P, -1)).reshape(R, T, 1, N, n)
    beta = (counts @ B[:P]).reshape(R, T, 1, N)
    delta, used = counterfactual_counts(batches, P, mode, insert_steps)
    sizes = batch_sizes(batches).to(dtype) if renormalize else None
    idx = torch.arange(P, device=A.device) if train_idx is None else torch.as_tensor(train_idx, device=A.device)
    finals, means, trajs = [], [], []
    base = None
    for sl in _chunks(len(idx), chunk_size):
        ix = idx[sl]
        ch, mn, base, tr = _scan(alpha, beta, A[ix], B[ix], delta[:, :, ix].to(dtype), init[:, None],
                                 return_trajectory, sizes)
        finals.append(ch)
        means.append(mn)
        trajs.append(tr)
    final, mean = torch.cat(finals, 1), torch.cat(means, 1)
    return InfluenceResult(final=_signed(final, mode, higher_is_better),
                           trajectory=_signed(mean, mode, higher_is_better), baseline=base[:, 0],
                           used=used[:, idx], train_idx=idx.cpu(), mode=mode, higher_is_better=higher_is_better,
                           delta=torch.cat(trajs, 1) if return_trajectory else None)


def influence(sim: Simulator, batches: torch.Tensor, init, test_rows=None, **kw) -> InfluenceResult:
    """Influence of every training example on every test example along a curriculum (see the module docstring).

    sim: a trained simulator; batches [T, M] or [R, T, M] training ids (-1 padding); init: the test
    examples' values at the first recorded step (number, [N] or [R, N]); test_rows [N]: the simulator's
    test rows (default all). Keyword arguments as influence_from_factors (mode, higher_is_better,
    insert_steps, train_idx, chunk_size, return_trajectory, dtype). Simulators that are additive in the
    batches (effect_factors) take the exact closed form of additive_influence.
    """
    test_rows = torch.arange(sim.n_test) if test_rows is None else torch.as_tensor(test_rows, dtype=torch.long)
    if getattr(sim, "additive", False):
        return additive_influence(sim, batches, init, test_rows, **kw)
    with torch.no_grad():
        A, B = sim.factor_tables(test_rows.to(sim.device))
    return influence_from_factors(A, B, batches, init, **kw)


@torch.no_grad()
def additive_influence(sim: Simulator, batches: torch.Tensor, init, test_rows, mode: str = "remove",
                       higher_is_better: bool = False, insert_steps=None, train_idx=None,
                       chunk_size: int | None = 256, return_trajectory: bool = False, renormalize: bool = True,
                       dtype=torch.float64) -> InfluenceResult:
    """Influence for a simulator whose prediction adds up what each step's batch contributes,
    sum_{tau <= t} beta_tau(z') with beta_tau = sum_{i in c_tau} B_i(z', tau) and B_i(z', tau) = base[i, z'] +
    s[tau] slope[i, z'] (sim.effect_factors).

    The counterfactual of example i changes only the batches it is in (or is inserted into): beta'_tau =
    s (beta_tau + d B_i(tau)) with d the count change and s = m / (m + d) when renormalize (the batch keeps its
    mean contribution; a batch emptied by the change adds nothing), else s = 1. Its change of the prediction at t
    is the cumulative sum of beta' - beta up to t: exact, no recurrence. Both trajectories are kept inside the
    metric's range as the simulator's predictions are (sim.clip). Arguments and result as influence_from_factors;
    the training examples go in chunks of at most chunk_size, fewer when R x T x chunk x N would pass
    ADDITIVE_CHUNK_ELEMENTS (the step tables B [T, P, N] are never built whole: memory stays bounded at any P x N).
    """
    batches = as_runs(batches)
    R, T, _ = batches.shape
    P, N = sim.n_train, len(test_rows)
    check_ids(batches, P)
    counts = batch_counts(batches.reshape(R * T, -1), P).reshape(R, T, P).to(dtype)
    base_f, slope_f, s = (x.to(counts.device, dtype) for x in sim.effect_factors(test_rows, T))  # [P, N], [P, N], [T]
    beta = counts @ base_f + s[:, None] * (counts @ slope_f)                             # [R, T, N]
    step = max(1, min(chunk_size or P, ADDITIVE_CHUNK_ELEMENTS // max(1, R * T * N)))
    raw = sim.predict(batches, as_init(init, R, N, torch.float32), test_rows, clip=False).to(dtype)  # [R, N, T]
    base = sim.clip(raw)
    delta, used = counterfactual_counts(batches, P, mode, insert_steps)
    sizes = batch_sizes(batches).to(dtype)
    idx = torch.arange(P) if train_idx is None else torch.as_tensor(train_idx)
    finals, means, trajs = [], [], []
    for sl in _chunks(len(idx), step):
        ix = idx[sl]
        d = delta[:, :, ix].to(dtype)                                                   # [R, T, p]
        B = base_f[ix][None] + s[:, None, None] * slope_f[ix][None]                     # [T, p, N]
        new = beta[:, :, None] + d[..., None] * B[None]                                 # [R, T, p, N]
        if renormalize:
            total = sizes[..., None] + d
            keep = torch.where(total > 0, sizes[..., None] / total.clamp(min=1e-12), torch.zeros_like(total))
            new = new * keep[..., None]
        change = torch.where(d[..., None] != 0, new - beta[:, :, None], torch.zeros_like(new))
        change[:, 0] = 0
        cf = raw[:, None] + change.cumsum(1).permute(0, 2, 3, 1)                       # [R, p, N, T]
        cum = sim.clip(cf) - base[:, None]
        finals.append(cum[..., -1])
        means.append(cum[..., 1:].mean(-1) if T > 1 else cum[..., 0])
        if return_trajectory:
            trajs.append(cum)
    final, mean = torch.cat(finals, 1), torch.cat(means, 1)
    return InfluenceResult(final=_signed(final, mode, higher_is_better),
                           trajectory=_signed(mean, mode, higher_is_better), baseline=base, used=used[:, idx],
                           train_idx=idx.cpu(), mode=mode, higher_is_better=higher_is_better,
                           delta=torch.cat(trajs, 1) if return_trajectory else None)


def top_k(scores: torch.Tensor, k: int, used: torch.Tensor | None = None):
    """The k most helpful and k most harmful training examples of each test example.

    scores [P, N] (positive = helps); used [P] bool (False rows are left out).
    Returns (helpful_rows [N, k'], helpful_scores [N, k'], harmful_rows [N, k'], harmful_scores [N, k'])
    with k' = min(k, number of used rows); helpful in descending, harmful in ascending score order.
    Rows index scores' first dimension (map them through InfluenceResult.train_idx).
    """
    P, N = scores.shape
    used = torch.ones(P, dtype=torch.bool, device=scores.device) if used is None else used.to(scores.device)
    k = min(int(k), int(used.sum()))
    if k <= 0:
        empty = torch.zeros(N, 0, dtype=torch.long)
        return empty, empty.to(scores.dtype), empty, empty.to(scores.dtype)
    inf = torch.tensor(float("inf"), dtype=scores.dtype, device=scores.device)
    hs, hi = torch.topk(torch.where(used[:, None], scores, -inf), k, dim=0)
    ls, li = torch.topk(torch.where(used[:, None], scores, inf), k, dim=0, largest=False)
    return hi.T, hs.T, li.T, ls.T


# ----------------------------------------------------------------------------------------------
# Arbitrary curricula
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def simulate_curriculum(sim: Simulator, batches: torch.Tensor, init, test_rows=None) -> torch.Tensor:
    """Roll the simulator out along a curriculum [T, M] or [R, T, M]. Returns predictions [R, N, T]."""
    test_rows = torch.arange(sim.n_test) if test_rows is None else torch.as_tensor(test_rows, dtype=torch.long)
    batches = as_runs(batches)
    check_ids(batches, sim.n_train)
    init = as_init(init, batches.shape[0], len(test_rows), torch.float32)
    dev = sim.device
    return sim.predict(batches.to(dev), init.to(dev), test_rows.to(dev)).cpu()


def compare_curricula(sim: Simulator, baseline: torch.Tensor, what_if: torch.Tensor, init, test_rows=None,
                      higher_is_better: bool = False) -> dict:
    """Simulate a baseline and a what-if curriculum from the same initial values.

    baseline, what_if: [T, M] / [R, T, M] (their lengths may differ); init as in simulate_curriculum.
    Returns {"baseline": [R, N, T1], "what_if": [R, N, T2], "gain_final": [R, N], "gain_mean": [R, N]}, gains
    positive when the what-if curriculum ends (or runs on average over its simulated steps) better than
    the baseline: what_if - baseline for higher-is-better metrics, baseline - what_if otherwise.
    """
    a = simulate_curriculum(sim, baseline, init, test_rows)
    b = simulate_curriculum(sim, what_if, init, test_rows)
    s = 1.0 if higher_is_better else -1.0
    mean = lambda x: x[..., 1:].mean(-1) if x.shape[-1] > 1 else x[..., 0]
    return {"baseline": a, "what_if": b, "gain_final": s * (b[..., -1] - a[..., -1]),
            "gain_mean": s * (mean(b) - mean(a))}


# ----------------------------------------------------------------------------------------------
# Self-influence
# ----------------------------------------------------------------------------------------------

def as_own_test_points(sim: Simulator) -> Simulator:
    """A copy of a feature simulator whose test examples are its training examples (test row i = train i).

    Raises DataError for simulators without text features (Simfluence has no factors for pairs it never saw).
    """
    if not getattr(sim, "uses_features", False):
        raise DataError(f"self-influence needs a feature-based simulator (enc_sim, norder_enc_sim, gpt_sim); "
                        f"{sim.name} has free factors per (training, test) id pair and none for a training "
                        "example taken as a test point")
    own = copy.deepcopy(sim)
    own.set_examples(test_emb=sim.train_emb)
    return own


@torch.no_grad()
def self_influence(sim: Simulator, batches: torch.Tensor, init, mode: str = "remove", higher_is_better: bool = False,
                   chunk_size: int | None = 1024, renormalize: bool = True, dtype=torch.float64) -> InfluenceResult:
    """Influence of every training example on itself as a test point, along a curriculum.

    The diagonal of influence(as_own_test_points(sim), ...), computed without the [P, P] state:
    one recurrence over T on a [R, P] state. init: number, [P] or [R, P] (the examples' own values at
    the first recorded step; e.g. the mean first value of the test examples). Returns an InfluenceResult
    with final / trajectory [R, P, 1] and baseline [R, P, T] (each example's own baseline).
    """
    own = as_own_test_points(sim)
    P = own.n_train
    if getattr(own, "additive", False):
        return _additive_self_influence(own, batches, init, mode, higher_is_better, chunk_size, renormalize, dtype)
    A, B = own.factor_tables(torch.arange(P, device=own.device))       # [P+1, P, n], [P+1, P]
    batches = as_runs(batches).to(A.device)
    R, T, _ = batches.shape
    check_ids(batches, P)
    A, B = A.to(dtype), B.to(dtype)
    n = A.shape[2]
    counts = batch_counts(batches.reshape(R * T, -1), P).to(dtype)
    alpha = (counts @ A[:P].reshape(P, -1)).reshape(R, T, P, 1, n)     # baseline of test point i (X = P)
    beta = (counts @ B[:P]).reshape(R, T, P, 1)
    diag = torch.arange(P, device=A.device)
    A_d, B_d = A[diag, diag][:, None], B[diag, diag][:, None]          # [P, 1, n], [P, 1]
    delta, used = counterfactual_counts(batches, P, mode)
    sizes = batch_sizes(batches).to(dtype) if renormalize else None
    init = as_init(init, R, P, dtype, A.device)
    finals, means, bases = [], [], []
    for sl in _chunks(P, chunk_size):
        ch, mn, base, _ = _scan(alpha[:, :, sl], beta[:, :, sl], A_d[sl], B_d[sl], delta[:, :, sl].to(dtype),
                                init[:, sl, None], False, sizes)
        finals.append(ch)
        means.append(mn)
        bases.append(base[..., 0, :])
    final, mean = torch.cat(finals, 1), torch.cat(means, 1)
    return InfluenceResult(final=_signed(final, mode, higher_is_better),
                           trajectory=_signed(mean, mode, higher_is_better), baseline=torch.cat(bases, 1),
                           used=used, train_idx=diag.cpu(), mode=mode, higher_is_better=higher_is_better)


def _additive_self_influence(own, batches, init, mode, higher_is_better, chunk_size, renormalize, dtype):
    """The diagonal of additive_influence with the training examples as their own test points, in chunks."""
    batches = as_runs(batches)
    R, P = batches.shape[0], own.n_train
    init = as_init(init, R, P, dtype)
    finals, means, bases, useds = [], [], [], []
    for sl in _chunks(P, min(chunk_size or P, 256)):
        ix = torch.arange(P)[sl]
        res = additive_influence(own, batches, init[:, ix], ix, mode=mode, higher_is_better=higher_is_better,
                                 train_idx=ix, chunk_size=None, renormalize=renormalize, dtype=dtype)
        finals.append(torch.diagonal(res.final, dim1=1, dim2=2)[..., None])
        means.append(torch.diagonal(res.trajectory, dim1=1, dim2=2)[..., None])
        bases.append(res.baseline)
        useds.append(res.used)
    return InfluenceResult(final=torch.cat(finals, 1), trajectory=torch.cat(means, 1), baseline=torch.cat(bases, 1),
                           used=torch.cat(useds, 1), train_idx=torch.arange(P), mode=mode,
                           higher_is_better=higher_is_better)


# ----------------------------------------------------------------------------------------------
# Reference (slow): one rollout per counterfactual
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def rollout_edited(sim: Simulator, batches: torch.Tensor, edited: torch.Tensor, init: torch.Tensor,
                   test_rows: torch.Tensor) -> torch.Tensor:
    """Rollout along an edited curriculum whose changed batches keep their mean factor.

    batches, edited [R, T, M]: the original curriculum and the edited one (same steps); init [R, N];
    test_rows [N]. The factors of a step are scaled by (original size / edited size); a batch the edit
    emptied makes no update (the value stays). Returns predictions [R, N, T]. This is the semantics of
    influence(..., renormalize=True), one curriculum at a time.
    """
    m, m2 = batch_sizes(batches), batch_sizes(edited)
    scale = torch.where(m2 > 0, m / m2.clamp(min=1), torch.zeros_like(m))               # [R, T]; 0 = emptied
    return sim.predict(edited, init.float(), test_rows, batch_scale=scale.float())


@torch.no_grad()
def reference_influence(sim: Simulator, batches: torch.Tensor, init, test_rows=None, mode: str = "remove",
                        higher_is_better: bool = False, insert_steps=None, train_idx=None,
                        renormalize: bool = True) -> torch.Tensor:
    """Slow reference of influence(...).final: a Python loop of single rollouts, one per training example.

    Returns [R, P', N] in float32 (for tests and benchmarks only).
    """
    batches = as_runs(batches)
    test_rows = torch.arange(sim.n_test) if test_rows is None else torch.as_tensor(test_rows, dtype=torch.long)
    init = as_init(init, batches.shape[0], len(test_rows), torch.float32)
    base = sim.predict(batches, init, test_rows)[..., -1]
    idx = range(sim.n_train) if train_idx is None else [int(i) for i in train_idx]

    def one(i):
        edited = edit_curriculum(batches, i, mode, insert_steps)
        if not renormalize:
            return sim.predict(edited, init, test_rows)
        return rollout_edited(sim, batches, edited, init, test_rows)

    out = [one(i)[..., -1] - base for i in idx]
    return _signed(torch.stack(out, 1), mode, higher_is_better)


__all__ = ["MODES", "InfluenceResult", "as_own_test_points", "check_ids", "compare_curricula",
           "counterfactual_counts", "edit_curriculum", "influence", "influence_from_factors",
           "metric_higher_is_better", "read_curriculum", "reference_influence", "rollout_edited", "self_influence",
           "sign_convention",
           "simulate_curriculum", "top_k"]
