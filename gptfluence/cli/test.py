"""Score a trained simulator on held-out runs by autoregressive rollout.

    python test.py --checkpoint output/rte/<run folder>
    python test.py --test_example_nums 200 --train_example_nums 200 --task rte --metric loss \\
        --sim_name enc_sim --dataset_name rte --checkpoint_path output/rte/<run folder>/best-checkpoint.pt \\
        --save_dir output/rte/<run folder> --test_example_start_id 0 --test_example_end_id 199   # as released

Each test run is rolled out from its true first value along its real curriculum. Test runs, in order of
precedence: --test_run_dirs; --data_paths_dict (a task -> list of runs, or {"test": [...]}); the held-out
runs recorded in the checkpoint; the editable dict at the top of test.py. Writes <save_dir>/metrics.json
(all_steps_mse_mean/std, all_steps_mae_mean/std, final_step_spearman_mean/std, counts including
invalid_predictions), pred_and_gt_<metric>_trajectories.out (released layout), a plot and env.json.
"""

from __future__ import annotations

from . import optional_int, parser, str2bool
from .train import SIM_ALIASES


def build_parser():
    p = parser(__doc__, "test.py")
    a = p.add_argument
    a("--checkpoint", "--checkpoint_path", dest="checkpoint", required=True,
      help="checkpoint file, or a run folder holding best-checkpoint.pt")
    a("--data_paths_dict", default=None, help="JSON file or inline JSON: task -> test run dirs, or {test: [...]}")
    a("--test_run_dirs", nargs="+", default=None, help="processed test run dirs (override every other source)")
    a("--test_num", type=int, default=None, help="use the first N test runs (default all)")
    a("--train_data_path", default=None, help="training pool file (default: the checkpoint's; another file = "
      "examples the simulator never saw, feature simulators only)")
    a("--eval_data_path", default=None, help="test set file (default: the checkpoint's)")
    a("--test_example_start_id", default=None, help="first test id, inclusive (default: the checkpoint's)")
    a("--test_example_end_id", default=None, help="last test id, inclusive (default: the checkpoint's)")
    a("--sim_name", default=None, help="if given, must match the checkpoint")
    a("--metric", default=None, help="metric whose trajectories are scored (default: the checkpoint's; another one is "
      "scored with a warning, as the released scripts do)")
    a("--task", default=None, help="key of test.py's data paths dict: which test runs (default: the checkpoint's "
      "held-out runs, else its task)")
    a("--dataset_name", default=None, help="released flag: the sample files' table key (default: the checkpoint's "
      "files)")
    a("--encoder", default=None, help="if given, must match the checkpoint")
    a("--train_example_nums", type=int, default=None, help="released flag (the sample files decide the sizes)")
    a("--test_example_nums", type=int, default=None, help="released flag (the sample files decide the sizes)")
    a("--hyper_parameter", type=float, default=None, help="released flag (the checkpoint carries its own)")
    a("--order_n", type=optional_int, default=None, help="if given, must match the checkpoint")
    a("--concate", type=str2bool, nargs="?", const=True, default=None, help="if given, must match the checkpoint")
    a("--save_dir", default=None, help="output folder (default <checkpoint folder>/test)")
    a("--diverge_bound", type=float, default=1e4, help="|prediction| above this counts as diverged")
    a("--plot_examples", type=int, default=6, help="test examples to plot (0: none)")
    a("--embedding_cache", default="default", help="on-disk embedding cache folder (default: $GPTFLUENCE_CACHE/"
      "embeddings, else .cache/gptfluence/embeddings)")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or a GPU index")
    a("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    a("--allow_nonfinite", action="store_true", help="mask NaN/inf values in the runs instead of refusing them")
    a("--allow_unfinished", action="store_true", help="use the checkpoint of a training that did not finish")
    a("--no_progress", action="store_true", help="no progress bars")
    return p


def test_dirs(args, ckpt: dict, data_paths: dict) -> list[str]:
    """The test runs, by the precedence in the module docstring."""
    from ..datapaths import load_data_paths_dict, runs_exist, test_runs
    from ..io import DataError
    task = args.task or ckpt["spec"]["task"]
    if args.test_run_dirs:
        dirs = runs_exist(args.test_run_dirs)
    elif args.data_paths_dict is not None:
        dirs = test_runs(load_data_paths_dict(args.data_paths_dict, {}), task)
    elif args.task is not None and args.task in data_paths:
        dirs = test_runs(data_paths, task)
    elif ckpt["data"].get("test_runs"):
        dirs = runs_exist(ckpt["data"]["test_runs"])
    elif task in data_paths:
        dirs = test_runs(data_paths, task)
    else:
        raise DataError(f"no test runs for task {task!r}: give --test_run_dirs, --data_paths_dict, or edit the dict "
                        "at the top of test.py")
    if args.test_num is not None and args.test_num < 1:
        raise ValueError(f"--test_num must be >= 1, got {args.test_num}")
    return dirs[:args.test_num] if args.test_num else dirs


def main(argv=None, data_paths: dict | None = None):
    """Parse, score, print the summary. Returns the metrics dict."""
    from ..checkpoint import load_checkpoint
    from ..datapaths import parse_test_ranges
    from ..metrics import format_summary
    from ..pipeline import TestSpec, test_simulator
    from ..runtime import set_threads
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    if args.diverge_bound <= 0:
        raise ValueError(f"--diverge_bound must be > 0, got {args.diverge_bound}")
    ckpt = load_checkpoint(args.checkpoint)
    expect = {"sim_name": SIM_ALIASES.get(args.sim_name, args.sim_name), "encoder": args.encoder,
              "order": args.order_n, "concat": args.concate if ckpt["sim_name"] == "norder_enc_sim" else None}
    if expect["sim_name"] in ("norder_enc_sim", "enc_sim") and ckpt["sim_name"] in ("norder_enc_sim", "enc_sim"):
        expect["sim_name"] = None  # norder_enc_sim --concate 0 trains the dot-product form, saved as enc_sim
    ids = None
    if args.test_example_start_id is not None or args.test_example_end_id is not None:
        ids = parse_test_ranges(args.test_example_start_id, args.test_example_end_id)
    spec = TestSpec(checkpoint=ckpt["path"], test_dirs=test_dirs(args, ckpt, data_paths or {}),
                    save_dir=args.save_dir, train_file=args.train_data_path, eval_file=args.eval_data_path,
                    test_ids=ids, diverge_bound=args.diverge_bound, plot_examples=args.plot_examples,
                    embedding_cache=args.embedding_cache, device=args.device, allow_nonfinite=args.allow_nonfinite,
                    allow_unfinished=args.allow_unfinished, metric=args.metric, expect=expect,
                    progress=not args.no_progress)
    m = test_simulator(spec)
    print(format_summary(m, m["metric"]))
    print(f"metrics: {m['save_dir']}/metrics.json")
    return m
