"""Preprocess raw GPTDynamics runs into processed run dirs: the released construct_runs-data*.py scripts.

Raw run dirs <raw_root>/<run_glob> (layout: gptfluence/formats.py) become processed run dirs
<output_root>/<task>/<raw run dir name>/ (train_samples_id.json, all_<metric>_trajectory.out). Runs already
complete are skipped unless --overwrite; raw runs still being written (made by make_runs.py, no run_done.json
yet) are skipped with a count. All the logic lives in gptfluence/preprocess.py.

Variants (one script each):
    construct_runs-data.py                            fine-tuning, test loss
    construct_runs-data-metric.py                     fine-tuning, loss + BLEU (0-100) + ROUGE-1/2/L (0-1)
    construct_runs-data-flan-multi-thread.py          instruction tuning (FLAN sub-tasks, global test ids), loss
    construct_runs-data-flan-metric-multi-thread.py   instruction tuning, + BLEU / ROUGE-L
    construct_runs-data-flan-ood_multi-thread.py      out-of-distribution runs for a FLAN simulator -> runs/flan_ood
    construct_runs-data-flan-metric-ood-multi-thread.py   the same with BLEU / ROUGE-L
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..formats import FLAN_TEST_OFFSETS
from ..io import DataError
from . import parser

# variant -> (default task, metrics, workers, FLAN sub-tasks (None: the task itself), train id offset, run glob)
VARIANTS = {
    "construct_runs-data": ("rte", "loss", 1, None, 0, None),
    "construct_runs-data-metric": ("webnlg", "loss,bleu,rougeL,rouge1,rouge2", 1, None, 0, None),
    "construct_runs-data-flan-multi-thread": ("flan", "loss", 4, ",".join(FLAN_TEST_OFFSETS), 0, None),
    "construct_runs-data-flan-metric-multi-thread": ("flan", "loss,bleu,rougeL,rouge1,rouge2", 4,
                                                     ",".join(FLAN_TEST_OFFSETS), 0, None),
    # OOD fine-tuning runs (webnlg-ood / rte-ood) mapped into a FLAN simulator's id space: training ids + 1200 (the
    # FLAN pool's OOD block), test ids + the sub-task's FLAN offset
    "construct_runs-data-flan-ood_multi-thread": ("flan_ood", "loss", 4, "webnlg", 1200, "output_webnlg-ood_*"),
    "construct_runs-data-flan-metric-ood-multi-thread": ("flan_ood", "loss,bleu,rougeL,rouge1,rouge2", 4, "webnlg",
                                                         1200, "output_webnlg-ood_*"),
}


def build_parser(variant: str):
    task, metrics, workers, subtasks, offset, glob_ = VARIANTS[variant]
    p = parser(__doc__, f"{variant}.py")
    a = p.add_argument
    a("--raw_root", default="gptdynamics/runs_raw",
      help="folder holding the raw run dirs (utils/make_runs.py --output_dir, or where gptdynamics.tar was extracted)")
    a("--output_root", default="runs", help="processed runs go to <output_root>/<task>/<raw run dir name>/")
    a("--task", default=task, help=f"task name: the output folder and the raw folders loss_<task>/ (default {task})")
    a("--run_glob", nargs="+", default=None,
      help=f"globs of raw run dir names under --raw_root (default: {glob_ or 'output_<task>_*'}); several allowed")
    a("--metrics", default=metrics, help="comma-separated metrics to extract (loss, bleu, rougeL, rouge1, rouge2)")
    if subtasks is not None:
        a("--tasks", default=subtasks, help="comma-separated FLAN sub-tasks (one loss_/metric_ folder each in a raw "
          f"run); global test id = local id + offset {FLAN_TEST_OFFSETS}")
        a("--train_id_offset", type=int, default=offset, help="added to every training id (OOD runs: 1200)")
    a("--train_data_path", default=None, help="the task's training sample file (optional: the dynamics report then "
      "groups the training examples by label or topic)")
    a("--eval_data_path", default=None, help="the task's test sample file (optional, checked against the test ids)")
    a("--overwrite", action="store_true", help="redo runs that are already complete")
    a("--allow_nonfinite", action="store_true", help="drop NaN/inf values as gaps (counted) instead of refusing")
    a("--workers", type=int, default=workers, help="worker processes (one run each)")
    a("--no_progress", action="store_true", help="disable progress bars")
    a("--log_level", default="INFO", help="logging level")
    return p


def parse_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in str(text).split(",") if x.strip()]
    if not items:
        raise DataError(f"empty {what} list {text!r} (expected comma-separated names)")
    return items


def flan_offsets(tasks) -> dict[str, int]:
    """Sub-task -> global test-id offset; DataError for an unknown sub-task."""
    unknown = [t for t in tasks if t not in FLAN_TEST_OFFSETS]
    if unknown:
        raise DataError(f"unknown FLAN sub-tasks {unknown} (expected some of {list(FLAN_TEST_OFFSETS)})")
    return {t: FLAN_TEST_OFFSETS[t] for t in tasks}


def main(argv=None, variant: str = "construct_runs-data"):
    """Parse and preprocess. Returns the per-run reports (gptfluence.preprocess.RunReport)."""
    from ..pipeline import preprocess
    from ..preprocess import ALL_METRICS
    args = build_parser(variant).parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(levelname)s %(name)s: %(message)s")
    metrics = parse_list(args.metrics, "metric")
    bad = [m for m in metrics if m not in ALL_METRICS]
    if bad:
        raise ValueError(f"--metrics: unknown metrics {bad} (expected some of {', '.join(ALL_METRICS)})")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    subtasks = flan_offsets(parse_list(args.tasks, "task")) if getattr(args, "tasks", None) else None
    globs = args.run_glob or [VARIANTS[variant][5] or f"output_{args.task}_*"]
    out = Path(args.output_root)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"--output_root {args.output_root}: {parent} is a file, not a folder")
    return preprocess(args.raw_root, args.output_root, args.task, metrics, globs, subtasks, args.workers,
                      args.overwrite, args.allow_nonfinite, progress=not args.no_progress,
                      train_id_offset=getattr(args, "train_id_offset", 0), train_file=args.train_data_path,
                      eval_file=args.eval_data_path)
