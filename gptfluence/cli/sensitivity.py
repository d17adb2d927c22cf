"""How chaotic are the runs? Re-make held-out runs of a reproduce.py preset with two batches swapped (the same
examples, as often, in another order) and measure how far they drift from their originals, as a share of the
between-run variance (gptfluence/experiments/sensitivity.py explains the measure).

    python utils/sensitivity.py                           # default preset (reuses results/default/work)
    python utils/sensitivity.py --preset quick            # a minute on 2 CPU cores
    python utils/sensitivity.py --make_lr 3e-4 --epochs 6 # another run shape (its runs are made first)

Writes <out_dir>/table.md, summary.json (every number, the share per step too), args.json, env.json and
sensitivity.log (out_dir: results/sensitivity/<preset>). Every preset flag of utils/reproduce.py is accepted.
"""

from __future__ import annotations


def build_parser():
    from .reproduce import build_parser as reproduce_parser
    p = reproduce_parser()
    p.prog, p.description = "sensitivity.py", __doc__
    a = p.add_argument
    a("--swap_steps", default="1,2", help="A,B: the two steps whose batches trade places (1-based)")
    a("--n_runs", type=int, default=None, help="runs re-made with the swap, the held-out ones first (default: the "
      "preset's held-out runs)")
    a("--work_root", default=None, help="work folder (default: <out_root>/<preset>/work, shared with reproduce.py)")
    a("--out_dir", default=None, help="output folder (default: <out_root>/sensitivity/<preset>)")
    return p


def parse_args(argv=None):
    from ..experiments.sensitivity import parse_swap
    from .reproduce import check_args, fill_preset
    args = fill_preset(build_parser().parse_args(argv))
    check_args(args)
    parse_swap(args.swap_steps)
    if args.n_runs is None:
        args.n_runs = args.test_runs
    if not 1 <= args.n_runs <= args.runs:
        raise ValueError(f"--n_runs must be in 1..{args.runs} (the preset's runs), got {args.n_runs}")
    return args


def main(argv=None) -> str:
    from ..experiments.sensitivity import run
    from . import run_preset_table
    return run_preset_table(parse_args(argv), "sensitivity", run)
