"""Draw the true (recorded) metric trajectories of chosen test examples over a set of processed runs.

One panel per test id, one line per run; steps without a recorded value are left as breaks in the line.

    python utils/draw_gt_curves.py                                    # runs/rte/*, the first 4 test ids
    python utils/draw_gt_curves.py --runs_root runs --task rte --metric loss --test_ids 0-3 --out gt_rte.png
    python utils/draw_gt_curves.py --run_dirs runs/rte/<run 1> runs/rte/<run 2>
"""

from __future__ import annotations

import logging
import os

from . import parser

log = logging.getLogger("draw_gt_curves")


def build_parser():
    p = parser(__doc__, "draw_gt_curves.py")
    a = p.add_argument
    a("--run_dirs", nargs="*", default=None, help="processed run dirs (default: every run under <runs_root>/<task>/)")
    a("--runs_root", default="runs", help="root of processed runs (<runs_root>/<task>/*)")
    a("--task", default="rte", help="task folder under --runs_root")
    a("--metric", default="loss", help="loss, bleu (0-100), rougeL / rouge1 / rouge2 (0-1)")
    a("--test_ids", default=None, help="test ids to draw, e.g. '0-3,200' (default: the first 4 ids of the runs)")
    a("--max_runs", type=int, default=0, help="draw at most this many runs (0 = all)")
    a("--cols", type=int, default=4, help="panels per row")
    a("--out", default=None, help="output PNG (default: <runs_root>/<task>/gt_curves_<metric>.png)")
    a("--no_cache", action="store_true", help="do not read or write the tensor cache")
    a("--allow_nonfinite", action="store_true", help="mask NaN/inf values instead of refusing")
    a("--log_level", default="INFO", help="logging level")
    return p


def main(argv=None) -> str:
    from ..plots import plot_gt_curves
    from ..runs import find_run_dirs, load_run, load_runs, parse_id_ranges
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(levelname)s %(name)s: %(message)s")
    if args.max_runs < 0 or args.cols < 1:
        raise ValueError("--max_runs must be >= 0 and --cols >= 1")
    run_dirs = args.run_dirs or find_run_dirs(args.runs_root, args.task)
    if args.max_runs > 0:
        run_dirs = run_dirs[:args.max_runs]
    ids = parse_id_ranges(args.test_ids) if args.test_ids else \
        load_run(run_dirs[0], args.metric, use_cache=not args.no_cache)["ids"][:4].tolist()
    rs = load_runs(run_dirs, args.metric, test_ids=ids, allow_nonfinite=args.allow_nonfinite,
                   use_cache=not args.no_cache)
    out = args.out or os.path.join(args.runs_root, args.task, f"gt_curves_{args.metric}.png")
    vals = rs.values.double().masked_fill(~rs.mask, float("nan")).numpy()
    plot_gt_curves(out, rs.steps.tolist(), vals, rs.test_ids.tolist(), rs.metric, args.cols)
    log.info("wrote %s (%d runs x %d test ids x %d steps)", out, *rs.values.shape)
    return out
