"""The whole method in one command, offline: task files -> GPT runs -> preprocessing -> simulators and baselines
(3 simulator seeds) -> held-out test -> results/<preset>/table.md, bars_<metric>.png, plots/, env.json,
reproduce.log. Stages found done are skipped, so an interrupted call resumes (the work folder is
results/<preset>/work, git-ignored). Any preset value can be overridden by its flag.

    bash reproduce.sh 0 quick                      # the same as: python utils/reproduce.py --preset quick --gpu 0
    python utils/reproduce.py --preset default --tasks rte,sst2 --runs 8
"""

from __future__ import annotations

from pathlib import Path

from . import parser, run_experiment, with_preset


def build_parser():
    from ..experiments.reproduce import PRESETS
    p = parser(__doc__, "reproduce.py")
    a = p.add_argument
    a("--preset", default="default", choices=list(PRESETS), help="quick (smoke test), default (CPU-sized), paper")
    a("--gpu", default="cpu", help="GPU index ('cpu' = no GPU; without a GPU the CPU is used with a notice)")
    a("--out_root", default="results", help="results go to <out_root>/<preset>/")
    a("--threads", type=int, default=1, help="torch CPU threads per process")
    a("--workers", type=int, default=0, help="simulators trained at once in worker processes (0: the CPU's cores "
      "over --threads; 1 on a GPU); the runs have their own workers")
    a("--tasks", default=None, help="comma-separated tasks (rte, sst2, boolq, webnlg, wmt16_de_en)")
    a("--model", default=None, help="run-making model: tiny, small, a folder or an HF causal-LM name")
    a("--runs", type=int, default=None, help="runs per task (training + validation + test)")
    a("--test_runs", type=int, default=None, help="held-out test runs among --runs")
    a("--valid_num", type=int, default=None, help="simulator validation runs")
    a("--shot", type=int, default=None, help="training pool size")
    a("--sample", type=int, default=None, help="training examples per run")
    a("--epochs", type=int, default=None, help="epochs per run, for every task (default: the preset's, which may "
      "differ by task: the default preset's sst2 runs 8)")
    a("--bs", type=int, default=4, help="run batch size")
    a("--n_test", type=int, default=None, help="test examples per task (default: the preset's)")
    a("--make_lr", type=float, default=None, help="learning rate of the runs, for every task (default: the "
      "preset's, which may differ by task: the default preset's sst2 runs at 2e-4)")
    a("--data_seed", type=int, default=0, help="seed of the built-in task generators")
    a("--seeds", default=None, help="comma-separated simulator seeds")
    a("--progress", action="store_true", help="show the progress bars of the stages")
    return p


def fill_preset(args):
    """The preset's value for every flag left unset. A preset's per-task run settings (e.g. the default preset's
    sst2 lr and epochs) go to args.per_task, only for the flags left unset: a flag given on the command line holds
    for every task."""
    from ..experiments.reproduce import PRESETS
    preset = dict(PRESETS[args.preset])
    unset = {task: {k: v for k, v in settings.items() if getattr(args, k) is None}
             for task, settings in preset.pop("per_task", {}).items()}
    args.per_task = {task: settings for task, settings in unset.items() if settings}
    return with_preset(args, {args.preset: preset})


def parse_args(argv=None):
    return check_args(fill_preset(build_parser().parse_args(argv)))


def check_args(args):
    for flag in ("runs", "shot", "sample", "epochs", "bs"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if not 1 <= args.test_runs < args.runs - args.valid_num:
        raise ValueError(f"--test_runs {args.test_runs} and --valid_num {args.valid_num} leave no training run of "
                         f"--runs {args.runs}")
    return args


def main(argv=None) -> str:
    from ..experiments.reproduce import run
    args = parse_args(argv)
    out = Path(args.out_root) / args.preset
    text = run_experiment(args, out, "reproduce.log", out / "work", run, progress=args.progress, plot_examples=3)
    print(text)
    print(f"table: {out / 'table.md'}")
    return text
