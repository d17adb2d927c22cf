"""The paper's experiments, each one command that writes results/<experiment>/<preset>/table.md plus figures.

    python utils/experiments.py main        --preset quick --gpu 0   # Table 1/2: methods x tasks, test loss
    python utils/experiments.py metrics     --preset quick           # Table 3/4: BLEU / ROUGE-L
    python utils/experiments.py unseen      --preset quick           # unseen training / test examples
    python utils/experiments.py order       --preset quick           # Markov order n
    python utils/experiments.py cp_interval --preset quick           # metrics recorded every k steps
    python utils/experiments.py model_size  --preset quick           # Pythia-architecture sizes tiny, small

Every stage goes through gptfluence.pipeline and is skipped when its outputs exist, so an interrupted call
resumes. Runs, simulators and scores live under --work_root (default results/experiments_work) in folders named
by their settings, shared between experiments. Every table carries the baselines (no change, mean trajectory);
trained methods are shown as mean (std) over --seeds. Simulator training settings are the simulators' own
defaults (gptfluence/simulators). Outputs per experiment: table.md, bars.png, trajectories.png, args.json,
summary.json, env.json, experiment.log.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import parser, with_preset


def build_parser():
    from ..experiments.paper import EXPERIMENTS, PRESETS
    p = parser(__doc__, "experiments.py")
    a = p.add_argument
    a("experiment", choices=EXPERIMENTS, help="which experiment to run")
    a("--preset", choices=sorted(PRESETS), default="quick",
      help="named sizes (quick: tiny model, minutes on one core; default: small model, CPU-sized); flags override")
    a("--gpu", default="0", help="GPU index; without a GPU the CPU is used (with a notice)")
    a("--out_root", default="results", help="tables go to <out_root>/<experiment>/<preset>/")
    a("--work_root", default=None, help="shared runs / simulators / scores (default <out_root>/experiments_work)")
    a("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    a("--workers", type=int, default=0, help="simulators trained at once in worker processes (0: the CPU's cores "
      "over --threads; 1 on a GPU)")
    g = p.add_argument_group("tasks and runs (default: the preset's)").add_argument
    g("--tasks", default=None, help="main: comma-separated tasks (columns of Table 1/2)")
    g("--gen_tasks", default=None, help="metrics: comma-separated generation tasks")
    g("--task", default=None, help="unseen / order / cp_interval / model_size: the task")
    g("--model", default=None, help="run-making model: tiny, small, a folder or an HF name")
    g("--models", default=None, help="model_size: comma-separated models")
    g("--runs", type=int, default=None, help="runs per setting (training + validation + test)")
    g("--test_runs", type=int, default=None, help="held-out test runs among --runs")
    g("--valid_num", type=int, default=None, help="training runs held out for validation")
    g("--shot", type=int, default=None, help="training pool size")
    g("--sample", type=int, default=None, help="training examples per run (unseen: at most shot/2)")
    g("--epochs", type=int, default=None, help="epochs per run")
    g("--bs", type=int, default=None, help="run batch size (steps per run = sample/bs*epochs)")
    g("--n_test", type=int, default=None, help="test examples per task")
    g("--make_lr", type=float, default=None, help="learning rate of the runs")
    g("--data_seed", type=int, default=0, help="seed of the built-in task generators")
    g = p.add_argument_group("simulators (training settings: the simulators' defaults)").add_argument
    g("--seeds", default=None, help="comma-separated simulator seeds (a table cell is mean (std) over them)")
    g("--order_sim", default="enc_sim", help="order: simulator for n > 1 (enc_sim dot-product form, norder_enc_sim)")
    g("--orders", default=None, help="order: comma-separated Markov orders n")
    g("--intervals", default=None, help="cp_interval: comma-separated intervals k")
    g("--timing_runs", type=int, default=None, help="cp_interval: runs re-made every max(k) steps to time the saving")
    g = p.add_argument_group("output").add_argument
    g("--plot_examples", type=int, default=3, help="test examples in trajectories.png")
    g("--progress", action="store_true", help="show the progress bars of the stages")
    return p


def parse_args(argv=None):
    from ..experiments.paper import PRESETS
    args = with_preset(build_parser().parse_args(argv), PRESETS)
    if args.work_root is None:
        args.work_root = str(Path(args.out_root) / "experiments_work")
    for flag in ("runs", "shot", "sample", "epochs", "bs", "n_test", "valid_num"):
        if getattr(args, flag) < (0 if flag == "valid_num" else 1):
            raise ValueError(f"--{flag} must be >= {0 if flag == 'valid_num' else 1}, got {getattr(args, flag)}")
    if not 1 <= args.test_runs < args.runs:
        raise ValueError(f"--test_runs must lie in 1..{args.runs - 1}, got {args.test_runs}")
    return args


def main(argv=None) -> str:
    from ..experiments.paper import RUNNERS
    from ..io import atomic_open, write_json
    from . import run_experiment

    def work(ws, args, out):
        t0 = time.time()
        text, summary = RUNNERS[args.experiment](ws, args, out)
        summary.update(experiment=args.experiment, preset=args.preset, device=ws.device,
                       seconds=round(time.time() - t0, 1))
        text += (f"\n_{args.experiment}, preset {args.preset}, device {ws.device}: {summary['seconds']} s (stages "
                 "found done were skipped)._\n")
        with atomic_open(out / "table.md") as f:
            f.write(text)
        write_json(out / "summary.json", summary)
        return text
    args = parse_args(argv)
    out = Path(args.out_root) / args.experiment / args.preset
    text = run_experiment(args, out, "experiment.log", args.work_root, work,
                          env={"preset": args.preset, "experiment": args.experiment}, progress=args.progress)
    print(text)
    print(f"table: {out / 'table.md'}")
    return text
