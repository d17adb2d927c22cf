"""Ground-truth check of influence: re-make a run without each method's top examples and compare the predicted
with the actual change of the final test loss (gptfluence/experiments/influence_check.py explains it).

    python utils/influence_check.py --preset quick            # tiny model, a few minutes on 1 CPU core
    python utils/influence_check.py --preset default --gpu 0  # the local small model

Writes results/influence_check/<preset>/: table.md, scatter.png (predicted vs actual, one colour per method),
results.json (every number), args.json, env.json, influence_check.log; the work folder holds runs, simulators and
re-made runs (every stage resumes). Simulator training settings: the simulators' own defaults.
"""

from __future__ import annotations

from pathlib import Path

from . import experiment_flags, parser, run_experiment, with_preset


def build_parser():
    from ..experiments.influence_check import PRESETS
    p = parser(__doc__, "influence_check.py")
    a = p.add_argument
    a("--preset", default="default", choices=sorted(PRESETS), help="named sizes (flags below override)")
    a("--gpu", default="cpu", help="GPU index for making runs and training ('cpu' = no GPU)")
    a("--task", default=None, help="built-in task (rte, sst2, boolq; loss metric)")
    a("--model", default=None, help="run-maker model: tiny, small, a folder or an HF name")
    a("--runs", type=int, default=None, help="runs made (seeds 1..R); the last one is held out")
    a("--shot", type=int, default=None, help="training pool size")
    a("--sample", type=int, default=None, help="training examples per run")
    a("--bs", type=int, default=None, help="batch size of the runs")
    a("--epochs", type=int, default=None, help="epochs of each run")
    a("--n_test", type=int, default=None, help="test examples of the task")
    a("--lr", type=float, default=None, help="learning rate of the runs")
    a("--grad_steps", default=None, help="checkpoints with gradient features (make_runs --grad_steps)")
    a("--grad_dim", type=int, default=None, help="gradient feature size (make_runs --grad_dim)")
    a("--n_examples", type=int, default=None, help="test examples checked")
    a("--test_ids", default=None, help="test ids checked, e.g. '0,5,9' (default: a seeded choice)")
    a("--k", type=int, default=None, help="examples in each removal set (top-k helpful / harmful)")
    a("--n_random", type=int, default=None, help="random k-sets re-made as controls")
    a("--valid_num", type=int, default=None, help="simulator validation runs")
    a("--seed", type=int, default=0, help="seed of the test-example choice and the random sets")
    a("--data_seed", type=int, default=0, help="seed of the built-in task generator")
    experiment_flags(p, "influence_check")
    return p


def parse_args(argv=None):
    from ..experiments.influence_check import PRESETS
    args = with_preset(build_parser().parse_args(argv), PRESETS)
    for flag in ("runs", "shot", "sample", "bs", "epochs", "n_test", "k", "n_examples"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.runs < 3:
        raise ValueError(f"--runs must be >= 3 (training, validation and held-out runs), got {args.runs}")
    return args


def main(argv=None):
    from ..experiments.influence_check import run
    args = parse_args(argv)
    out = Path(args.out_dir or Path("results") / "influence_check" / args.preset)
    return run_experiment(args, out, "influence_check.log", args.work_root or out / "work", run,
                          progress=not args.no_progress, model_cache=args.model_cache)
