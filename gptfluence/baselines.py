"""Gradient-based baselines of the paper (reference/gptfluence.md, section 6): TracIn-CP and Grad-Dot.

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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from .formats import parse_log_records
from .io import DataError, read_json

log = logging.getLogger(__name__)

METHODS = ("tracin_cp", "grad_dot")
GRADS_DIR = "grads"
FINAL_FILE = "grads_final.pt"
_STEP_FILE = re.compile(r"^grads_step-(\d+)\.pt$")
_MARKER = ".complete"  # gptfluence.preprocess.MARKER (its "source" names the raw run dir)
REMAKE_HINT = ("re-make the runs with `utils/make_runs.py --grad_features` (add `--grad_steps all` for "
               "TracIn-CP(all))")


# ----------------------------------------------------------------------------------------------
# Names and checks
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# Gradient feature files
# ----------------------------------------------------------------------------------------------

class StepGrads(NamedTuple):
    """Features at one set of parameters. Rows are indexed BY ID: train[i] is training id i's
    feature (zeros for ids absent from the file), test[j] test id j's. Float32."""
    lr: float               # learning rate of the update computed from these parameters (0 for final)
    train: torch.Tensor     # [max train id + 1, D]
    test: torch.Tensor      # [max test id + 1, D]


@dataclass
class GradFeatures:
    """The gradient features of one run.

    steps: optimizer step t -> StepGrads at theta_{t-1} (only the steps loaded); final: at the final
    parameters (None if not loaded); train_ids / test_ids: LongTensor of the ids the files hold;
    available: every step with a grads_step file; grads_dir: where they were found.
    """
    grads_dir: Path
    steps: dict = field(default_factory=dict)
    final: StepGrads | None = None
    train_ids: torch.Tensor | None = None
    test_ids: torch.Tensor | None = None
    available: list = field(default_factory=list)

    @property
    def dim(self) -> int:
        any_g = self.final if self.final is not None else next(iter(self.steps.values()), None)
        return 0 if any_g is None else int(any_g.train.shape[1])


def _raw_dir_candidates(run_dir: Path, raw_root) -> list[Path]:
    """Folders that may hold the raw files of a (processed or raw) run dir, in search order:
    the dir itself, <raw_root>/<basename>, the raw dir named in the processed dir's .complete marker."""
    out = [run_dir]
    if raw_root is not None:
        out.append(Path(raw_root) / run_dir.name)
    marker = run_dir / _MARKER
    if marker.is_file():
        try:
            src = read_json(marker).get("source")
        except (DataError, AttributeError):
            src = None
        if src:
            out.append(Path(src))
    seen, uniq = set(), []
    for p in out:
        if str(p) not in seen:
            seen.add(str(p))
            uniq.append(p)
    return uniq


def find_grads_dir(run_dir: str | os.PathLike, raw_root: str | os.PathLike | None = None) -> Path:
    """The grads/ folder of a run: <run_dir>/grads (a processed dir may hold a copy), else
    <raw_root>/<basename(run_dir)>/grads, else <raw dir named in run_dir/.complete>/grads.

    Raises DataError naming every path searched and how to make the features.
    """
    run_dir = Path(run_dir)
    searched = []
    for cand in _raw_dir_candidates(run_dir, raw_root):
        g = cand / GRADS_DIR
        searched.append(str(g))
        if g.is_dir() and (any(_STEP_FILE.match(p.name) for p in g.iterdir()) or (g / FINAL_FILE).is_file()):
            return g
    hint = "" if raw_root is not None else " (pass --raw_root if the raw run dirs live elsewhere)"
    raise DataError(f"{run_dir}: no gradient features found (searched {', '.join(searched)}){hint}; "
                    f"TracIn-CP / Grad-Dot need them: {REMAKE_HINT}")


def list_grad_steps(grads_dir: str | os.PathLike) -> list[int]:
    """Sorted optimizer steps t with a grads_step-<t>.pt file."""
    return sorted(int(m.group(1)) for p in Path(grads_dir).iterdir() if (m := _STEP_FILE.match(p.name)))


def _by_id(feats: torch.Tensor, ids: torch.Tensor, path: Path, what: str) -> torch.Tensor:
    """Scatter rows [n, D] to rows indexed by id: [max id + 1, D] float32."""
    if ids.dim() != 1 or len(ids) != feats.shape[0]:
        raise DataError(f"{path}: '{what}' has {feats.shape[0]} rows but '{what}_ids' has {len(ids)} ids "
                        "(expected one id per row)")
    if len(ids) and int(ids.min()) < 0:
        raise DataError(f"{path}: negative id {int(ids.min())} in '{what}_ids'")
    if len(torch.unique(ids)) != len(ids):
        raise DataError(f"{path}: repeated ids in '{what}_ids'")
    out = torch.zeros(int(ids.max()) + 1 if len(ids) else 0, feats.shape[1], dtype=torch.float32)
    out[ids] = feats.float()
    return out


def read_grads_file(path: str | os.PathLike) -> tuple[StepGrads, torch.Tensor, torch.Tensor]:
    """One grads_*.pt file -> (StepGrads, train_ids [n_pool], test_ids [n_test]).

    Raises DataError naming the file if it is unreadable or lacks / misshapes a field.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataError(f"{path}: unreadable gradient feature file ({type(e).__name__}: {e}); {REMAKE_HINT}") from None
    need = ("learning_rate", "train", "test", "train_ids", "test_ids")
    if not isinstance(obj, dict) or any(k not in obj for k in need):
        have = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise DataError(f"{path}: expected a dict with {', '.join(need)} (found {have})")
    tr, te = obj["train"], obj["test"]
    if not (torch.is_tensor(tr) and torch.is_tensor(te) and tr.dim() == 2 and te.dim() == 2
            and tr.shape[1] == te.shape[1]):
        raise DataError(f"{path}: 'train' and 'test' must be 2-d tensors [n, D] with the same D "
                        f"(found {getattr(tr, 'shape', None)} and {getattr(te, 'shape', None)})")
    train_ids = torch.as_tensor(obj["train_ids"], dtype=torch.long)
    test_ids = torch.as_tensor(obj["test_ids"], dtype=torch.long)
    g = StepGrads(float(obj["learning_rate"]), _by_id(tr, train_ids, path, "train"),
                  _by_id(te, test_ids, path, "test"))
    return g, train_ids, test_ids


def read_grads_lr(path: str | os.PathLike) -> float:
    """The "learning_rate" of one grads file, read lazily (memory-mapped: the tensors stay on disk)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return float(obj["learning_rate"])
    except Exception as e:
        raise DataError(f"{path}: cannot read 'learning_rate' ({type(e).__name__}: {e}); {REMAKE_HINT}") from None


def load_grad_features(run_dir: str | os.PathLike, raw_root: str | os.PathLike | None = None,
                       steps: Sequence[int] | None = None, final: bool = True) -> GradFeatures:
    """Load a run's gradient features (see find_grads_dir for where they are looked for).

    steps: the optimizer steps to load (None: every grads_step file); final: also load grads_final.pt.
    Every file must hold the same train / test ids and feature size D. Raises DataError (with the
    make_runs hint) when the features, a requested step or the final file are missing.
    """
    gdir = find_grads_dir(run_dir, raw_root)
    out = GradFeatures(grads_dir=gdir, available=list_grad_steps(gdir))
    want = out.available if steps is None else sorted(set(int(s) for s in steps))
    missing = sorted(set(want) - set(out.available))
    if missing:
        raise DataError(f"{gdir}: no gradient features for steps {missing[:10]}{' ...' if len(missing) > 10 else ''}"
                        f" (found {len(out.available)} grads_step files); {REMAKE_HINT}")
    paths = [(s, gdir / f"grads_step-{s}.pt") for s in want]
    if final:
        if not (gdir / FINAL_FILE).is_file():
            raise DataError(f"{gdir / FINAL_FILE}: file not found (Grad-Dot needs the final-model features); "
                            f"{REMAKE_HINT}")
        paths.append((None, gdir / FINAL_FILE))
    for s, p in paths:
        g, tr_ids, te_ids = read_grads_file(p)
        if out.train_ids is None:
            out.train_ids, out.test_ids, first = tr_ids, te_ids, p
        elif not (torch.equal(tr_ids, out.train_ids) and torch.equal(te_ids, out.test_ids)):
            raise DataError(f"{p}: train / test ids differ from those of {first} (expected one set of ids per run)")
        elif g.train.shape[1] != out.dim:
            raise DataError(f"{p}: feature size {g.train.shape[1]} differs from {out.dim} in {first}")
        if s is None:
            out.final = g
        else:
            out.steps[s] = g
    return out


def read_log_learning_rates(run_dir: str | os.PathLike, raw_root: str | os.PathLike | None = None
                            ) -> dict[int, float]:
    """step -> 'learning_rate' of the run's raw log.out (searched as for find_grads_dir); {} when no
    log.out is found or it records no learning rates. The last record of a repeated step wins."""
    for cand in _raw_dir_candidates(Path(run_dir), raw_root):
        path = cand / "log.out"
        if not path.is_file():
            continue
        lrs: dict[int, float] = {}
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, start=1):
                try:
                    recs = parse_log_records(line)
                except ValueError as e:
                    raise DataError(f"{path}:{lineno}: {e}") from None
                for rec in recs:
                    if "learning_rate" in rec and "step" in rec:
                        lrs[int(rec["step"])] = float(rec["learning_rate"])
        return lrs
    return {}


# ----------------------------------------------------------------------------------------------
# Influence (pure tensor functions)
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# One run, many runs
# ----------------------------------------------------------------------------------------------

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

    from .runs import load_run

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


# ----------------------------------------------------------------------------------------------
# Per-example TracIn-CP scores (counterfactual checks, mislabelled-data detection)
# ----------------------------------------------------------------------------------------------

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
