"""Write task sample files (JSON lines, GPTDynamics names) for fine-tuning and instruction tuning.

    python utils/prepare_tasks.py                                  # built-in tasks -> data/sft_tasks/...
    python utils/prepare_tasks.py --tasks sst2 --label_noise 0.4   # mislabelled SST-2 training set
    python utils/prepare_tasks.py --flan                           # + data/it_tasks/flan_{train,eval}_*.json
    python utils/prepare_tasks.py --source local --local_files sst2=sst2.tsv,rte=rte.csv
    python utils/prepare_tasks.py --source hf                      # needs the Hugging Face hub

Existing files are kept unless --overwrite is given. Every write is atomic.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .. import tasks as T
from ..io import DataError, write_jsonl
from . import parser

logger = logging.getLogger("prepare_tasks")


def build_parser() -> argparse.ArgumentParser:
    p = parser(__doc__, "prepare_tasks.py")
    p.add_argument("--tasks", type=str, default=",".join(T.TASKS),
                   help=f"comma-separated tasks to write (known: {', '.join(T.TASKS)})")
    p.add_argument("--out_dir", type=str, default="data",
                   help="root folder; files go to <out_dir>/sft_tasks/<task>/ and <out_dir>/it_tasks/")
    p.add_argument("--n_train", type=int, default=T.DEFAULT_N_TRAIN, help="training samples per task")
    p.add_argument("--n_test", type=int, default=None,
                   help="test samples per task (default: the paper's sizes sst2 200, rte 277, boolq 200, "
                        "webnlg 178, wmt16_de_en 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generators / of the sample choice")
    p.add_argument("--label_noise", type=float, default=0.0,
                   help="fraction of training labels to flip in classification tasks (sst2, rte, boolq); "
                        "adds '_mislabelled-<f>' to the training file name")
    p.add_argument("--flan", action="store_true",
                   help="also write the instruction-tuning mix (it_tasks/flan_train_*, flan_eval_*)")
    p.add_argument("--flan_n_train", type=int, default=T.FLAN_N_TRAIN,
                   help="training samples of the instruction-tuning mix (split evenly over the five tasks)")
    p.add_argument("--source", type=str, default="builtin", choices=("builtin", "hf", "local"),
                   help="builtin generators, the Hugging Face hub (datasets.load_dataset), or local files")
    p.add_argument("--local_files", type=str, default="",
                   help="with --source local: comma-separated task=path (csv, tsv or jsonl with named columns)")
    p.add_argument("--overwrite", action="store_true", help="rewrite files that already exist")
    return p


def parse_task_list(text: str) -> list[str]:
    """'sst2,rte' -> ['sst2', 'rte'] (ValueError on an unknown task)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--tasks is empty; known tasks: {', '.join(T.TASKS)}")
    return [T.check_task(t) for t in names]


def parse_local_files(text: str) -> dict[str, str]:
    """'sst2=a.tsv,rte=b.csv' -> {'sst2': 'a.tsv', 'rte': 'b.csv'}."""
    out = {}
    for item in (x for x in text.split(",") if x.strip()):
        if "=" not in item:
            raise ValueError(f"--local_files: expected task=path, got {item!r}")
        task, path = item.split("=", 1)
        out[T.check_task(task.strip())] = path.strip()
    return out


def noisy_train_path(train_path: Path, label_noise: float) -> Path:
    """sst2_train_0-199.json -> sst2_mislabelled-0.4_train_0-199.json (clean name when no noise)."""
    if not label_noise:
        return train_path
    task = train_path.parent.name
    return train_path.with_name(train_path.name.replace(task, f"{task}_mislabelled-{label_noise:g}", 1))


def load_task_sets(args: argparse.Namespace, task: str) -> tuple[list[dict], list[dict]]:
    """(train, test) samples of one task from the chosen source (label noise not yet applied)."""
    n_test = T.PAPER_TEST_SIZES[task] if args.n_test is None else args.n_test
    if args.source == "builtin":
        return T.build_task(task, args.n_train, n_test, args.seed)
    if args.source == "hf":
        split_train, split_test = T.HF_SPLITS[task]
        return (T.import_hf(task, split_train, args.n_train, args.seed),
                T.import_hf(task, split_test, n_test, args.seed))
    files = parse_local_files(args.local_files)
    if task not in files:
        raise DataError(f"--source local: no file for task {task}; give --local_files {task}=PATH")
    samples = T.import_local(task, files[task], seed=args.seed)
    return T.split_disjoint(task, samples, args.n_train, n_test, args.seed)


def write_if_needed(path: Path, samples: list[dict], overwrite: bool) -> bool:
    """Write samples to path unless it exists and overwrite is off; True when written."""
    if path.exists() and not overwrite:
        logger.info("kept   %s (exists; --overwrite to rewrite)", path)
        return False
    write_jsonl(path, samples)
    logger.info("wrote  %s (%d samples)", path, len(samples))
    return True


def check_args(args) -> None:
    """Refuse bad settings before any work (one line naming the flag)."""
    if args.n_train < 1:
        raise ValueError(f"--n_train must be >= 1, got {args.n_train}")
    if args.n_test is not None and args.n_test < 1:
        raise ValueError(f"--n_test must be >= 1, got {args.n_test}")
    if not 0.0 <= args.label_noise <= 1.0:
        raise ValueError(f"--label_noise must lie in [0, 1], got {args.label_noise}")
    if args.flan and args.flan_n_train < 1:
        raise ValueError(f"--flan_n_train must be >= 1, got {args.flan_n_train}")
    out = Path(args.out_dir)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"--out_dir {args.out_dir}: {parent} is a file, not a folder")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_args(args)
    tasks = parse_task_list(args.tasks)
    if args.label_noise and not set(tasks) & set(T.CLASSIFICATION_TASKS):
        raise ValueError(f"--label_noise applies to {', '.join(T.CLASSIFICATION_TASKS)} only; none in --tasks")
    if args.flan and set(tasks) != set(T.TASKS):
        raise ValueError("--flan needs all five tasks in --tasks")
    if args.source == "local":
        files = parse_local_files(args.local_files)
        for task in tasks:
            if task not in files:
                raise DataError(f"--source local: no file for task {task}; give --local_files {task}=PATH")
            if not Path(files[task]).is_file():
                raise DataError(f"--local_files {task}={files[task]}: file not found (expected a csv, tsv or jsonl "
                                "file with named columns)")
    sets = {}
    for task in tasks:
        train, test = load_task_sets(args, task)
        sets[task] = (train, test)
        if args.label_noise and task in T.CLASSIFICATION_TASKS:
            train = T.apply_label_noise(train, task, args.label_noise, args.seed)
        train_path, eval_path = T.task_file_paths(args.out_dir, task, len(train), len(test))
        write_if_needed(noisy_train_path(train_path, args.label_noise if task in T.CLASSIFICATION_TASKS else 0),
                        train, args.overwrite)
        write_if_needed(eval_path, test, args.overwrite)
    if args.flan:
        write_flan(args, sets)
    return 0


def write_flan(args: argparse.Namespace, sets: dict) -> None:
    """The instruction-tuning mix; imported sources are re-read with enough training rows per task."""
    task_sets = None
    if args.source != "builtin":
        per_task = -(-args.flan_n_train // len(T.TASKS))
        flan_args = argparse.Namespace(**{**vars(args), "n_train": max(per_task, args.n_train)})
        task_sets = {t: load_task_sets(flan_args, t) for t in T.TASKS}
    flan_train, flan_eval = T.build_flan_mix(
        args.flan_n_train, {t: len(sets[t][1]) for t in T.TASKS}, args.seed, task_sets=task_sets)
    train_path, eval_path = T.task_file_paths(args.out_dir, "flan", len(flan_train), len(flan_eval))
    write_if_needed(train_path, flan_train, args.overwrite)
    write_if_needed(eval_path, flan_eval, args.overwrite)
