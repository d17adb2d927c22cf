"""Fidelity benchmark, one command: every method x 3 simulator seeds on planted runs, on a reproduce.py preset's
runs (every task and metric), on test examples the simulators never saw, and with every block of the preset's runs
held out in turn (the mean trajectory and the closed-form anchor sims), against the honest baselines
(gptfluence/experiments/fidelity.py explains the sections). Prints and writes a markdown table.

    python bench/bench_fidelity.py                          # default preset (reuses results/default/work)
    python bench/bench_fidelity.py --preset quick           # minutes on 2 CPU cores
    python bench/bench_fidelity.py --sections planted --planted_dir PLANTED   # processed runs made elsewhere

Writes <out_dir>/table.md, summary.json, args.json, env.json and fidelity.log (out_dir: results/fidelity/<preset>).
Every preset flag of utils/reproduce.py is accepted and overrides the preset; runs and simulators are shared with
reproduce.py through the work folder, and every stage resumes.
"""

from __future__ import annotations

SECTIONS = ("planted", "preset", "unseen", "splits")


def build_parser():
    from .reproduce import build_parser as reproduce_parser
    p = reproduce_parser()
    p.prog, p.description = "bench_fidelity.py", __doc__
    a = p.add_argument
    a("--sections", default=",".join(SECTIONS), help="comma-separated: planted, preset, unseen, splits")
    a("--planted_dir", default=None, help="processed planted runs made elsewhere (default: made here, "
      "gptfluence.synthetic)")
    a("--planted_runs", type=int, default=32, help="planted runs made here (the last 5 are held out, 2 validate)")
    a("--work_root", default=None, help="work folder (default: <out_root>/<preset>/work, shared with reproduce.py)")
    a("--out_dir", default=None, help="output folder (default: <out_root>/fidelity/<preset>)")
    return p


def parse_args(argv=None):
    from .reproduce import check_args, fill_preset
    args = fill_preset(build_parser().parse_args(argv))
    check_args(args)
    bad = [s for s in args.sections.split(",") if s.strip() and s.strip() not in SECTIONS]
    if bad or not args.sections.strip():
        raise ValueError(f"--sections {args.sections!r}: expected a comma list of {', '.join(SECTIONS)}")
    if args.planted_runs < 8:
        raise ValueError(f"--planted_runs must be >= 8 (5 held out, 2 validate, 1+ train), got {args.planted_runs}")
    return args


def main(argv=None) -> str:
    from ..experiments.fidelity import run
    from . import run_preset_table
    return run_preset_table(parse_args(argv), "fidelity", run)
