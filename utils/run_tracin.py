#!/usr/bin/env python
"""Score the gradient baselines TracIn-CP and Grad-Dot on held-out runs (loss only).

    python utils/run_tracin.py --task rte --method tracin_cp --num_checkpoints 10 --raw_root gptdynamics/runs_raw
    python utils/run_tracin.py --task rte --method tracin_cp --num_checkpoints all --raw_root gptdynamics/runs_raw
    python utils/run_tracin.py --task rte --method grad_dot --raw_root gptdynamics/runs_raw

The runs must have been made with `utils/make_runs.py --grad_features` (`--grad_steps all` for
TracIn-CP(all)). The features are read from <processed run dir>/grads/, else from
<raw_root>/<run dir name>/grads/. One global affine rescaling of the cumulative influence is fitted
by least squares on the training runs and applied to the test runs, each rolled out from its true
first value (gptfluence/baselines.py explains the prediction). Writes <save_dir>/metrics.json (the
fields of test.py plus metric, sim_name, task, scale, offset), args.json and
pred_and_gt_loss_trajectories.out (same format as test.py); prints a summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

log = logging.getLogger("gptfluence.run_tracin")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--method", choices=["tracin_cp", "grad_dot"], default="tracin_cp",
      help="tracin_cp: gradients of the checkpoint of each step; grad_dot: final-model gradients for every step")
    a("--num_checkpoints", type=str, default="10",
      help="TracIn-CP: number of evenly spaced recorded checkpoints, or 'all' (every step's checkpoint)")
    a("--task", default="rte", help="task key of the data paths dict (rte, sst2, boolq, webnlg, wmt16_de_en, flan)")
    a("--data_paths_dict", default=None,
      help="JSON file or inline JSON: task -> {train, test} processed run dirs (default: train.py's DATA_PATHS_DICT)")
    a("--train_run_dirs", nargs="+", default=None,
      help="processed runs to fit the rescaling on (overrides the dict's 'train')")
    a("--test_run_dirs", nargs="+", default=None, help="processed held-out runs to score (overrides the dict's 'test')")
    a("--train_num", type=int, default=None, help="use the first N training runs (default all)")
    a("--test_num", type=int, default=None, help="use the first N test runs (default all)")
    a("--raw_root", default=None,
      help="folder of the raw run dirs (same names as the processed ones), where grads/ and log.out are looked "
           "for when a processed run dir has no grads/ copy")
    a("--metric", default="loss", help="metric to predict: only 'loss' (the baselines do not predict BLEU/ROUGE)")
    a("--test_example_start_id", default=None, help="first test id, inclusive (comma list for several ranges)")
    a("--test_example_end_id", default=None, help="last test id, inclusive (comma list for several ranges)")
    a("--save_dir", default=None,
      help="output folder (default output/<task>/<method>_loss/test; tracin_cp10 / tracin_cpall for TracIn-CP)")
    a("--diverge_bound", type=float, default=1e4, help="|prediction| above this counts as diverged")
    a("--allow_nonfinite", action="store_true", help="skip NaN/inf values in the runs instead of refusing them")
    a("--no_progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def default_save_dir(task: str, method: str, num_checkpoints: int | None) -> Path:
    """output/<task>/<method>_loss/test; TracIn-CP adds k ('tracin_cp10', 'tracin_cpall') so that the two
    variants do not overwrite each other."""
    tag = method if method == "grad_dot" else f"tracin_cp{'all' if num_checkpoints is None else num_checkpoints}"
    return Path("output") / task / f"{tag}_loss" / "test"


def resolve_run_dirs(args) -> tuple[list[str], list[str]]:
    """(training run dirs, test run dirs) from the flags, else from the data paths dict."""
    from gptfluence.cli import load_data_paths_dict, task_run_dirs
    from gptfluence.io import DataError

    paths = None
    if args.train_run_dirs is None or args.test_run_dirs is None:
        if args.data_paths_dict is None:
            import train
            paths = train.DATA_PATHS_DICT
        else:
            paths = load_data_paths_dict(args.data_paths_dict, {})
    train_dirs = args.train_run_dirs or task_run_dirs(paths, args.task, "train")
    test_dirs = args.test_run_dirs or task_run_dirs(paths, args.task, "test")
    for d in list(train_dirs) + list(test_dirs):
        if not Path(d).is_dir():
            raise DataError(f"{d}: run directory not found (expected a processed run dir)")
    overlap = sorted({Path(d).resolve() for d in train_dirs} & {Path(d).resolve() for d in test_dirs})
    if overlap:
        raise DataError(f"{overlap[0]}: listed as both a training and a test run (the rescaling must be fitted "
                        "on training runs only)")
    return (list(train_dirs)[:args.train_num] if args.train_num else list(train_dirs),
            list(test_dirs)[:args.test_num] if args.test_num else list(test_dirs))


def main(argv=None) -> dict:
    args = parse_args(argv)
    from gptfluence import baselines as B
    from gptfluence.cli import finish_logging, parse_test_ranges, setup_logging
    from gptfluence.io import write_json
    from gptfluence.metrics import evaluate, format_summary
    from gptfluence.runs import load_runs

    B.check_metric(args.metric)
    k = B.parse_num_checkpoints(args.num_checkpoints)
    if args.method == "grad_dot":
        k = None
    save_dir = Path(args.save_dir) if args.save_dir else default_save_dir(args.task, args.method, k)
    save_dir.mkdir(parents=True, exist_ok=True)
    log_handler = setup_logging(save_dir / "run_tracin.log")
    write_json(save_dir / "args.json", vars(args))
    sim_name = B.method_name(args.method, k)

    test_ids = parse_test_ranges(args.test_example_start_id, args.test_example_end_id)
    train_dirs, test_dirs = resolve_run_dirs(args)
    log.info("%s: %d training runs (fit the rescaling), %d test runs", sim_name, len(train_dirs), len(test_dirs))
    train_rs = load_runs(train_dirs, metric="loss", test_ids=test_ids, allow_nonfinite=args.allow_nonfinite)
    test_rs = load_runs(test_dirs, metric="loss", test_ids=train_rs.test_ids, allow_nonfinite=args.allow_nonfinite)
    t0 = time.time()
    res = B.fit_and_predict(train_rs, test_rs, args.method, k, args.raw_root, progress=not args.no_progress)
    seconds = time.time() - t0
    log.info("fitted L_0 - L_t = a * I_t + c on the training runs: a = %.6g, c = %.6g", res["scale"], res["offset"])

    m = evaluate(res["pred"], test_rs.values, test_rs.mask, args.diverge_bound)
    m.update(metric="loss", sim_name=sim_name, task=args.task, scale=res["scale"], offset=res["offset"],
             method=args.method, num_checkpoints=("all" if k is None else k) if args.method == "tracin_cp" else None,
             checkpoints_used=sorted({len(v) for v in res["checkpoints"].values()}),
             train_runs=[str(d) for d in train_dirs], test_runs=[str(d) for d in test_dirs],
             raw_root=args.raw_root, seconds=round(seconds, 3))
    write_json(save_dir / "metrics.json", m)
    _write_trajectories(save_dir / "pred_and_gt_loss_trajectories.out", test_dirs, test_rs, res["pred"])
    print(format_summary(m, "loss"))
    print(f"{sim_name}: scale a = {res['scale']:.6g}, offset c = {res['offset']:.6g} (fitted on "
          f"{len(train_dirs)} training runs)")
    print(f"metrics: {save_dir / 'metrics.json'}")
    finish_logging(log_handler)
    return m


def _write_trajectories(path: Path, names, rs, pred) -> None:
    """The pred_and_gt_<metric>_trajectories.out of test.py (its write_trajectories)."""
    from gptfluence.cli import load_script
    test_script = load_script("test.py")
    test_script.write_trajectories(path, names, rs.steps, rs.test_ids, rs.values, pred, rs.mask)


if __name__ == "__main__":
    from gptfluence.cli import run_main
    run_main(main)
