"""Runs per minute: one run at a time (torch's default threads) vs the run maker's default (several runs at once in
worker processes, one thread each), measured in one call on the same settings, and the numbers compared.

    python bench/bench_runs.py                       # the quick and default presets' run shapes (rte)
    python bench/bench_runs.py --presets default --runs 4 --task webnlg

Both ways make the same runs (same seeds, same settings) into separate folders; the recorded values of the two are
compared (max |difference|: thread counts change the order of float sums, nothing else). Time a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def shape_of(preset: str, task: str) -> dict:
    """The run shape of a utils/reproduce.py preset for `task` (its per-task settings applied by task_args, as
    reproduce.py applies them)."""
    from gptfluence.experiments.reproduce import PRESETS, task_args
    p = vars(task_args(argparse.Namespace(**PRESETS[preset]), task))
    return dict(model=p["model"], shot=p["shot"], sample=p["sample"], epochs=p["epochs"], n_test=p["n_test"],
                lr=p["make_lr"])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="quick,default", help="comma-separated run shapes: quick, default")
    p.add_argument("--task", default="rte", help="built-in task")
    p.add_argument("--runs", type=int, default=4, help="runs made each way")
    p.add_argument("--model_cache", default=None, help="folder of the local preset models (built once if missing)")
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--out", default=None, help="also write the markdown table here")
    return p.parse_args(argv)


def values(run_dir: Path) -> dict:
    out = {}
    for f in sorted(run_dir.glob("*_*/*_checkpoint-*.out")):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            for k, v in row.items():
                if k != "id":
                    out[(f.name, row["id"], k)] = v
    return out


def bench(shape: str, args, work: Path) -> dict:
    from gptfluence.pipeline import RunSpec, make_runs
    from gptfluence.runtime import usable_cores
    s = shape_of(shape, args.task)
    spec = RunSpec(task=args.task, seeds=list(range(1, args.runs + 1)), data_root=str(work / "data"),
                   n_test=s["n_test"], model=s["model"], model_cache=args.model_cache, shot=s["shot"],
                   sample=s["sample"], bs=4, epochs=s["epochs"], lr=s["lr"], progress=False, summary=False)
    make_runs(replace(spec, seeds=[99], output_dir=str(work / "warm" / shape)))  # builds the model and task files
    out = {}
    for label, kw in (("one at a time", dict(workers=1, threads=0)), ("ours (default)", dict(workers=0, threads=0))):
        folder = work / shape / label.split()[0]
        t0 = time.perf_counter()
        dirs = make_runs(replace(spec, output_dir=str(folder), **kw))
        secs = time.perf_counter() - t0
        out[label] = {"seconds": secs, "runs_per_minute": 60 * len(dirs) / secs, "dirs": dirs}
    a, b = (values(d) for d in (out["one at a time"]["dirs"][0], out["ours (default)"]["dirs"][0]))
    diff = max(abs(a[k] - b[k]) for k in a)
    return {"shape": shape, "cores": usable_cores(), "max_abs_diff": diff, **out}


def main(argv=None):
    args = parse_args(argv)
    import torch
    lines = ["| run shape | runs | one at a time (torch threads) | ours (workers x 1 thread) | ratio | max abs diff |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        for shape in [x.strip() for x in args.presets.split(",") if x.strip()]:
            r = bench(shape, args, work)
            one, ours = r["one at a time"], r["ours (default)"]
            lines.append(f"| {shape} ({shape_of(shape, args.task)['model']} model, {args.task}) | {args.runs} | "
                         f"{one['runs_per_minute']:.1f} runs/min ({one['seconds']:.1f} s, {torch.get_num_threads()} "
                         f"threads) | {ours['runs_per_minute']:.1f} runs/min ({ours['seconds']:.1f} s, "
                         f"{r['cores']} workers) | **{ours['runs_per_minute'] / one['runs_per_minute']:.2f}x** | "
                         f"{r['max_abs_diff']:.1e} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
