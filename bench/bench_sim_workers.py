"""Simulators trained per minute: one at a time (what every experiment did before) vs Workspace.train_simulators
with worker processes (what reproduce.py, the paper experiments and bench_fidelity.py do now), measured in one
call on the same planted runs, and the checkpoints of the two compared bit for bit.

    python bench/bench_sim_workers.py                   # the published simulators x 3 seeds, default-preset shape
    python bench/bench_sim_workers.py --workers 4 --seeds 42,43,44,45

The planted runs have the default preset's shape (100 training examples, 50 test examples, 12 runs of 48 examples
x 4 epochs at batch 4 = 48 steps); the simulators are one task-metric cell of reproduce.py's table: Simfluence,
GPTfluence (f = g) and GPTfluence (f != g), each with every seed. Time a quiet machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=0, help="worker processes (0: the CPU's cores)")
    p.add_argument("--seeds", default="42,43,44", help="comma-separated simulator seeds")
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--out", default=None, help="also write the markdown table here")
    args = p.parse_args(argv)
    if args.workers < 0:
        p.error(f"--workers must be >= 0, got {args.workers}")
    return args


def checkpoints(root: Path) -> dict:
    """{best checkpoint under root/sims: its state dict (dense, as load_checkpoint gives it)}."""
    from gptfluence.checkpoint import load_checkpoint
    return {str(p.relative_to(root)): load_checkpoint(p)["state_dict"]
            for p in sorted((root / "sims").glob("**/best-checkpoint.pt"))}


def max_difference(a: dict, b: dict) -> float:
    """Largest |difference| over every tensor of two checkpoint sets (inf when they hold different things)."""
    if a.keys() != b.keys():
        return float("inf")
    worst = 0.0
    for name, state in a.items():
        if state.keys() != b[name].keys():
            return float("inf")
        for k, v in state.items():
            w = b[name][k]
            if v.shape != w.shape:
                return float("inf")
            if v.numel():
                worst = max(worst, float((v.double() - w.double()).abs().max()))
    return worst


def main(argv=None) -> str:
    import torch

    from gptfluence.experiments.common import GPTFLUENCE, SIMFLUENCE, Method, Workspace
    from gptfluence.experiments.fidelity import GPTFLUENCE_FG
    from gptfluence.runtime import set_threads, usable_cores
    from gptfluence.synthetic import make_planted
    args = parse_args(argv)
    set_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    workers = args.workers or usable_cores()
    methods: tuple[Method, ...] = (SIMFLUENCE, GPTFLUENCE_FG, GPTFLUENCE)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        task = make_planted(work / "planted", n_train=100, n_test=50, n_runs=12, sample=48, epochs=4, seed=0)
        runs = [str(d) for d in task.run_dirs][:-3]  # the preset holds out the last 3 runs
        files = (str(task.train_path), str(task.eval_path))
        # embeddings of the planted texts computed once before timing (both ways read the same cache)
        Workspace(work / "warm", workers=1).train_methods("planted", (GPTFLUENCE_FG,), "planted", "loss", runs,
                                                          files, seeds[:1], 1, max_epoch=1)
        seconds, trained = {}, {}
        for label, n in (("one at a time", 1), (f"{workers} worker processes", workers)):
            ws = Workspace(work / f"w{n}", workers=n)
            t0 = time.perf_counter()
            ws.train_methods("planted", methods, "planted", "loss", runs, files, seeds, 1)
            seconds[label] = time.perf_counter() - t0
            trained[label] = checkpoints(ws.root)
        (one, many), n_sims = seconds, len(trained["one at a time"])
        diff = max_difference(*trained.values())
    per_min = {k: 60.0 * n_sims / v for k, v in seconds.items()}
    text = "\n".join([
        f"{n_sims} simulators (Simfluence, GPTfluence f = g and f != g x seeds {args.seeds}) on 9 planted runs of the "
        f"default preset's shape, 1 torch thread per process, torch {torch.__version__}, {usable_cores()} cores",
        "",
        "| way | seconds | simulators per minute |",
        "| --- | --- | --- |",
        *[f"| {k} | {seconds[k]:.1f} | {per_min[k]:.2f} |" for k in seconds],
        "",
        f"speed-up: {seconds[one] / seconds[many]:.2f}x; checkpoints' max |difference|: {diff:g}",
    ])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
