"""The runs of several tasks, as an experiment makes them: a new worker pool per task (each worker imports torch and
transformers and loads the base model, for every task) vs one pool kept open for all of them
(runtime.WorkerPools, what the experiment commands do), measured in one call on the same settings, the files
compared.

    python bench/bench_pools.py                          # the quick preset's run shape, its two tasks and three more
    python bench/bench_pools.py --preset default --runs 4 --tasks rte,boolq

Both ways make the same runs into separate folders (same seeds, same settings, the same workers x threads); every
recorded value of the two is compared. Each round measures both ways, which goes first alternating from round to
round. Time a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import shape_of, values  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", help="the run shape of a utils/reproduce.py preset: quick, default")
    p.add_argument("--tasks", default="rte,webnlg,sst2,boolq,wmt16_de_en", help="comma-separated built-in tasks")
    p.add_argument("--runs", type=int, default=4, help="runs per task")
    p.add_argument("--rounds", type=int, default=2, help="measurements, the order of the two ways alternating")
    p.add_argument("--model_cache", default=None, help="folder of the local preset models (built once if missing)")
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--out", default=None, help="also write the markdown table here")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from gptfluence.pipeline import RunSpec, make_runs
    from gptfluence.runtime import WorkerPools, usable_cores
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        specs = []
        for task in tasks:
            s = shape_of(args.preset, task)
            spec = RunSpec(task=task, seeds=list(range(1, args.runs + 1)), data_root=str(work / "data"),
                           n_test=s["n_test"], model=s["model"], model_cache=args.model_cache, shot=s["shot"],
                           sample=s["sample"], bs=4, epochs=s["epochs"], lr=s["lr"], progress=False, summary=False)
            # the model and the task files first, outside the timing (seed 99, one process)
            make_runs(replace(spec, seeds=[99], workers=1, output_dir=str(work / "warm" / task)))
            specs.append(spec)
        def new_pools(out):  # a new pool for each task (make_runs alone)
            for spec in specs:
                make_runs(replace(spec, output_dir=str(out / spec.task)))

        def open_pool(out):  # one pool for every task
            with WorkerPools() as pools:
                for spec in specs:
                    make_runs(replace(spec, output_dir=str(out / spec.task)), pools)

        rows = []
        for r in range(args.rounds):  # the order alternates between rounds
            secs = {}
            for name, fn in (("new", new_pools), ("open", open_pool))[::1 if r % 2 == 0 else -1]:
                t0 = time.perf_counter()
                fn(work / f"{name}{r}")
                secs[name] = time.perf_counter() - t0
            diff = 0.0
            for spec in specs:
                for a_dir in sorted((work / f"new{r}" / spec.task).glob("output_*")):
                    a, b = values(a_dir), values(work / f"open{r}" / spec.task / a_dir.name)
                    assert a.keys() == b.keys(), a_dir.name
                    diff = max([diff, *(abs(a[k] - b[k]) for k in a)])
            rows.append((secs, diff, "new first" if r % 2 == 0 else "open first"))
    n = len(tasks) * args.runs
    lines = ["| runs | round | a new pool per task | one open pool | ratio | max abs diff |",
             "|---|---|---|---|---|---|"]
    for secs, diff, order in rows:
        lines.append(f"| {len(tasks)} tasks x {args.runs} ({args.preset} shape; {usable_cores()} cores) | {order} | "
                     f"{secs['new']:.1f} s ({60 * n / secs['new']:.1f} runs/min) | {secs['open']:.1f} s "
                     f"({60 * n / secs['open']:.1f} runs/min) | **{secs['new'] / secs['open']:.2f}x** | {diff:.1e} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
