"""The command-line layer: one module per entry script (argument parsing, then one pipeline call).

The top-level scripts (train.py, test.py, influence.py, utils/*.py) import the module of the same name
from here and call its main(argv); keeping the parsers in the package lets the tests run them in-process.
Every main() checks its arguments before any work; gptfluence.runtime.run_main turns bad input into one
line "error: ..." with exit status 2.
"""

from __future__ import annotations

import argparse


def str2bool(text) -> bool:
    """True / False / 1 / 0 / yes / no (python-fire style values of the released scripts)."""
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off", "none"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def optional_int(text):
    """An int, or None for 'None' (the released scripts print and accept None)."""
    if str(text).strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or None, got {text!r}") from None


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump): "<prog>: error: <what> (see --help)"."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parser(doc: str, prog: str | None = None) -> argparse.ArgumentParser:
    return OneLineParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def with_preset(args, presets: dict):
    """args with the value of args.preset's entry in `presets` for every flag left unset (None)."""
    for key, value in presets[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def experiment_flags(p: argparse.ArgumentParser, name: str) -> None:
    """The flags every experiment command shares: where it writes, its work folder, models, threads, bars."""
    a = p.add_argument
    a("--out_dir", default=None, help=f"output folder (default results/{name}/<preset>)")
    a("--work_root", default=None, help="task files, runs, simulators, re-made runs (default <out_dir>/work)")
    a("--model_cache", default=None, help="folder of the local preset models")
    a("--threads", type=int, default=1, help="torch CPU threads")
    a("--workers", type=int, default=0, help="simulators trained at once in worker processes (0: the CPU's cores "
      "over --threads; 1 on a GPU)")
    a("--no_progress", action="store_true", help="no progress bars")


def run_experiment(args, out, log_name: str, work_root, run, env: dict | None = None, **workspace):
    """What every experiment command does around its work: make `out`, log there (a fresh log), record the
    arguments, run `run(workspace, args, out)` in a Workspace on work_root with the asked device and threads,
    then write env.json (commit, versions, command, `env`). Returns what `run` returns."""
    from pathlib import Path

    from ..experiments.common import Workspace
    from ..io import write_json
    from ..runtime import WorkerPools, finish_logging, resolve_device, set_threads, setup_logging, write_env_json
    set_threads(args.threads)
    device = str(resolve_device(args.gpu))
    workers = simulator_workers(device, args.threads, getattr(args, "workers", 0))  # a bad --workers: before any work
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    handler = setup_logging(out / log_name)
    try:
        write_json(out / "args.json", vars(args))
        with WorkerPools() as pools:  # worker processes started once, for every task's runs and the simulators
            ws = Workspace(Path(work_root), device=device, threads=args.threads, workers=workers, pools=pools,
                           **workspace)
            res = run(ws, args, out)
        write_env_json(out, **(env or {"preset": args.preset}))
        return res
    finally:
        finish_logging(handler)


def simulator_workers(device: str, threads: int, asked: int = 0) -> int:
    """How many simulators an experiment trains at once: `asked` when > 0; else on the CPU the machine's cores
    over the threads of each (2 x 1 thread on 2 cores), on a GPU one."""
    from ..runtime import usable_cores
    if asked < 0:
        raise ValueError(f"--workers must be >= 0 (0 = the default for the machine), got {asked}")
    if asked:
        return asked
    return max(1, usable_cores() // max(1, threads)) if device == "cpu" else 1


def run_preset_table(args, name: str, run) -> str:
    """A reproduce-preset command that writes a table (bench_fidelity, sensitivity): `run(ws, args, out)` returns
    (markdown, summary); writes <out_dir or out_root/name/preset>/table.md and summary.json in the preset's shared
    work folder (<out_root>/<preset>/work unless --work_root), prints the table and returns it."""
    from pathlib import Path

    from ..io import atomic_open, write_json

    def work(ws, args, out):
        text, summary = run(ws, args, out)
        with atomic_open(out / "table.md") as f:
            f.write(text)
        write_json(out / "summary.json", summary)
        return text
    out = Path(args.out_dir or Path(args.out_root) / name / args.preset)
    text = run_experiment(args, out, f"{name}.log", args.work_root or Path(args.out_root) / args.preset / "work",
                          work, progress=args.progress)
    print(text)
    print(f"table: {out / 'table.md'}")
    return text
