"""Processed run dirs -> stacked tensors (a RunSet), with a per-run on-disk cache.

    load_runs(run_dirs, metric="loss", test_ids=None, allow_nonfinite=False, use_cache=True) -> RunSet

RunSet fields (R runs, N test examples, T recorded steps, M training ids per transition):
    names     list[str]            the R run dirs, as given
    steps     LongTensor  [T]      recorded steps, ascending, union over runs (e.g. 1..96)
    test_ids  LongTensor  [N]      global test ids, in selection order
    values    FloatTensor [R,N,T]  metric values (loss in nats, BLEU 0-100, ROUGE 0-1); 0.0 where not recorded
    mask      BoolTensor  [R,N,T]  True where recorded (and finite)
    batches   LongTensor  [R,T,M]  training ids of the optimizer steps in (steps[t-1], steps[t]]
                                   (t = 0: steps 1..steps[0]), padded with -1
    metric    str
    num_gaps  int                  number of False entries of mask

The transition t-1 -> t is explained by batches[:, t]; batches[:, 0] is never used as a transition.

Cache: <run_dir>/.cache/<metric>.pt holds one run's tensors and a fingerprint (size, mtime_ns, inode of the
two source files + CACHE_VERSION). A stale, corrupt or unreadable cache is reported in the log and rebuilt;
it is written atomically.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path
from typing import Sequence

import torch

from .formats import read_samples_id, read_trajectories
from .io import DataError, atomic_open

log = logging.getLogger(__name__)

CACHE_VERSION = 1
SAMPLES_FILE = "train_samples_id.json"


def trajectory_file(run_dir: str | os.PathLike, metric: str) -> Path:
    return Path(run_dir) / f"all_{metric}_trajectory.out"


# ----------------------------------------------------------------------------------------------
# One run (what the cache holds)
# ----------------------------------------------------------------------------------------------

def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """LongTensor [len(rows), max len] padded with -1."""
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def build_run_tensors(run_dir: str | os.PathLike, metric: str) -> dict:
    """Read one processed run dir into tensors (no cache).

    Returns {"opt_steps": Long [S], "samples": Long [S, B] (-1 padded), "ids": Long [N] ascending,
    "rec_steps": Long [T_r] ascending, "values": Float [N, T_r] (0 where absent, non-finite kept),
    "mask": Bool [N, T_r]}.
    """
    run_dir = Path(run_dir)
    samples = read_samples_id(run_dir / SAMPLES_FILE)
    traj = read_trajectories(trajectory_file(run_dir, metric), metric)
    if not traj:
        raise DataError(f"{trajectory_file(run_dir, metric)}: no test examples "
                        f"(expected lines {{'id': .., 'loss_trajectory': [..]}})")
    ids = sorted(traj)
    first = list(map(itemgetter(0), traj[ids[0]]))
    if first == sorted(first) and all(list(map(itemgetter(0), traj[t])) == first for t in ids):
        # common case: every test id recorded at the same steps
        values = torch.tensor([list(map(itemgetter(1), traj[t])) for t in ids], dtype=torch.float64).float()
        values = values.reshape(len(ids), len(first))
        mask = torch.ones(values.shape, dtype=torch.bool)
        rec_steps = first
    else:
        rec_steps, values, mask = _scatter_points(traj, ids)
    return {"opt_steps": torch.tensor(list(samples), dtype=torch.long), "samples": _pad(list(samples.values())),
            "ids": torch.tensor(ids, dtype=torch.long), "rec_steps": torch.tensor(rec_steps, dtype=torch.long),
            "values": values, "mask": mask}


def _scatter_points(traj: dict, ids: list) -> tuple[list, torch.Tensor, torch.Tensor]:
    """Recorded steps (union), values Float [N, T_r] and mask Bool [N, T_r] of ragged trajectories."""
    rec_steps = sorted({s for pts in traj.values() for s, _ in pts})
    col = {s: j for j, s in enumerate(rec_steps)}
    rows, cols, vals = [], [], []
    for i, tid in enumerate(ids):
        for s, v in traj[tid]:
            rows.append(i)
            cols.append(col[s])
            vals.append(v)
    values = torch.zeros(len(ids), len(rec_steps), dtype=torch.float32)
    mask = torch.zeros(len(ids), len(rec_steps), dtype=torch.bool)
    r, c = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
    values[r, c] = torch.tensor(vals, dtype=torch.float64).float()
    mask[r, c] = True
    return rec_steps, values, mask


def source_fingerprint(run_dir: str | os.PathLike, metric: str) -> list:
    """[(file name, size, mtime_ns, inode)] of the two source files, plus the cache version."""
    fp: list = [CACHE_VERSION]
    for p in (Path(run_dir) / SAMPLES_FILE, trajectory_file(run_dir, metric)):
        st = p.stat()
        fp.append([p.name, st.st_size, st.st_mtime_ns, st.st_ino])
    return fp


def cache_path(run_dir: str | os.PathLike, metric: str) -> Path:
    return Path(run_dir) / ".cache" / f"{metric}.pt"


def _valid_cache(obj, fp) -> str | None:
    """None when obj is a usable cache for fingerprint fp, else the reason it is not."""
    keys = ("opt_steps", "samples", "ids", "rec_steps", "values", "mask")
    if not isinstance(obj, dict) or any(not isinstance(obj.get(k), torch.Tensor) for k in keys):
        return "corrupt (missing fields)"
    if obj.get("fingerprint") != fp:
        return "stale (source files changed)"
    n, t = len(obj["ids"]), len(obj["rec_steps"])
    if obj["values"].shape != (n, t) or obj["mask"].shape != (n, t) or len(obj["samples"]) != len(obj["opt_steps"]):
        return "corrupt (inconsistent shapes)"
    return None


def load_run(run_dir: str | os.PathLike, metric: str = "loss", use_cache: bool = True) -> dict:
    """One run's tensors (see build_run_tensors), from the cache when it is valid.

    Raises DataError naming the run dir / file when the run dir or a source file is missing.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: run directory not found (expected a processed run dir with {SAMPLES_FILE} "
                        f"and all_{metric}_trajectory.out; make one with utils/construct_runs-data*.py)")
    for p in (run_dir / SAMPLES_FILE, trajectory_file(run_dir, metric)):
        if not p.is_file():
            raise DataError(f"{p}: file not found (expected in a processed run dir; utils/construct_runs-data"
                            f"{'' if metric == 'loss' else '-metric'}.py writes it)")
    if not use_cache:
        return build_run_tensors(run_dir, metric)
    fp, cpath = source_fingerprint(run_dir, metric), cache_path(run_dir, metric)
    if cpath.is_file():
        try:
            obj = torch.load(cpath, map_location="cpu", weights_only=True)
            reason = _valid_cache(obj, fp)
        except Exception as e:  # any unreadable file is a corrupt cache
            reason = f"corrupt ({type(e).__name__})"
        if reason is None:
            return obj
        log.warning("%s: cache %s; rebuilding it", cpath, reason)
    data = build_run_tensors(run_dir, metric)
    try:
        with atomic_open(cpath, "wb") as f:
            torch.save(dict(data, fingerprint=fp, metric=metric), f)
    except OSError as e:
        log.warning("%s: could not write the cache (%s); continuing without it", cpath, e)
    return data


# ----------------------------------------------------------------------------------------------
# The run set
# ----------------------------------------------------------------------------------------------

def _as_index(idx, n: int) -> torch.Tensor:
    if idx is None:
        return torch.arange(n)
    if isinstance(idx, slice):
        return torch.arange(n)[idx]
    if isinstance(idx, int):
        idx = [idx]
    return torch.as_tensor(idx, dtype=torch.long).reshape(-1).cpu()


@dataclass
class RunSet:
    """R runs x N test examples x T recorded steps of one metric (see the module docstring for shapes)."""
    names: list
    steps: torch.Tensor
    test_ids: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor
    batches: torch.Tensor
    metric: str

    @property
    def num_gaps(self) -> int:
        """Entries of [R, N, T] without a recorded (finite) value."""
        return int((~self.mask).sum())

    @property
    def num_runs(self) -> int:
        return len(self.names)

    def subset(self, run_idx=None, test_idx=None) -> "RunSet":
        """A RunSet of some runs (indices into names) and / or some test examples (indices into test_ids)."""
        r = _as_index(run_idx, len(self.names))
        n = _as_index(test_idx, len(self.test_ids))
        dev = self.values.device
        rd, nd = r.to(dev), n.to(dev)
        return replace(self, names=[self.names[i] for i in r.tolist()], test_ids=self.test_ids[nd],
                       values=self.values[rd][:, nd], mask=self.mask[rd][:, nd], batches=self.batches[rd])

    def to(self, device) -> "RunSet":
        return replace(self, steps=self.steps.to(device), test_ids=self.test_ids.to(device),
                       values=self.values.to(device), mask=self.mask.to(device), batches=self.batches.to(device))

    def __repr__(self) -> str:
        r, n, t = self.values.shape
        return (f"RunSet(metric={self.metric!r}, runs={r}, test={n}, steps={t} "
                f"[{int(self.steps[0]) if t else '-'}..{int(self.steps[-1]) if t else '-'}], "
                f"batch width={self.batches.shape[-1]}, gaps={self.num_gaps})")


def _check_same_opt_steps(names: Sequence[str], runs: Sequence[dict]) -> None:
    ref = runs[0]["opt_steps"]
    for name, run in zip(names[1:], runs[1:]):
        cur = run["opt_steps"]
        if torch.equal(ref, cur):
            continue
        a, b = set(ref.tolist()), set(cur.tolist())
        only_a, only_b = sorted(a - b), sorted(b - a)
        raise DataError(f"runs differ in their optimizer steps ({SAMPLES_FILE}): {names[0]} has {len(a)} steps, "
                        f"{name} has {len(b)}; only in the first: {only_a[:10]}, only in the second: {only_b[:10]}"
                        f" (expected every run of a set to log the same steps)")


def _select_ids(names, runs, test_ids, metric) -> torch.Tensor:
    if test_ids is None:
        sel = torch.unique(torch.cat([r["ids"] for r in runs]))
    else:
        sel = torch.as_tensor(list(test_ids) if not torch.is_tensor(test_ids) else test_ids,
                              dtype=torch.long).reshape(-1)
        if len(torch.unique(sel)) != len(sel):
            raise DataError(f"test id selection has repeated ids: {sel.tolist()[:20]}")
    if len(sel) == 0:
        raise DataError("empty test id selection (expected at least one test id)")
    for name, run in zip(names, runs):
        pos = _positions(run["ids"], sel)
        if (pos < 0).any():
            missing = sel[pos < 0].tolist()
            raise DataError(f"{name}: {len(missing)} selected test ids not in all_{metric}_trajectory.out: "
                            f"{missing[:20]}{' ...' if len(missing) > 20 else ''}")
    return sel


def _positions(sorted_ids: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Index of each query id in sorted_ids, -1 where absent."""
    pos = torch.searchsorted(sorted_ids, query).clamp(max=max(len(sorted_ids) - 1, 0))
    found = sorted_ids[pos] == query if len(sorted_ids) else torch.zeros_like(query, dtype=torch.bool)
    return torch.where(found, pos, torch.full_like(pos, -1))


def _group_batches(run: dict, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten one run's batches onto recorded-step slots: (slot t, position in slot, training id), each [K]."""
    samples, opt = run["samples"], run["opt_steps"]
    slot = torch.searchsorted(steps, opt)                   # steps[t-1] < s <= steps[t]
    keep = (samples >= 0) & (slot < len(steps)).unsqueeze(1)
    t = slot.unsqueeze(1).expand_as(samples)[keep]          # ascending (opt steps are sorted)
    ids = samples[keep]
    counts = torch.bincount(t, minlength=len(steps))
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(t)) - starts[t]
    return t, pos, ids


def load_runs(run_dirs: Sequence[str | os.PathLike], metric: str = "loss", test_ids=None,
              allow_nonfinite: bool = False, use_cache: bool = True) -> RunSet:
    """Load processed run dirs into one RunSet (shapes in the module docstring).

    test_ids: None -> every test id (sorted; each run must hold all of them); else those ids in that order.
    Raises DataError: missing dir / file (named); runs with different optimizer steps (both named); a
    selected id missing from a run (run and ids named); an empty selection; non-finite values (counts per
    run) unless allow_nonfinite, which masks them instead.
    """
    names = [str(d) for d in run_dirs]
    if not names:
        raise DataError("no run dirs given (expected processed run dirs)")
    runs = [load_run(d, metric, use_cache) for d in run_dirs]
    _check_same_opt_steps(names, runs)
    sel = _select_ids(names, runs, test_ids, metric)
    steps = torch.unique(torch.cat([r["rec_steps"] for r in runs]))
    values, mask = _stack_values(runs, sel, steps)
    _handle_nonfinite(names, sel, steps, values, mask, allow_nonfinite)
    values.masked_fill_(~mask, 0.0)
    return RunSet(names=names, steps=steps, test_ids=sel, values=values, mask=mask,
                  batches=_stack_batches(runs, steps), metric=metric)


def _stack_values(runs: Sequence[dict], sel: torch.Tensor, steps: torch.Tensor):
    """values Float [R, N, T] and mask Bool [R, N, T] on the common (selected ids, union steps) grid.

    Few, whole-tensor operations (small per-run indexing ops are slow when the CPU is oversubscribed).
    """
    same = all(torch.equal(r["rec_steps"], steps) and torch.equal(r["ids"], sel) for r in runs)
    if same:  # the common case: every run holds the selected ids (sorted) at every step
        return torch.stack([r["values"] for r in runs]), torch.stack([r["mask"] for r in runs])
    R, N, T = len(runs), len(sel), len(steps)
    values = torch.zeros(R, N, T, dtype=torch.float32)
    mask = torch.zeros(R, N, T, dtype=torch.bool)
    for i, run in enumerate(runs):
        rows, cols = _positions(run["ids"], sel), torch.searchsorted(steps, run["rec_steps"])
        values[i].index_copy_(1, cols, run["values"].index_select(0, rows))
        mask[i].index_copy_(1, cols, run["mask"].index_select(0, rows))
    return values, mask


def _stack_batches(runs: Sequence[dict], steps: torch.Tensor) -> torch.Tensor:
    """batches Long [R, T, M] (see the module docstring); one scatter for all runs."""
    groups = [_group_batches(run, steps) for run in runs]
    width = max((int(g[1].max()) + 1 for g in groups if len(g[1])), default=0)
    batches = torch.full((len(runs), len(steps), width), -1, dtype=torch.long)
    if width:
        run_idx = torch.cat([torch.full_like(g[0], i) for i, g in enumerate(groups)])
        t, pos, ids = (torch.cat([g[k] for g in groups]) for k in range(3))
        batches[run_idx, t, pos] = ids
    return batches


def _handle_nonfinite(names, sel, steps, values, mask, allow_nonfinite) -> None:
    bad = mask & ~torch.isfinite(values)
    if not bad.any():
        return
    per_run = bad.flatten(1).sum(1)
    parts = []
    for i in torch.nonzero(per_run).flatten().tolist():
        n, t = torch.nonzero(bad[i])[0].tolist()
        parts.append(f"{names[i]}: {int(per_run[i])} (first: test id {int(sel[n])}, step {int(steps[t])})")
    if not allow_nonfinite:
        raise DataError(f"{int(per_run.sum())} non-finite values: " + "; ".join(parts[:10])
                        + (f"; +{len(parts) - 10} more runs" if len(parts) > 10 else "")
                        + " (pass --allow_nonfinite to mask them)")
    log.warning("masking %d non-finite values: %s", int(per_run.sum()), "; ".join(parts[:10]))
    mask &= ~bad


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------

def find_run_dirs(runs_root: str | os.PathLike, task: str) -> list[Path]:
    """Sorted processed run dirs <runs_root>/<task>/* holding train_samples_id.json."""
    root = Path(runs_root) / task
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (expected processed run dirs of task {task!r})")
    dirs = sorted(p for p in root.iterdir() if (p / SAMPLES_FILE).is_file())
    if not dirs:
        raise DataError(f"{root}: no processed run dirs (expected sub-folders with {SAMPLES_FILE})")
    return dirs


def validate_ids(runset: RunSet, n_train: int, n_test: int | None = None, train_file=None, test_file=None) -> None:
    """Check every training id in runset.batches lies in 0..n_train-1 and every test id in 0..n_test-1.

    Raises DataError naming the run dir, the step and the id (and the sample file when given).
    """
    b = runset.batches
    bad = (b >= n_train) | (b < -1)
    if bad.any():
        r, t, m = torch.nonzero(bad)[0].tolist()
        hi = int(runset.steps[t])
        lo = int(runset.steps[t - 1]) + 1 if t > 0 else 1
        where = f"step {hi}" if lo >= hi else f"steps {lo}..{hi}"
        raise DataError(f"{runset.names[r]}: {where}: training id {int(b[r, t, m])} outside "
                        f"{train_file or 'the training sample file'} (expected ids 0..{n_train - 1})")
    if n_test is not None:
        tid = runset.test_ids
        badt = (tid < 0) | (tid >= n_test)
        if badt.any():
            bad_ids = tid[badt].tolist()
            raise DataError(f"{runset.names[0]}: test ids {bad_ids[:10]} outside "
                            f"{test_file or 'the test sample file'} (expected ids 0..{n_test - 1})")


_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_id_ranges(text: str) -> list[int]:
    """"0-99,150-199,7" -> [0, ..., 99, 150, ..., 199, 7] (inclusive ranges, in the order given).

    Raises DataError on bad syntax, a reversed range or a repeated id.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if not text or not str(text).strip() or any(not p for p in parts):
        raise DataError(f"bad id selection {text!r} (expected e.g. '0-99,150-199,7')")
    out: list[int] = []
    for p in parts:
        m = _RANGE.match(p)
        if p.isdigit():
            out.append(int(p))
        elif m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise DataError(f"bad id range {p!r} in {text!r} (expected start <= end)")
            out.extend(range(a, b + 1))
        else:
            raise DataError(f"bad id selection item {p!r} in {text!r} (expected N or N-M, N and M integers >= 0)")
    if len(set(out)) != len(out):
        raise DataError(f"id selection {text!r} repeats ids")
    return out
