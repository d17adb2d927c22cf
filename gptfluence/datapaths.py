"""Where the processed runs of a task are: the data paths dicts of train.py and test.py.

A dict maps task -> run dirs (globs allowed), in one of two forms:
    {"rte": ["runs/rte/..._seed-1", ...]}                    a list, as released: train.py splits validation
                                                            (--valid_num) and held-out (--test_num) runs off it;
                                                            test.py scores every listed run
    {"rte": {"train": [...], "test": [...]}}               explicit splits
--data_paths_dict takes a JSON file or inline JSON of either form.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

from .io import DataError, read_json


def load_data_paths_dict(value: str | dict | None, default: dict) -> dict:
    """--data_paths_dict: a JSON file, inline JSON, or None (use the editable default)."""
    if value is None:
        return default
    if isinstance(value, dict):
        obj = value
    elif os.path.isfile(value):
        obj = read_json(value)
    else:
        try:
            obj = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"--data_paths_dict: {value!r} is neither a JSON file nor inline JSON") from None
    if not isinstance(obj, dict) or not obj:
        raise DataError("--data_paths_dict: expected a JSON object mapping task -> run dirs or {train, test}")
    return obj


def expand_runs(patterns, what: str, must_exist: bool = True) -> list[str]:
    """Run dirs of a list of paths / globs, in the order given (a glob expands sorted)."""
    pats = [patterns] if isinstance(patterns, str) else list(patterns or [])
    out = []
    for p in pats:
        if not isinstance(p, str):
            raise DataError(f"{what}: expected run dir paths (strings), got {p!r}")
        hits = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
        if not hits and must_exist:
            raise DataError(f"{what}: no run directory matches {p!r} (expected a processed run dir)")
        for h in hits:
            if must_exist and not os.path.isdir(h):
                raise DataError(f"{what}: {h}: run directory not found (expected a processed run dir with "
                                "train_samples_id.json and all_<metric>_trajectory.out; the scripts' default paths "
                                "are the GPTDynamics download's layout: extract it (README), or pass your runs with "
                                "--data_paths_dict, e.g. those utils/make_runs.py or `bash reproduce.sh 0` make "
                                "offline)")
        out.extend(hits)
    return out


def task_entry(paths_dict: dict, task: str) -> list | dict:
    if task not in paths_dict:
        raise DataError(f"task {task!r} is not in the data paths dict (tasks there: {', '.join(paths_dict)}); "
                        "edit the dict at the top of the script or pass --data_paths_dict")
    entry = paths_dict[task]
    if isinstance(entry, str):
        entry = [entry]
    if not isinstance(entry, (list, dict)):
        raise DataError(f"data paths dict: {task!r} must map to a list of run dirs or {{\"train\", \"test\"}}")
    return entry


def train_runs(paths_dict: dict, task: str) -> tuple[list[str], list[str]]:
    """(runs to train and validate on, runs recorded as held-out test runs) of a task.

    A list entry: all its runs train (train.py splits validation / held-out runs off); a dict entry: its
    "train" runs, and its "test" runs (if any) as held-out runs.
    """
    entry = task_entry(paths_dict, task)
    if isinstance(entry, list):
        return expand_runs(entry, task), []
    if "train" not in entry:
        raise DataError(f"data paths dict: {task!r} has no 'train' entry (has {', '.join(entry) or 'none'})")
    test = expand_runs(entry["test"], f"{task}/test") if entry.get("test") else []
    return expand_runs(entry["train"], f"{task}/train"), test


def test_runs(paths_dict: dict, task: str) -> list[str]:
    """The runs test.py scores: a list entry's runs (test.py's own dict), or a dict entry's "test" runs."""
    entry = task_entry(paths_dict, task)
    if isinstance(entry, list):
        return expand_runs(entry, task)
    if not entry.get("test"):
        raise DataError(f"data paths dict: {task!r} has no 'test' runs (has {', '.join(entry) or 'none'})")
    return expand_runs(entry["test"], f"{task}/test")


def parse_test_ranges(start, end) -> list[int] | None:
    """--test_example_start_id / --test_example_end_id: inclusive ranges; comma-separated lists pair up
    ("0,677" and "99,776" -> 0..99 and 677..776). None and None -> None (all test examples)."""
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise DataError("give both --test_example_start_id and --test_example_end_id (or neither)")
    try:
        s = [int(x) for x in str(start).strip("()[]\"' ").split(",") if x.strip()]
        e = [int(x) for x in str(end).strip("()[]\"' ").split(",") if x.strip()]
    except ValueError:
        raise DataError(f"test example ids must be integers or comma-separated integers: {start!r}, {end!r}") from None
    if len(s) != len(e):
        raise DataError(f"--test_example_start_id has {len(s)} values but --test_example_end_id has {len(e)}")
    ids: list[int] = []
    for a, b in zip(s, e):
        if a < 0 or b < a:
            raise DataError(f"empty or negative test example range {a}..{b} (end is inclusive and must be >= start "
                            ">= 0)")
        ids.extend(range(a, b + 1))
    if len(set(ids)) != len(ids):
        raise DataError(f"test example ranges overlap: {start!r} / {end!r}")
    return ids


def runs_exist(dirs) -> list[str]:
    """The given processed run dirs, checked to exist (DataError naming the first missing one)."""
    for d in dirs:
        if not Path(d).is_dir():
            raise DataError(f"{d}: run directory not found (expected a processed run dir)")
    return [str(d) for d in dirs]
