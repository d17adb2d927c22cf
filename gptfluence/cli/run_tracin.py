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

from pathlib import Path

from . import parser


def build_parser():
    p = parser(__doc__, "run_tracin.py")
    a = p.add_argument
    a("--method", choices=["tracin_cp", "grad_dot"], default="tracin_cp",
      help="tracin_cp: gradients of the checkpoint of each step; grad_dot: final-model gradients for every step")
    a("--num_checkpoints", type=str, default="10",
      help="TracIn-CP: number of evenly spaced recorded checkpoints, or 'all' (every step's checkpoint)")
    a("--task", default="rte", help="task key of the data paths dict (rte, sst2, boolq, webnlg, wmt16_de_en, flan)")
    a("--data_paths_dict", default=None,
      help="JSON file or inline JSON: task -> {train, test} processed run dirs")
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
    return p


def default_save_dir(task: str, method: str, num_checkpoints: int | None) -> Path:
    """output/<task>/<method>_loss/test; TracIn-CP adds k ('tracin_cp10', 'tracin_cpall') so that the two
    variants do not overwrite each other."""
    tag = method if method == "grad_dot" else f"tracin_cp{'all' if num_checkpoints is None else num_checkpoints}"
    return Path("output") / task / f"{tag}_loss" / "test"


def resolve_run_dirs(args) -> tuple[list[str], list[str]]:
    """(training run dirs, test run dirs) from the flags, else from --data_paths_dict."""
    from ..datapaths import load_data_paths_dict, runs_exist, test_runs, train_runs
    from ..io import DataError
    if args.train_run_dirs is None or args.test_run_dirs is None:
        if args.data_paths_dict is None:
            raise DataError("give --train_run_dirs and --test_run_dirs, or --data_paths_dict with the task's "
                            "train and test runs")
        paths = load_data_paths_dict(args.data_paths_dict, {})
    train = runs_exist(args.train_run_dirs) if args.train_run_dirs else train_runs(paths, args.task)[0]
    test = runs_exist(args.test_run_dirs) if args.test_run_dirs else test_runs(paths, args.task)
    return train[:args.train_num] if args.train_num else train, test[:args.test_num] if args.test_num else test


def main(argv=None) -> dict:
    from .. import baselines as B
    from ..datapaths import parse_test_ranges
    from ..metrics import format_summary
    from ..pipeline import BaselineSpec, score_baselines
    args = build_parser().parse_args(argv)
    B.check_metric(args.metric)
    k = None if args.method == "grad_dot" else B.parse_num_checkpoints(args.num_checkpoints)
    for flag in ("train_num", "test_num"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    train, test = resolve_run_dirs(args)
    save_dir = args.save_dir or default_save_dir(args.task, args.method, k)
    spec = BaselineSpec(method=args.method, num_checkpoints=k, task=args.task, train_dirs=train, test_dirs=test,
                        test_ids=parse_test_ranges(args.test_example_start_id, args.test_example_end_id),
                        raw_root=args.raw_root, save_dir=str(save_dir),
                        diverge_bound=args.diverge_bound, allow_nonfinite=args.allow_nonfinite,
                        progress=not args.no_progress)
    m = score_baselines(spec)
    print(format_summary(m, "loss"))
    print(f"{m['sim_name']}: scale a = {m['scale']:.6g}, offset c = {m['offset']:.6g} (fitted on {len(train)} "
          f"training runs)")
    print(f"metrics: {m['save_dir']}/metrics.json")
    return m
