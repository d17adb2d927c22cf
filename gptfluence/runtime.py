"""Where and how the code runs: device, CPU threads, seeds, logging, provenance, the entry-point wrapper.

One home for each of these choices (every script and pipeline stage calls them):

    resolve_device("0")          -> cuda:0, or the CPU with a notice when there is no GPU
    set_threads(1)               -> torch intra-op threads (0 keeps torch's default)
    seed_everything(42)          -> Python, NumPy and torch generators
    setup_logging(path)          -> stderr + a fresh log file per call (never appended)
    write_env_json(folder, ...)  -> env.json: git commit, versions, command, preset (results carry it)
    run_main(main)               -> bad input ends in one line "error: ..." and exit status 2
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

log = logging.getLogger("gptfluence")

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir(kind: str) -> str:
    """Default folder of an on-disk cache: $GPTFLUENCE_CACHE/<kind> (default .cache/gptfluence/<kind>), e.g.
    "models" (the local base models) or "embeddings" (frozen text embeddings)."""
    return os.path.join(os.environ.get("GPTFLUENCE_CACHE", os.path.join(".cache", "gptfluence")), kind)


# ----------------------------------------------------------------------------------------------
# Device, threads, seeds
# ----------------------------------------------------------------------------------------------

def resolve_device(spec: str | int | torch.device | None = "cpu") -> torch.device:
    """'cpu', 'cuda', 'cuda:1' or a bare GPU index (0, '1'); without a GPU, say so and use the CPU.

    Raises ValueError for anything else (naming the value).
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = "cpu" if spec is None else str(spec).strip().lower()
    if text in ("cpu", "", "none", "-1"):
        return torch.device("cpu")
    if text.isdigit():
        text = f"cuda:{text}"
    if not (text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())):
        raise ValueError(f"--device {spec!r}: expected cpu, cuda, cuda:N or a GPU index")
    if not torch.cuda.is_available():
        log.warning("no GPU available (asked for %s): running on the CPU", spec)
        return torch.device("cpu")
    return torch.device(text)


def set_threads(n: int | None) -> int:
    """Set torch's intra-op CPU threads (n > 0; 0 or None keeps the current setting). Returns the count."""
    if n is not None and n < 0:
        raise ValueError(f"--threads must be >= 0 (0 = torch's default), got {n}")
    if n:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def worker_pool(workers: int, threads: int | None = None):
    """A ProcessPoolExecutor of `workers` spawned processes, each logging INFO to stderr with `threads` torch
    threads (None: torch's default), that die with this process: killed with kill -9, it would otherwise leave its
    workers behind (finishing what they hold, then waiting for work forever, and racing a resumed call over the
    same files)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_start_worker,
                               initargs=(os.getpid(), threads))


class WorkerPools:
    """Worker pools kept open across calls, one per (workers, threads), shut down on exit: the runs of several
    tasks and the simulators after them reuse the same spawned processes instead of starting new ones for every
    call (a start imports torch and transformers and loads the model: seconds per process and call)."""

    def __init__(self):
        self._pools: dict = {}

    def get(self, workers: int, threads: int | None):
        """The open pool of `workers` processes with `threads` torch threads each (started on first use)."""
        key = (workers, threads)
        if key not in self._pools:
            self._pools[key] = worker_pool(workers, threads)
        return self._pools[key]

    def discard(self, workers: int, threads: int | None) -> None:
        """Forget a pool that was shut down (e.g. its work cancelled after a failure): the next get starts anew."""
        self._pools.pop((workers, threads), None)

    def close(self) -> None:
        for ex in self._pools.values():
            ex.shutdown()
        self._pools.clear()

    def __enter__(self) -> "WorkerPools":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def pool_for(pools: "WorkerPools | None", workers: int, threads: int | None):
    """A pool of `workers` x `threads`: the open one of `pools` (left open), or a new one shut down on exit."""
    if pools is not None:
        yield pools.get(workers, threads)
        return
    with worker_pool(workers, threads) as ex:
        yield ex


def _start_worker(parent_pid: int, threads: int | None) -> None:
    die_with_parent(parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    set_threads(threads)


def die_with_parent(parent_pid: int) -> None:
    """In a worker process: ask Linux to kill this process when its parent dies (prctl PR_SET_PDEATHSIG), and exit
    at once if the parent is already gone. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA)."""
    import numpy as np
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Logging
# ----------------------------------------------------------------------------------------------

def setup_logging(log_file: str | os.PathLike | None = None, level=logging.INFO, fresh: bool = True):
    """Log to stderr and, if given, to `log_file` (truncated first unless fresh=False).

    Safe in-process: stderr gets one handler; a log file already attached is not attached twice.
    Returns the file handler (or None); detach it with finish_logging(handler).
    """
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any(type(h) is logging.StreamHandler for h in root.handlers):
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    if not log_file:
        return None
    path = os.path.abspath(log_file)
    for h in root.handlers:
        if isinstance(h, logging.FileHandler) and h.baseFilename == path:
            return h
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(path, mode="w" if fresh else "a", encoding="utf-8")
    fh.setFormatter(fmt)
    root.addHandler(fh)
    return fh


def finish_logging(handler) -> None:
    """Detach and close a file handler returned by setup_logging."""
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()


# ----------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------

def relative(path: str | os.PathLike) -> str:
    """A path as committed files should hold it: relative to the repo root (or the working directory)
    when it lies below it, else unchanged."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    for base in (REPO_ROOT, Path.cwd()):
        try:
            return str(p.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:  # noqa: BLE001 - a missing package has no version
        return None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else platform.processor()). Recorded with every result with
    torch's CPU capability (the vector instructions its kernels use, e.g. AVX2 or AVX512): float sums are rounded
    differently on different ones, and training runs amplify such differences (README: "Same numbers")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance(command: list[str] | None = None, preset: str | None = None, **extra) -> dict:
    """What made a result: git commit (and whether the code had uncommitted changes: tracked files outside
    results/, whose files a re-make itself rewrites), package versions, the command (paths made relative), the
    preset, the machine, the time (UTC)."""
    argv = command if command is not None else [relative(sys.argv[0]), *sys.argv[1:]]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    info = {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "command": " ".join(relative(a) if os.path.isabs(str(a)) else str(a) for a in argv),
        "preset": preset,
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("gptfluence", "torch", "transformers", "numpy", "scipy", "pandas")},
        "machine": {"platform": platform.platform(terse=True), "cpu": cpu_model(), "cpu_cores": usable_cores(),
                    "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "torch_threads": torch.get_num_threads()},
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    info.update(extra)
    return info


def write_env_json(folder: str | os.PathLike, command: list[str] | None = None, preset: str | None = None,
                   **extra) -> Path:
    """Write <folder>/env.json (provenance(...)) atomically; returns its path."""
    from .io import write_json
    path = Path(folder) / "env.json"
    write_json(path, provenance(command, preset, **extra))
    return path


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------

def run_main(main, argv=None) -> int:
    """Run an entry point's main(argv). Bad input (DataError, ValueError, a missing file) ends with one
    line "error: ..." on stderr and exit status 2 instead of a traceback; anything else is a bug and keeps
    its traceback. A non-zero int returned by main is the exit status."""
    from .io import DataError
    try:
        out = main(argv)
    except (DataError, ValueError, FileNotFoundError, NotADirectoryError, FileExistsError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    if isinstance(out, int) and not isinstance(out, bool):
        sys.exit(out)
    sys.exit(0)
