"""Raw run dirs (GPTDynamics layout) -> processed run dirs, shared by utils/construct_runs-data*.py.

One raw run dir (see formats.py) becomes <output_root>/<task>/<raw run dir name>/ holding
    train_samples_id.json           {"step": s, "samples_id": [..]} for every optimizer step in log.out
    all_<metric>_trajectory.out     {"id": i, "loss_trajectory": [{"step": s, "loss": v}, ...]} per test id
    .complete                       written last: format version + fingerprint of the source files

Rules (each one is reported in the per-run summary, never silently applied):
- Steps come from the files: the optimizer steps are those of log.out, the recorded steps of a metric are
  those with a checkpoint file. A log step without a checkpoint file is a *step gap*: the step is absent
  from every trajectory of that metric (values are never shifted onto other steps).
- A test id missing from one checkpoint file is a *per-example gap* at that step.
- A checkpoint file whose step is not in log.out (and is not step 0) is an *orphan*: dropped, reported.
- A step logged twice in log.out keeps its last line (reported).
- Non-finite values are refused (DataError with counts per file) unless allow_nonfinite, in which case they
  are dropped as per-example gaps and counted.
- Exactly repeated values are kept as they are.
- Instruction tuning (FLAN): one loss_/metric_ folder per sub-task with task-local ids; the global test id
  is local id + offset (formats.FLAN_TEST_OFFSETS).
- An output dir with a .complete marker is skipped unless overwrite; without the marker (an interrupted
  job) it is redone. Every output file is written atomically.

This module does not import torch (its worker processes start fast).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .formats import FLAN_TEST_OFFSETS, list_checkpoints, read_checkpoint, read_log, write_processed_run
from .io import DataError, read_json, write_json

log = logging.getLogger(__name__)

PREPROCESS_VERSION = 1
MARKER = ".complete"
RUN_ARGS, RUN_DONE = "run_args.json", "run_done.json"  # the run maker's start / completion marks
DEFAULT_METRICS = ("loss",)
ALL_METRICS = ("loss", "bleu", "rougeL", "rouge1", "rouge2")
FLAN_TASKS = tuple(FLAN_TEST_OFFSETS)


@dataclass
class RunReport:
    """What happened to one run. Gap counts are per metric; steps are optimizer steps."""
    name: str
    out_dir: str
    status: str  # "processed", "skipped" (complete before) or "incomplete" (raw run still being written)
    n_log_steps: int = 0
    n_recorded_steps: dict = field(default_factory=dict)   # metric -> recorded steps
    n_test: dict = field(default_factory=dict)             # metric -> test examples
    step_gaps: dict = field(default_factory=dict)          # metric -> log steps without a checkpoint file
    example_gaps: dict = field(default_factory=dict)       # metric -> (id, step) pairs missing in a file
    nonfinite_dropped: dict = field(default_factory=dict)  # metric -> non-finite values dropped
    repeated_steps: list = field(default_factory=list)     # steps logged more than once (last line kept)
    orphan_steps: list = field(default_factory=list)       # checkpoint steps absent from log.out
    n_unrelated_lines: int = 0
    stale: bool = False                                    # skipped although the sources changed


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------

def metric_kind(run_dir: Path, task: str, metric: str) -> str:
    """Which raw folder a metric is read from: "loss" from loss_<task>/ when it exists (else from
    metric_<task>/), every other metric from metric_<task>/."""
    if metric == "loss" and list_checkpoints(run_dir, task, "loss"):
        return "loss"
    return "metric"


def collect_sources(run_dir: Path, metrics: Sequence[str], subtasks: Mapping[str, int]) -> dict:
    """(metric, subtask) -> {step: checkpoint path}. Raises DataError naming the missing folder."""
    sources = {}
    for metric in metrics:
        for task in subtasks:
            kind = metric_kind(run_dir, task, metric)
            files = list_checkpoints(run_dir, task, kind)
            if not files:
                folder = run_dir / f"{kind}_{task}"
                raise DataError(f"{folder}: no checkpoint files (expected {kind}_{task}_checkpoint-<step>.out "
                                f"files holding {metric!r} for every test example)")
            sources[(metric, task)] = (kind, files)
    return sources


def fingerprint(run_dir: Path, sources: dict, metrics: Sequence[str], subtasks: Mapping[str, int]) -> str:
    """sha1 over (relative path, size, mtime_ns) of log.out and every checkpoint file, plus the settings."""
    paths = {run_dir / "log.out"}
    for _, files in sources.values():
        paths.update(files.values())
    items = []
    for p in sorted(paths):
        st = p.stat()
        items.append([str(p.relative_to(run_dir)), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"version": PREPROCESS_VERSION, "metrics": sorted(metrics),
                       "subtasks": dict(subtasks), "files": items}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def is_complete(out_dir: Path, metrics: Sequence[str]) -> tuple[bool, str | None]:
    """(True, fingerprint) when out_dir holds a valid marker covering `metrics`."""
    marker = out_dir / MARKER
    if not marker.is_file():
        return False, None
    try:
        info = read_json(marker)
    except DataError:
        return False, None
    if not isinstance(info, dict) or info.get("version") != PREPROCESS_VERSION:
        return False, None
    done = set(info.get("metrics", []))
    if not set(metrics) <= done:
        return False, None
    if not all((out_dir / f"all_{m}_trajectory.out").is_file() for m in metrics):
        return False, None
    return True, info.get("fingerprint")


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------

def _read_metric(metric, per_task_files, subtasks, log_steps, allow_nonfinite, report):
    """Read every checkpoint file of one metric: returns global id -> [(step, value)] (steps ascending)."""
    recorded = sorted({s for _, files in per_task_files for s in files})
    orphans = [s for s in recorded if s not in log_steps and s != 0]
    recorded = [s for s in recorded if s not in orphans]
    report.orphan_steps = sorted(set(report.orphan_steps) | set(orphans))
    traj: dict[int, list] = {}
    nonfinite: dict[str, int] = {}
    present: dict[int, int] = {}
    owner: dict[int, str] = {}
    for task, files in per_task_files:
        offset = subtasks[task]
        for step in recorded:
            if step not in files:
                continue
            vals = read_checkpoint(files[step], [metric])[metric]
            _check_owner(owner, vals, offset, task, files[step])
            bad = 0
            for tid, v in vals.items():
                if not math.isfinite(v):
                    bad += 1
                    continue
                traj.setdefault(tid + offset, []).append((step, v))
            for tid in vals:
                present[tid + offset] = present.get(tid + offset, 0) + 1
            if bad:
                nonfinite[str(files[step])] = bad
    if nonfinite and not allow_nonfinite:
        total = sum(nonfinite.values())
        listing = "; ".join(f"{p}: {n}" for p, n in list(nonfinite.items())[:10])
        more = f" (+{len(nonfinite) - 10} more files)" if len(nonfinite) > 10 else ""
        raise DataError(f"{total} non-finite {metric!r} values in {len(nonfinite)} checkpoint files: "
                        f"{listing}{more}. Pass --allow_nonfinite to drop them as gaps.")
    for tid in present:
        traj.setdefault(tid, [])
    for pts in traj.values():
        pts.sort()
    n_steps = len(recorded)
    report.n_recorded_steps[metric] = n_steps
    report.n_test[metric] = len(traj)
    recorded_set = set(recorded)
    report.step_gaps[metric] = [s for s in log_steps if s not in recorded_set]
    report.nonfinite_dropped[metric] = sum(nonfinite.values())
    report.example_gaps[metric] = sum(n_steps - len(p) for p in traj.values()) - report.nonfinite_dropped[metric]
    return traj


def _check_owner(owner: dict, vals: Mapping[int, float], offset: int, task: str, path: Path) -> None:
    """Global ids of different sub-tasks must not collide (local id + offset)."""
    for tid in vals:
        other = owner.setdefault(tid + offset, task)
        if other != task:
            raise DataError(f"{path}: local id {tid} of {task!r} maps to global id {tid + offset}, already used by "
                            f"{other!r} (expected local ids below the next sub-task's offset)")


def preprocess_run(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, task: str,
                   metrics: Sequence[str] = DEFAULT_METRICS, subtasks: Mapping[str, int] | None = None,
                   allow_nonfinite: bool = False, overwrite: bool = False, train_id_offset: int = 0) -> RunReport:
    """Convert one raw run dir into a processed run dir (see the module docstring for the rules).

    subtasks: sub-task name -> global test-id offset (FLAN); None means {task: 0}.
    train_id_offset: added to every training id (out-of-distribution runs whose training examples sit at
    ids offset.. of a larger pool file, e.g. 1200 in the FLAN pool).
    Returns a RunReport; raises DataError naming the path and what was expected on bad input.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    subtasks = dict(subtasks) if subtasks else {task: 0}
    report = RunReport(name=raw_dir.name, out_dir=str(out_dir), status="processed")
    if raw_dir.is_dir() and still_being_written(raw_dir):
        report.status = "incomplete"
        return report
    remove_orphan_temporaries(out_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: run directory not found (expected a raw run dir with log.out and "
                        f"loss_<task>/ checkpoint folders)")
    if not (raw_dir / "log.out").is_file():
        raise DataError(f"{raw_dir / 'log.out'}: file not found (expected one {{'loss', 'step', 'samples_id'}} "
                        f"line per optimizer step)")
    sources = collect_sources(raw_dir, metrics, subtasks)
    fp = fingerprint(raw_dir, sources, metrics, {**subtasks, "_train_id_offset": train_id_offset})
    done, old_fp = is_complete(out_dir, metrics)
    if done and not overwrite:
        report.status, report.stale = "skipped", old_fp != fp
        if report.stale:
            log.warning("%s: raw files changed since it was preprocessed; pass --overwrite to redo it", out_dir)
        return report
    (out_dir / MARKER).unlink(missing_ok=True)

    logged = read_log(raw_dir / "log.out")
    report.n_log_steps = len(logged.samples_id)
    report.repeated_steps = list(logged.repeated)
    report.n_unrelated_lines = logged.n_unrelated
    trajectories = {}
    for metric in metrics:
        per_task = [(t, sources[(metric, t)][1]) for t in subtasks]
        trajectories[metric] = _read_metric(metric, per_task, subtasks, logged.samples_id,
                                            allow_nonfinite, report)
    samples_id = {st: [i + train_id_offset for i in ids] for st, ids in logged.samples_id.items()}
    write_processed_run(out_dir, samples_id, trajectories)
    write_json(out_dir / MARKER, {"version": PREPROCESS_VERSION, "fingerprint": fp, "metrics": list(metrics),
                                  "subtasks": subtasks, "source": str(raw_dir)})
    _log_run(report)
    return report


def _log_run(r: RunReport) -> None:
    if r.repeated_steps:
        log.warning("%s: %d steps logged more than once (last line kept): %s", r.name, len(r.repeated_steps),
                    _short(r.repeated_steps))
    if r.orphan_steps:
        log.warning("%s: %d checkpoint steps not in log.out (dropped): %s", r.name, len(r.orphan_steps),
                    _short(r.orphan_steps))
    for m in r.step_gaps:
        if r.step_gaps[m]:
            log.warning("%s: %s: %d logged steps without a checkpoint file (gaps): %s", r.name, m,
                        len(r.step_gaps[m]), _short(r.step_gaps[m]))
        if r.example_gaps[m]:
            log.warning("%s: %s: %d per-example gaps (ids missing from a checkpoint file)", r.name, m,
                        r.example_gaps[m])
        if r.nonfinite_dropped[m]:
            log.warning("%s: %s: %d non-finite values dropped as gaps", r.name, m, r.nonfinite_dropped[m])


def _short(xs, k=8) -> str:
    xs = list(xs)
    return str(xs[:k])[:-1] + (", ...]" if len(xs) > k else "]")


# ----------------------------------------------------------------------------------------------
# Many runs
# ----------------------------------------------------------------------------------------------

def find_raw_runs(raw_root: str | os.PathLike, run_globs: str | Sequence[str]) -> list[Path]:
    """Sorted raw run dirs under raw_root matching any of run_globs. Raises DataError when there is none."""
    raw_root = Path(raw_root)
    globs = [run_globs] if isinstance(run_globs, str) else list(run_globs)
    if not raw_root.is_dir():
        raise DataError(f"{raw_root}: raw run root not found (expected a folder holding raw run dirs "
                        f"matching {' or '.join(globs)})")
    runs = sorted({p for g in globs for p in raw_root.glob(g) if p.is_dir()})
    if not runs:
        raise DataError(f"{raw_root}: no run dirs match {' or '.join(globs)} (expected raw run dirs such as "
                        f"output_<task>_bs-4_..._seed-1)")
    return runs


def still_being_written(raw_dir: Path) -> bool:
    """A run made by utils/make_runs.py that has no completion mark yet (run_args.json without run_done.json):
    in progress or interrupted. Downloaded runs carry neither file and count as complete."""
    return (raw_dir / RUN_ARGS).is_file() and not (raw_dir / RUN_DONE).is_file()


def remove_orphan_temporaries(out_dir: Path) -> int:
    """Delete temporary files an interrupted atomic write left in out_dir; returns how many."""
    n = 0
    for p in out_dir.glob(".*.tmp") if out_dir.is_dir() else []:
        p.unlink(missing_ok=True)
        n += 1
    return n


def _job(kwargs: dict) -> RunReport:
    return preprocess_run(**kwargs)


def preprocess_runs(raw_dirs: Sequence[Path], output_dir: str | os.PathLike, task: str,
                    metrics: Sequence[str] = DEFAULT_METRICS, subtasks: Mapping[str, int] | None = None,
                    allow_nonfinite: bool = False, overwrite: bool = False, workers: int = 1,
                    progress: bool = True, train_id_offset: int = 0) -> list[RunReport]:
    """preprocess_run for every raw dir into output_dir/<raw dir name>, with `workers` processes.

    The outputs do not depend on `workers`. Reports come back in the order of raw_dirs.
    """
    from tqdm.auto import tqdm

    jobs = [dict(raw_dir=Path(d), out_dir=Path(output_dir) / Path(d).name, task=task, metrics=list(metrics),
                 subtasks=dict(subtasks) if subtasks else None, allow_nonfinite=allow_nonfinite,
                 overwrite=overwrite, train_id_offset=train_id_offset) for d in raw_dirs]
    bar = dict(total=len(jobs), desc="preprocess", unit="run", disable=not progress)
    if workers <= 1 or len(jobs) <= 1:
        return [_job(j) for j in tqdm(jobs, **bar)]
    from .runtime import worker_pool
    with worker_pool(min(workers, len(jobs))) as ex:
        return list(tqdm(ex.map(_job, jobs), **bar))


def summarize(reports: Sequence[RunReport]) -> str:
    """A short human-readable summary of a preprocessing job: totals, then one line per run with anomalies."""
    done = [r for r in reports if r.status == "processed"]
    skipped = [r for r in reports if r.status == "skipped"]
    lines = [f"runs: {len(done)} processed, {len(skipped)} skipped (already complete; --overwrite redoes them)"]
    pending = [r.name for r in reports if r.status == "incomplete"]
    if pending:
        lines.append(f"  {len(pending)} raw runs skipped as still being written (no run_done.json): "
                     f"{_short(pending, 3)}")
    stale = [r.name for r in skipped if r.stale]
    if stale:
        lines.append(f"  {len(stale)} skipped runs have changed raw files: {_short(stale, 3)}")
    if not done:
        return "\n".join(lines)
    lines.append(f"  optimizer steps per run: {_spread(r.n_log_steps for r in done)}")
    for m in done[0].n_recorded_steps:
        lines.append(f"  [{m}] recorded steps per run: {_spread(r.n_recorded_steps[m] for r in done)}; "
                     f"test examples: {_spread(r.n_test[m] for r in done)}; "
                     f"step gaps: {sum(len(r.step_gaps[m]) for r in done)}; "
                     f"per-example gaps: {sum(r.example_gaps[m] for r in done)}; "
                     f"non-finite dropped: {sum(r.nonfinite_dropped[m] for r in done)}")
    odd = [r for r in done if r.repeated_steps or r.orphan_steps
           or any(r.step_gaps[m] or r.example_gaps[m] or r.nonfinite_dropped[m] for m in r.step_gaps)]
    for r in odd:
        gaps = ", ".join(f"{m}: {len(r.step_gaps[m])} step gaps {_short(r.step_gaps[m], 5)} + "
                         f"{r.example_gaps[m]} example gaps + {r.nonfinite_dropped[m]} non-finite"
                         for m in r.step_gaps)
        lines.append(f"  {r.name}: {gaps}; repeated log steps {_short(r.repeated_steps, 5)}; "
                     f"orphan checkpoints {_short(r.orphan_steps, 5)}")
    return "\n".join(lines)


def _spread(xs) -> str:
    xs = list(xs)
    return str(xs[0]) if min(xs) == max(xs) else f"{min(xs)}..{max(xs)}"
