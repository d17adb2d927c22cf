"""Dynamics report: do a set of runs show real learning that depends on the curriculum?

    report = dynamics_report(run_dirs, train_samples, test_samples)    # one metric (loss by default)
    report = task_report(run_dirs, metrics, train_samples, test_samples)  # loss + the other metrics recorded
    print("\\n".join(format_report(report)))
    write_report(report, folder)                    # <folder>/dynamics_report.json

utils/make_runs.py writes it beside the raw runs it makes, utils/construct_runs-data*.py beside the processed
runs; both cover every run in the folder, not only those made by the last call.

From processed run dirs (gptfluence.runs.load_runs) of one task and metric, it measures

  metric_first, metric_last   mean over runs and test examples at the first / last recorded step
  frac_improved               fraction of (run, test example) pairs better at the last step than at the
                              first (lower loss; higher BLEU / ROUGE)
  label_accuracy_first/_last  mean test accuracy by label-word scoring over runs, read from the raw run
                              dirs' run_done.json (written by the run maker for classification tasks; found
                              through each processed run's completion mark)
  final_spread                std over test examples of the final values (per run, then mean over runs)
  final_rank_agreement        Spearman's rho of the final values between two runs, mean over run pairs
  share_explained             how much of the per-step change the batch explains beyond the mean trajectory:
                              1 - mse_batch / mse_mean on held-out runs (below)
  share_explained_se          its standard error: jackknife over the held-out folds (each fold left out in turn)
  batch_effect_measurable     share_explained > 2 x share_explained_se: the batch's share is told apart from 0

Per-step change d[r, n, t] = v[r, n, t] - v[r, n, t-1] (recorded steps t-1 -> t; the batch of the optimizer
steps in between explains it). Every run is held out in turn (leave-one-run-out; interleaved folds beyond 8 runs):
  - mean trajectory: m[n, t] = mean of d over the other runs; mse_mean = mean of (d - m)^2 on the held-out run;
  - batch-aware fit: ridge regression of the residual d - m on the batch's membership counts x[r, t]
    (per training id, or per group of training ids: label for classification, any "topic" field otherwise),
    one weight vector per test example, d_hat = m + x w[n]; mse_batch = mean of (d - d_hat)^2.
    The feature set and the ridge strength (including "no batch effect", w = 0) are chosen by
    leave-one-run-out cross-validation on the other runs only, so a run set without a batch effect
    gets share_explained ~ 0 and never a large negative value from overfitting.
share_mean_trajectory = 1 - mse_mean / mean(d^2) says how much of the change is the same for every run.

How long a run's own deviation from the mean trajectory lasts (deviation_persistence): with e[r, n, t] =
v[r, n, t] - mean over runs of v[., n, t], the pooled least-squares fit e[t+1] - e[t] = -reversion * e[t] gives
  deviation_reversion   the fraction of a deviation undone per recorded step (0: it persists, 1: gone next step)
  deviation_half_life   recorded steps until half of a deviation is gone (None unless 0 < reversion < 1)
  share_reversion       share of the per-step change beyond the mean trajectory that the reversion explains
A fast reversion means that whatever made a run differ (its first value, its early batches) fades within a few
steps, so a simulator rolled out from the first value gains little over the mean trajectory unless it predicts
the batches' fresh effects step by step.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .io import DataError, load_samples, read_json, sample_target, write_json
from .metrics import spearman

log = logging.getLogger(__name__)

REPORT_FILE = "dynamics_report.json"
DONE_FILE = "run_done.json"  # the run maker's completion file (gptfluence.runmaker)
# ridge strengths, relative to the mean eigenvalue of X^T X; inf = no batch effect (w = 0)
RIDGE_GRID = (1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, float("inf"))
HIGHER_IS_BETTER = ("bleu", "rouge1", "rouge2", "rougeL")


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------

def _samples(samples, what: str) -> list[dict] | None:
    if samples is None:
        return None
    if isinstance(samples, (str, os.PathLike)):
        return load_samples(samples)
    samples = list(samples)
    for i, s in enumerate(samples):
        if not isinstance(s, Mapping) or s.get("id") != i:
            raise DataError(f"{what}: sample {i} must be a dict with id {i} (a list indexed by id, as load_samples "
                            "gives)")
    return samples


def default_groups(train_samples: Sequence[dict] | None) -> list | None:
    """A group per training sample for the grouped batch features: its integer "label" when every sample
    has one, else its "topic" field when every sample has one, else its target text when there are few
    distinct targets (classification-like files), else None (no grouping)."""
    if not train_samples:
        return None
    for key in ("label", "topic"):
        if all(key in s and s[key] is not None for s in train_samples):
            return [s[key] for s in train_samples]
    targets = [sample_target(s).strip() for s in train_samples]
    distinct = set(targets)
    if len(distinct) <= 10 and 4 * len(distinct) <= len(targets):
        return targets
    return None


def source_accuracies(run_dirs: Sequence[str | os.PathLike]) -> dict | None:
    """Label accuracies of processed runs, read from the raw runs their completion marks name; None when a run
    has no raw source with accuracies (downloaded runs, generation tasks, moved raw folders)."""
    from .preprocess import MARKER
    raws = []
    for d in run_dirs:
        mark = Path(d) / MARKER
        src = read_json(mark).get("source") if mark.is_file() else None
        if not src or not (Path(src) / DONE_FILE).is_file():
            return None
        raws.append(src)
    try:
        return read_accuracies(raws)
    except DataError as e:
        log.warning("label accuracies left out of the report: %s", e)
        return None


def read_accuracies(raw_run_dirs: Sequence[str | os.PathLike]) -> dict | None:
    """Per-run label accuracies from raw run dirs' run_done.json: {"first": [...], "last": [...]}; None when
    no run recorded them (generation tasks). DataError naming a run dir without run_done.json, or one whose
    file lacks the accuracies while others have them."""
    first, last, missing = [], [], []
    for d in raw_run_dirs:
        path = Path(d) / DONE_FILE
        if not path.is_file():
            raise DataError(f"{d}: no {DONE_FILE} (the run is not finished)")
        done = read_json(path)
        if "label_accuracy_first" in done and "label_accuracy_last" in done:
            first.append(float(done["label_accuracy_first"]))
            last.append(float(done["label_accuracy_last"]))
        else:
            missing.append(str(d))
    if not first:
        return None
    if missing:
        raise DataError(f"{missing[0]}/{DONE_FILE}: no label_accuracy_first / label_accuracy_last while "
                        f"{len(first)} other runs have them (runs made by different code?)")
    return {"first": first, "last": last}


# ----------------------------------------------------------------------------------------------
# The batch-aware fit
# ----------------------------------------------------------------------------------------------

def membership_counts(batches: torch.Tensor, n_ids: int) -> torch.Tensor:
    """How often each training id is in each transition's batch: batches LongTensor [R, T, M] (padded with
    -1) -> FloatTensor [R, T, n_ids]."""
    R, T, M = batches.shape
    out = torch.zeros(R, T, n_ids + 1, dtype=torch.float64)
    idx = torch.where(batches >= 0, batches, torch.full_like(batches, n_ids))
    out.scatter_add_(2, idx, torch.ones_like(idx, dtype=torch.float64))
    return out[..., :n_ids]


def group_counts(counts: torch.Tensor, groups: Sequence) -> tuple[torch.Tensor, list]:
    """Membership counts per group: counts [R, T, P] and a group per id -> ([R, T, G], group names)."""
    names = sorted(set(groups), key=str)
    onehot = torch.zeros(len(groups), len(names), dtype=torch.float64)
    pos = {g: i for i, g in enumerate(names)}
    for i, g in enumerate(groups):
        onehot[i, pos[g]] = 1.0
    return counts @ onehot, names


class _Ridge:
    """Ridge fits of Y [S, N] on X [S, F] for every strength of a grid at once (eigenbasis of X^T X)."""

    def __init__(self, X: torch.Tensor, Y: torch.Tensor):
        evals, evecs = torch.linalg.eigh(X.T @ X)
        self.evals, self.evecs = evals.clamp(min=0.0), evecs
        self.proj = evecs.T @ (X.T @ Y)  # [F, N]
        self.scale = float(self.evals.mean()) if len(self.evals) else 1.0

    def weights(self, rel_lambda: float) -> torch.Tensor:
        """W [F, N] for ridge strength rel_lambda * mean eigenvalue (inf: zeros)."""
        if not np.isfinite(rel_lambda) or self.scale <= 0:
            return torch.zeros_like(self.proj)
        lam = rel_lambda * self.scale
        return self.evecs @ (self.proj / (self.evals + lam)[:, None])


def _fold_errors(d: torch.Tensor, feats: Sequence[torch.Tensor], train: Sequence[int], test: Sequence[int]):
    """Squared errors on the `test` runs of the mean trajectory and of every (feature set, ridge strength),
    fitted on the `train` runs. d [R, N, T]; feats: [R, T, F] each.
    Returns (sse_mean, sse [n_feats, n_grid], count)."""
    tr, te = list(train), list(test)
    mu = d[tr].mean(0)  # [N, T]
    resid_te = d[te] - mu  # [R_te, N, T]
    sse_mean = float((resid_te ** 2).sum())
    Y = (d[tr] - mu).permute(0, 2, 1).reshape(-1, d.shape[1])  # [R_tr * T, N]
    Yte = resid_te.permute(0, 2, 1).reshape(-1, d.shape[1])
    sse = torch.empty(len(feats), len(RIDGE_GRID), dtype=torch.float64)
    for f, X in enumerate(feats):
        fit = _Ridge(X[tr].reshape(-1, X.shape[-1]), Y)
        Xte = X[te].reshape(-1, X.shape[-1])
        for g, lam in enumerate(RIDGE_GRID):
            sse[f, g] = float(((Yte - Xte @ fit.weights(lam)) ** 2).sum())
    return sse_mean, sse, int(resid_te.numel())


def run_folds(runs: Sequence[int], k: int) -> list[list[int]]:
    """The runs in k interleaved folds (every k-th run), or one fold per run when there are at most k."""
    runs = list(runs)
    k = min(k, len(runs))
    return [runs[i::k] for i in range(k)]


def _jackknife_share_se(fold_sse: Sequence[tuple[float, float]]) -> float | None:
    """Jackknife standard error of 1 - sum(batch) / sum(mean) over folds [(sse_mean, sse_batch)]; None for fewer
    than 2 folds or no error to explain."""
    K = len(fold_sse)
    m = np.array([a for a, _ in fold_sse], dtype=np.float64)
    b = np.array([c for _, c in fold_sse], dtype=np.float64)
    if K < 2 or np.any(m.sum() - m <= 0):
        return None
    loo = 1.0 - (b.sum() - b) / (m.sum() - m)
    return float(np.sqrt((K - 1) / K * ((loo - loo.mean()) ** 2).sum()))


def batch_share(d: torch.Tensor, feats: Mapping[str, torch.Tensor], max_folds: int = 8) -> dict:
    """Cross-validated share of the per-step change that the batch explains beyond the mean trajectory.

    d: FloatTensor [R, N, T] one-step changes (R >= 3 runs); feats: name -> [R, T, F] batch features.
    The runs are held out fold by fold (leave-one-run-out up to max_folds runs, interleaved folds beyond);
    for every held-out fold the feature set and ridge strength are chosen by an inner cross-validation on the
    remaining runs only (inf strength = no batch effect), then fitted on all of them.
    share_explained_se: jackknife standard error of share_explained over the K held-out folds (the share recomputed
    with each fold left out, sqrt((K - 1) / K x sum of squared deviations)); batch_effect_measurable: share_explained
    above twice it.
    Returns {"mse_zero", "mse_mean", "mse_batch", "share_explained", "share_explained_se", "batch_effect_measurable",
    "share_mean_trajectory", "per_features": {name: {"mse_batch", "share_explained"}}, "chosen": [{"features",
    "ridge"}] per fold, "folds"}.
    """
    R = d.shape[0]
    if R < 3:
        raise DataError(f"the batch-effect fit needs at least 3 runs (leave-one-run-out with an inner fold), got {R}")
    names = list(feats)
    X = [feats[k].to(torch.float64) for k in names]
    d = d.to(torch.float64)
    tot_mean = tot_batch = 0.0
    tot_per = np.zeros(len(names))
    count = 0
    chosen, fold_sse = [], []  # fold_sse: (mean trajectory, batch fit) squared errors of every held-out fold
    for held in run_folds(range(R), max_folds):
        rest = [q for q in range(R) if q not in held]
        inner = torch.zeros(len(names), len(RIDGE_GRID), dtype=torch.float64)
        for fold in run_folds(rest, max_folds):  # inner cross-validation on the training runs only
            _, sse, _ = _fold_errors(d, X, [p for p in rest if p not in fold], fold)
            inner += sse
        f_best, g_best = divmod(int(torch.argmin(inner)), len(RIDGE_GRID))
        per_feature_best = inner.argmin(1).tolist()
        sse_mean, sse, n = _fold_errors(d, X, rest, held)
        tot_mean += sse_mean
        tot_batch += float(sse[f_best, g_best])
        fold_sse.append((sse_mean, float(sse[f_best, g_best])))
        tot_per += np.array([float(sse[f, per_feature_best[f]]) for f in range(len(names))])
        count += n
        chosen.append({"features": names[f_best], "ridge": RIDGE_GRID[g_best] if np.isfinite(RIDGE_GRID[g_best])
                       else None})
    mse_zero = float((d ** 2).mean())
    mse_mean, mse_batch = tot_mean / count, tot_batch / count
    share = lambda mse: 1.0 - mse / mse_mean if mse_mean > 0 else 0.0  # noqa: E731
    se = _jackknife_share_se(fold_sse)
    return {"mse_zero": mse_zero, "mse_mean": mse_mean, "mse_batch": mse_batch,
            "share_explained": share(mse_batch), "share_explained_se": se,
            "batch_effect_measurable": bool(se is not None and share(mse_batch) > 2.0 * se),
            "folds": len(fold_sse),
            "share_mean_trajectory": 1.0 - mse_mean / mse_zero if mse_zero > 0 else 0.0,
            "per_features": {k: {"mse_batch": float(tot_per[i] / count),
                                 "share_explained": float(share(tot_per[i] / count))} for i, k in enumerate(names)},
            "chosen": chosen}


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------

def deviation_persistence(values: torch.Tensor, mask: torch.Tensor) -> dict:
    """deviation_reversion, deviation_half_life and share_reversion (module docstring) of values [R, N, T] over the
    transitions recorded for every run and test example. Needs at least 2 runs."""
    full = mask.all(0).all(0)  # [T] steps recorded for every run and test example
    ok = full[1:] & full[:-1]
    e = values.double() - values.double().mean(0, keepdim=True)  # used only at complete steps
    now, change = e[..., :-1][..., ok], (e[..., 1:] - e[..., :-1])[..., ok]
    denom = float((now ** 2).sum())
    if values.shape[0] < 2 or denom == 0.0:
        return {"deviation_reversion": None, "deviation_half_life": None, "share_reversion": None}
    total = float((change ** 2).sum())
    if total <= 1e-10 * denom:  # the deviations never change (beyond float rounding): nothing to explain
        return {"deviation_reversion": 0.0, "deviation_half_life": None, "share_reversion": None}
    reversion = -float((now * change).sum()) / denom
    half = float(np.log(0.5) / np.log(1.0 - reversion)) if 0.0 < reversion < 1.0 else None
    return {"deviation_reversion": reversion, "deviation_half_life": half,
            "share_reversion": 1.0 - float(((change + reversion * now) ** 2).sum()) / total}


def _complete_transitions(values: torch.Tensor, mask: torch.Tensor, batches: torch.Tensor):
    """One-step changes [R, N, T-1] and their batches [R, T-1, M] over the transitions recorded for every run
    and test example (others are dropped). Returns (d, batches, number dropped)."""
    ok = (mask[..., 1:] & mask[..., :-1]).all(0).all(0)  # [T-1]
    d = values[..., 1:] - values[..., :-1]
    return d[..., ok], batches[:, 1:][:, ok], int((~ok).sum())


def _rank_agreement(final: np.ndarray) -> float | None:
    rhos = [spearman(final[a], final[b]) for a in range(len(final)) for b in range(a + 1, len(final))]
    rhos = [x for x in rhos if np.isfinite(x)]
    return float(np.mean(rhos)) if rhos else None


def dynamics_report(run_dirs: Sequence[str | os.PathLike], train_samples=None, test_samples=None,
                    raw_run_dirs: Sequence[str | os.PathLike] | None = None, metric: str = "loss",
                    groups: Sequence | None = None, accuracies: Mapping | None = None,
                    use_cache: bool = True) -> dict:
    """The dynamics report of a set of processed runs (see the module docstring for every figure).

    run_dirs: processed run dirs of one task (all of them: the report covers exactly these runs).
    train_samples / test_samples: the task's sample files (paths, or lists indexed by id); the training
        file sets the number of training ids and the default grouping (default_groups); optional.
    raw_run_dirs: the raw run dirs of the same runs: label accuracies are read from their run_done.json.
    accuracies: {"first": [...], "last": [...]} per run instead of raw_run_dirs.
    groups: a group per training id (overrides default_groups); None and no default: ids only.
    Returns a JSON-ready dict.
    """
    from .runs import load_runs

    train = _samples(train_samples, "train_samples")
    test = _samples(test_samples, "test_samples")
    rs = load_runs(run_dirs, metric, use_cache=use_cache)
    R, N, T = rs.values.shape
    if T < 2:
        raise DataError(f"{rs.names[0]}: need at least 2 recorded steps for a report, got {T}")
    if test is not None and int(rs.test_ids.max()) >= len(test):
        raise DataError(f"{rs.names[0]}: test id {int(rs.test_ids.max())} outside the test file ({len(test)} samples)")
    values, mask = rs.values.double(), rs.mask
    first = values[..., 0]
    last = values[..., -1]
    both = mask[..., 0] & mask[..., -1]
    better = (last > first) if metric in HIGHER_IS_BETTER else (last < first)
    rep: dict = {"metric": metric, "runs": R, "test_examples": N,
                 "steps": {"first": int(rs.steps[0]), "last": int(rs.steps[-1]), "recorded": T},
                 "metric_first": float(first[mask[..., 0]].mean()), "metric_last": float(last[mask[..., -1]].mean()),
                 "frac_improved": float(better[both].double().mean())}
    rep.update(_accuracy_figures(run_dirs, raw_run_dirs, accuracies, R))
    final = last.numpy()
    fmask = mask[..., -1].numpy()
    rep["final_spread"] = float(np.mean([final[r][fmask[r]].std() for r in range(R)]))
    rep["final_rank_agreement"] = _rank_agreement(final) if fmask.all() else None
    rep.update(_batch_figures(rs, values, mask, train, groups))
    rep.update(deviation_persistence(values, mask))
    return rep


def _accuracy_figures(run_dirs, raw_run_dirs, accuracies: Mapping | None, R: int) -> dict:
    """label_accuracy_first / _last (means over runs) and the last per run, from `accuracies`, the raw runs'
    run_done.json or the processed runs' source marks; {} when the runs recorded none."""
    if accuracies is not None:
        acc = dict(accuracies)
    else:
        acc = read_accuracies(raw_run_dirs) if raw_run_dirs else source_accuracies(run_dirs)
    if acc is None:
        return {}
    if len(acc["first"]) != R or len(acc["last"]) != R:
        raise DataError(f"label accuracies of {len(acc['first'])} runs for {R} processed runs (give the raw dirs "
                        f"of exactly the same runs)")
    return {"label_accuracy_first": float(np.mean(acc["first"])), "label_accuracy_last": float(np.mean(acc["last"])),
            "label_accuracy_last_per_run": [float(x) for x in acc["last"]]}


def _batch_figures(rs, values: torch.Tensor, mask: torch.Tensor, train, groups) -> dict:
    """How much of the one-step change the batch explains beyond the mean trajectory (batch_share) with
    membership counts per training id and per group as features."""
    R = values.shape[0]
    rep: dict = {}
    d, batches, dropped = _complete_transitions(values, mask, rs.batches)
    n_ids = len(train) if train is not None else int(rs.batches.max()) + 1
    if int(rs.batches.max()) >= n_ids:
        raise DataError(f"{rs.names[0]}: training id {int(rs.batches.max())} outside the training file "
                        f"({n_ids} samples)")
    counts = membership_counts(batches, n_ids)
    feats = {"ids": counts}
    grp = list(groups) if groups is not None else default_groups(train)
    if grp is not None:
        if len(grp) != n_ids:
            raise DataError(f"groups: {len(grp)} entries for {n_ids} training ids")
        feats["groups"], names = group_counts(counts, grp)
        rep["groups"] = [str(g) for g in names]
    else:  # said in the summary: the same runs reported with a sample file can read quite differently
        rep["no_groups"] = ("no training sample file given (--train_data_path)" if train is None else
                            "the training samples have no label or topic and many distinct targets")
    rep["transitions"] = int(d.shape[-1])
    rep["transitions_dropped"] = dropped
    if R >= 3 and d.shape[-1] > 0:
        rep.update(batch_share(d, feats))
    else:
        rep["share_explained"] = None
        log.warning("%d runs: the batch-effect fit needs at least 3 runs; share_explained not computed", R)
    return rep


def task_report(run_dirs: Sequence[str | os.PathLike], metrics: Sequence[str] = ("loss",), train_samples=None,
                test_samples=None, **kw) -> dict:
    """The report of the first metric (loss), with the others' first / last mean, fraction improved and share
    explained under "other_metrics"."""
    rep = dynamics_report(run_dirs, train_samples, test_samples, metric=metrics[0], **kw)
    keep = ("metric_first", "metric_last", "frac_improved", "final_spread", "final_rank_agreement", "mse_mean",
            "mse_batch", "share_explained", "share_explained_se", "batch_effect_measurable", "share_mean_trajectory",
            "deviation_reversion", "deviation_half_life")
    others = {}
    for m in metrics[1:]:
        r = dynamics_report(run_dirs, train_samples, test_samples, metric=m, **kw)
        others[m] = {k: r.get(k) for k in keep}
    if others:
        rep["other_metrics"] = others
    return rep


def _se_text(rep: dict) -> str:
    """' +- 0.4% (measurable)' / ' +- 1.2% (not told apart from 0)' from a report's share_explained_se."""
    se = rep.get("share_explained_se")
    if se is None:
        return ""
    verdict = "measurable" if rep.get("batch_effect_measurable") else "not told apart from 0"
    return f" +- {100 * se:.1f}% ({verdict})"


def format_report(rep: dict) -> list[str]:
    """Readable lines of a dynamics_report() result."""
    s = rep["steps"]
    better = "higher" if rep["metric"] in HIGHER_IS_BETTER else "lower"
    lines = [f"{rep['runs']} runs x {rep['test_examples']} test examples, recorded steps {s['first']}..{s['last']} "
             f"({s['recorded']})",
             f"mean {rep['metric']}: {rep['metric_first']:.4f} -> {rep['metric_last']:.4f}; {better} at the last step "
             f"for {100 * rep['frac_improved']:.1f}% of (run, test example)"]
    if "label_accuracy_first" in rep:
        lines.append(f"test label accuracy (label-word scoring): {rep['label_accuracy_first']:.3f} -> "
                     f"{rep['label_accuracy_last']:.3f} (mean over runs)")
    agree = rep["final_rank_agreement"]
    lines.append(f"final values: std across test examples {rep['final_spread']:.4f}; rank agreement between runs "
                 f"(Spearman) {'n/a' if agree is None else f'{agree:.3f}'}")
    if rep.get("share_explained") is not None:
        per = ", ".join(f"{k} {v['share_explained']:.3f}" for k, v in rep["per_features"].items())
        lines.append(f"one-step change ({rep['transitions']} transitions): mean trajectory explains "
                     f"{100 * rep['share_mean_trajectory']:.1f}% of it; the batch explains "
                     f"{100 * rep['share_explained']:.1f}%{_se_text(rep)} of what is left on held-out runs "
                     f"(MSE {rep['mse_mean']:.3g} -> {rep['mse_batch']:.3g}; by feature set: {per})"
                     + (f"; training ids only, no label / topic groups: {rep['no_groups']}" if rep.get("no_groups")
                        else ""))
    if rep.get("deviation_reversion") is not None:
        half = "n/a" if rep["deviation_half_life"] is None else f"{rep['deviation_half_life']:.1f} steps"
        share = rep["share_reversion"]
        lines.append(f"a run's deviation from the mean trajectory: {100 * rep['deviation_reversion']:.1f}% of it "
                     f"undone per recorded step (half-life {half})" + (
                         "; it never changes" if share is None else
                         f"; this explains {100 * share:.1f}% of the change beyond the mean trajectory"))
    for m, r in rep.get("other_metrics", {}).items():
        share = "n/a" if r.get("share_explained") is None else f"{100 * r['share_explained']:.1f}%{_se_text(r)}"
        lines.append(f"{m}: {r['metric_first']:.4f} -> {r['metric_last']:.4f}, better at the last step for "
                     f"{100 * r['frac_improved']:.1f}%; the batch explains {share} beyond the mean trajectory")
    return lines


def write_report(rep: dict, folder: str | os.PathLike) -> Path:
    """Write `rep` to <folder>/dynamics_report.json atomically; returns the path."""
    path = Path(folder) / REPORT_FILE
    write_json(path, rep)
    return path
