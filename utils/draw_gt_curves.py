#!/usr/bin/env python
"""Draw the true (recorded) metric trajectories of chosen test examples over a set of processed runs.

One panel per test id, one line per run; steps without a recorded value are left as breaks in the line.

Example:
    python utils/draw_gt_curves.py --runs_root runs --task rte --metric loss --test_ids 0-3 --out gt_rte.png
    python utils/draw_gt_curves.py --run_dirs runs/rte/output_rte_..._seed-1 runs/rte/output_rte_..._seed-2
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

log = logging.getLogger("draw_gt_curves")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run_dirs", type=str, nargs="*", default=None,
                   help="processed run dirs (default: every run under <runs_root>/<task>/)")
    p.add_argument("--runs_root", type=str, default="runs", help="root of processed runs (<runs_root>/<task>/*)")
    p.add_argument("--task", type=str, default="rte", help="task folder under --runs_root")
    p.add_argument("--metric", type=str, default="loss", help="loss, bleu (0-100), rougeL / rouge1 / rouge2 (0-1)")
    p.add_argument("--test_ids", type=str, default=None,
                   help="test ids to draw, e.g. '0-3,200' (default: the first 4 ids of the runs)")
    p.add_argument("--max_runs", type=int, default=0, help="draw at most this many runs (0 = all)")
    p.add_argument("--cols", type=int, default=4, help="panels per row")
    p.add_argument("--out", type=str, default=None,
                   help="output PNG (default: <runs_root>/<task>/gt_curves_<metric>.png)")
    p.add_argument("--no_cache", action="store_true", help="do not read or write the tensor cache")
    p.add_argument("--allow_nonfinite", action="store_true", help="mask NaN/inf values instead of refusing")
    p.add_argument("--log_level", type=str, default="INFO", help="logging level")
    return p.parse_args(argv)


def draw(runset, out_path: str, cols: int = 4, title: str = "") -> str:
    """Plot runset.values [R, N, T] (masked) as N panels of R lines; writes a PNG, returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r_count, n_count, _ = runset.values.shape
    cols = max(1, min(cols, n_count))
    rows = math.ceil(n_count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    steps = runset.steps.cpu().numpy()
    vals = runset.values.cpu().double().masked_fill(~runset.mask.cpu(), float("nan")).numpy()
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        if k >= n_count:
            ax.axis("off")
            continue
        for r in range(r_count):
            ax.plot(steps, vals[r, k], lw=0.9, alpha=0.8)
        ax.set_title(f"test id {int(runset.test_ids[k])}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(runset.metric, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title or f"true {runset.metric} trajectories ({r_count} runs)", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def main(argv=None) -> str:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(levelname)s %(name)s: %(message)s")
    from gptfluence.runs import find_run_dirs, load_runs, load_run, parse_id_ranges

    run_dirs = args.run_dirs or find_run_dirs(args.runs_root, args.task)
    if args.max_runs > 0:
        run_dirs = run_dirs[:args.max_runs]
    if args.test_ids:
        ids = parse_id_ranges(args.test_ids)
    else:
        ids = load_run(run_dirs[0], args.metric, use_cache=not args.no_cache)["ids"][:4].tolist()
    runset = load_runs(run_dirs, args.metric, test_ids=ids, allow_nonfinite=args.allow_nonfinite,
                       use_cache=not args.no_cache)
    out = args.out or os.path.join(args.runs_root, args.task, f"gt_curves_{args.metric}.png")
    draw(runset, out, cols=args.cols)
    log.info("wrote %s (%d runs x %d test ids x %d steps)", out, *runset.values.shape)
    return out


if __name__ == "__main__":
    main()
