"""Pieces shared by the entry scripts (train.py, test.py, influence.py): data paths,
test-id ranges, devices, logging, example embeddings."""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
from pathlib import Path

import torch

from .io import DataError, read_json

log = logging.getLogger("gptfluence")


def setup_logging(log_file: str | os.PathLike | None = None, level=logging.INFO):
    """Log to stderr and, if given, also to `log_file` (appending). Returns the file handler (or None).

    Safe in-process (a script calling another script's main()): stderr gets one handler, a log file
    already attached is not attached twice, and the caller's own log files keep receiving; a script
    detaches its file with finish_logging(handler) when it is done.
    """
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any(type(h) is logging.StreamHandler for h in root.handlers):
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    if not log_file:
        return None
    path = os.path.abspath(log_file)
    for h in root.handlers:
        if isinstance(h, logging.FileHandler) and h.baseFilename == path:
            return h
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(path, encoding="utf-8")
    fh.setFormatter(fmt)
    root.addHandler(fh)
    return fh


def finish_logging(handler) -> None:
    """Detach and close a file handler returned by setup_logging."""
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()


def pick_device(device: str | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:1' or a bare GPU index; without a GPU, say so and use the CPU."""
    if device is None or str(device).lower() == "cpu":
        return torch.device("cpu")
    d = str(device)
    if d.isdigit():
        d = f"cuda:{d}"
    if d.startswith("cuda") and not torch.cuda.is_available():
        log.warning("no GPU available (asked for %s): running on the CPU", device)
        return torch.device("cpu")
    return torch.device(d)


def load_data_paths_dict(value: str | dict | None, default: dict) -> dict:
    """--data_paths_dict: a JSON file, inline JSON, or None (use the editable default)."""
    if value is None:
        return default
    if isinstance(value, dict):
        return value
    if os.path.isfile(value):
        obj = read_json(value)
    else:
        try:
            obj = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"--data_paths_dict: {value!r} is neither a JSON file nor inline JSON") from None
    if not isinstance(obj, dict):
        raise DataError("--data_paths_dict: expected a JSON object mapping task -> run dirs")
    return obj


def _expand(patterns, what: str) -> list[str]:
    out = []
    for p in patterns:
        hits = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
        if not hits:
            raise DataError(f"{what}: no run directory matches {p!r} (expected a processed run dir)")
        for h in hits:
            if not os.path.isdir(h):
                raise DataError(f"{what}: {h}: run directory not found (expected a processed run dir with "
                                "train_samples_id.json and all_<metric>_trajectory.out)")
        out.extend(hits)
    return out


def task_run_dirs(paths_dict: dict, task: str, split: str) -> list[str]:
    """The run dirs of a task's split ("train" or "test").

    paths_dict[task] is a list (globs allowed) or {"train": [...], "test": [...]}.
    """
    if task not in paths_dict:
        raise DataError(f"task {task!r} is not in the data paths dict (tasks there: {', '.join(paths_dict)})")
    entry = paths_dict[task]
    if isinstance(entry, str):
        entry = [entry]
    if isinstance(entry, list):
        if split == "test":
            raise DataError(f"data paths dict: {task!r} lists run dirs without a 'test' split; "
                            "give {\"train\": [...], \"test\": [...]}")
        pats = entry
    else:
        if split not in entry:
            raise DataError(f"data paths dict: {task!r} has no {split!r} entry (has {', '.join(entry)})")
        pats = entry[split]
        pats = [pats] if isinstance(pats, str) else pats
    dirs = _expand(pats, f"{task}/{split}")
    if not dirs:
        raise DataError(f"data paths dict: {task}/{split} is empty")
    return dirs


def parse_test_ranges(start: str | int | None, end: str | int | None) -> list[int] | None:
    """--test_example_start_id / --test_example_end_id: inclusive ranges, comma-separated lists
    pair up ("0,677" and "99,776" -> 0..99 and 677..776). None -> None (all test examples)."""
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise DataError("give both --test_example_start_id and --test_example_end_id (or neither)")
    try:
        s = [int(x) for x in str(start).split(",") if x.strip()]
        e = [int(x) for x in str(end).split(",") if x.strip()]
    except ValueError:
        raise DataError(f"test example ids must be integers or comma-separated integers: {start!r}, {end!r}") from None
    if len(s) != len(e):
        raise DataError(f"--test_example_start_id has {len(s)} values but --test_example_end_id has {len(e)}")
    ids = []
    for a, b in zip(s, e):
        if b < a:
            raise DataError(f"empty test example range {a}..{b} (end is inclusive and must be >= start)")
        ids.extend(range(a, b + 1))
    if not ids:
        raise DataError("the selection of test examples is empty")
    return ids


def example_embeddings(samples: list[dict], encoder: str, pooling: str, max_length: int,
                       cache_dir: str, device, show_progress: bool = True) -> torch.Tensor:
    """Frozen embeddings [N, d] of the samples' `input` texts (batched, cached on disk)."""
    from .encoders import embed_texts
    return embed_texts([s["input"] for s in samples], encoder=encoder, pooling=pooling, max_length=max_length,
                       cache_dir=cache_dir, device=device, show_progress=show_progress)


def run_main(main) -> None:
    """Run an entry script's main(); bad input (DataError, ValueError) ends with one clear line and exit
    code 2 instead of a traceback. Anything else is a bug and keeps its traceback."""
    from .io import DataError
    try:
        main()
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


_SCRIPTS: dict = {}


def load_script(rel_path: str):
    """Import an entry script of the repo by its path relative to the repo root (names may hold '-',
    e.g. 'utils/construct_runs-data.py'), once per process; importing a script does no work. Used to call
    another script's main(argv) in-process. (`import test` would find the standard library's package.)"""
    if rel_path not in _SCRIPTS:
        import importlib.util
        path = Path(__file__).resolve().parents[1] / rel_path
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such script")
        name = "_gptfluence_script_" + path.stem.replace("-", "_")
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        _SCRIPTS[rel_path] = mod
    return _SCRIPTS[rel_path]
