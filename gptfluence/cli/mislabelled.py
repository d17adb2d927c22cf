"""Mislabelled-data experiment of the paper on the built-in sentiment task (sst2), one command
(gptfluence/experiments/mislabelled.py explains it).

    python utils/mislabelled.py --preset quick            # tiny model, a few minutes on 1 CPU core
    python utils/mislabelled.py --preset default --gpu 0  # the local small model

Writes results/mislabelled/<preset>/: table.md, mislabelled.png, results.json, args.json, env.json,
mislabelled.log; the work folder holds task files, runs, the simulator and re-made runs (every stage resumes).
"""

from __future__ import annotations

from pathlib import Path

from . import experiment_flags, parser, run_experiment, with_preset


def build_parser():
    from ..experiments.mislabelled import PRESETS
    p = parser(__doc__, "mislabelled.py")
    a = p.add_argument
    a("--preset", default="default", choices=sorted(PRESETS), help="named sizes (flags below override)")
    a("--gpu", default="cpu", help="GPU index for making runs and training ('cpu' = no GPU)")
    a("--model", default=None, help="run-maker model: tiny, small, a folder or an HF name")
    a("--shot", type=int, default=None, help="training pool size (all of it is in the target run)")
    a("--sample", type=int, default=None, help="training examples per simulator-training run")
    a("--runs", type=int, default=None, help="simulator-training runs (seeds 1..R)")
    a("--n_test", type=int, default=None, help="test examples (true labels)")
    a("--bs", type=int, default=None, help="batch size")
    a("--epochs", type=int, default=None, help="epochs of the target run (whole pool); a simulator-training run "
      "makes epochs * shot / sample epochs over its sample, so both have the same number of steps")
    a("--lr", type=float, default=None, help="learning rate of the runs")
    a("--label_noise", type=float, default=0.4, help="fraction of training labels flipped")
    a("--fractions", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0",
      help="fractions of the ranking whose labels are fixed (comma list)")
    a("--n_shuffles", type=int, default=10, help="random orders averaged for the fraction of mislabels found")
    a("--random_runs", type=int, default=None, help="of them, shuffles whose accuracy is measured by re-made runs")
    a("--target_seed", type=int, default=100, help="seed of the target run (whole pool) and its re-makes")
    a("--eval_n_test", type=int, default=None,
      help="held-out test examples (true labels) the re-made runs are scored on after fixing (default preset "
           "1000; quick: = --n_test); = --n_test: the simulator-training runs' test set")
    a("--eval_runs", type=int, default=None,
      help="re-made runs per set of fixed labels (seeds target_seed, target_seed + 1, ...): accuracy and test loss "
           "after fixing are their means")
    a("--grad_steps", default=None, help="checkpoints with gradient features in the target run")
    a("--grad_dim", type=int, default=None, help="gradient feature size")
    a("--own_test_points", choices=("on", "off"), default="on",
      help="on: the simulator-training runs also record every pool example's own loss (its noisy label as the "
           "target), so the simulators are fitted on examples taken as their own test points, as self-influence "
           "asks; off: the clean test set only")
    a("--order", choices=("plain", "label_balanced"), default="plain",
      help="plain: every order as ranked (the paper's); label_balanced: every order, random included, taken one "
           "example of each (noisy) label in turn, each label's in its ranked order, so fixing the top of a ranking "
           "does not shift the pool's label balance")
    a("--flipped_controls", type=int, default=0,
      help="K > 0: at every fraction, also re-make K random sets of flipped labels, each as many as anchor_lex_sim's "
           "order fixed there: are the flipped labels it finds first worth more or less accuracy than others?")
    a("--seed", type=int, default=0, help="seed of the random orders")
    a("--data_seed", type=int, default=0, help="seed of the task generator and of the label noise")
    experiment_flags(p, "mislabelled")
    return p


def parse_args(argv=None):
    from ..experiments.mislabelled import PRESETS, parse_fractions
    args = with_preset(build_parser().parse_args(argv), PRESETS)
    args.task = "sst2"
    if args.eval_n_test is None:   # the quick preset: scored on the simulator-training runs' test set
        args.eval_n_test = args.n_test
    for flag in ("runs", "shot", "sample", "bs", "epochs", "n_test", "n_shuffles", "eval_n_test", "eval_runs"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if not 1 <= args.random_runs <= args.n_shuffles:
        raise ValueError(f"--random_runs must lie in 1..--n_shuffles ({args.n_shuffles}): the random orders whose "
                         f"accuracy is measured are among the shuffles; got {args.random_runs}")
    if args.flipped_controls < 0:
        raise ValueError(f"--flipped_controls must be >= 0, got {args.flipped_controls}")
    if not 0 < args.label_noise < 1:
        raise ValueError(f"--label_noise must lie in (0, 1), got {args.label_noise}")
    if args.runs < 2:
        raise ValueError(f"--runs must be >= 2 (training and validation runs), got {args.runs}")
    if args.sample > args.shot or (args.epochs * args.shot) % args.sample:
        raise ValueError(f"--sample {args.sample} must divide --epochs x --shot = {args.epochs * args.shot} (and be "
                         f"<= --shot): simulator-training runs need as many steps as the target run")
    target = args.epochs * -(-args.shot // args.bs)
    sim = args.epochs * args.shot // args.sample * -(-args.sample // args.bs)
    if target != sim:
        raise ValueError(f"--sample {args.sample} with --bs {args.bs}: the simulator-training runs would have {sim} "
                         f"steps and the target run {target}; choose --sample and --shot divisible by --bs")
    parse_fractions(args.fractions)
    return args


def main(argv=None):
    from ..experiments.mislabelled import run
    args = parse_args(argv)
    out = Path(args.out_dir or Path("results") / "mislabelled" / args.preset)
    return run_experiment(args, out, "mislabelled.log", args.work_root or out / "work", run,
                          progress=not args.no_progress, model_cache=args.model_cache)
