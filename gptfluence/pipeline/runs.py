"""Task files, GPT runs and their preprocessing, as typed steps.

    task_files(root, task, n_train, n_test, seed)  -> (train file, eval file)   built-in tasks, written once
    make_runs(RunSpec(...))                        -> raw run dirs              fine-tune over many curricula
    preprocess(raw_root, output_root, task, ...)   -> processed run dirs        GPTDynamics processed layout
    report_runs(run_dirs, folder, task, ...)       -> dynamics_report.json      do the runs show real learning?

make_runs and preprocess both end with the dynamics report (gptfluence.report) of every run in their output
folder: written as dynamics_report.json there, and printed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io import DataError, file_sha256, load_samples
from ..runtime import pool_for, resolve_device, set_threads

log = logging.getLogger("gptfluence.pipeline")


# ----------------------------------------------------------------------------------------------
# Task files
# ----------------------------------------------------------------------------------------------

def task_files(root: str | Path, task: str, n_train: int | None = None, n_test: int | None = None,
               seed: int = 0, label_noise: float = 0.0) -> tuple[Path, Path]:
    """The built-in task's (training pool, test set) sample files under root, written when missing
    (deterministic by seed). label_noise > 0 flips that fraction of the training labels (classification)."""
    from .. import tasks
    if label_noise:
        train_p, eval_p = tasks.task_file_paths(root, task, n_train or tasks.DEFAULT_N_TRAIN, n_test)
        train_p = train_p.with_name(train_p.name.replace(task, f"{task}_mislabelled-{label_noise:g}", 1))
        if not (train_p.is_file() and eval_p.is_file()):
            train, test = tasks.build_task(task, n_train or tasks.DEFAULT_N_TRAIN, n_test, seed,
                                           label_noise=label_noise)
            from ..io import write_jsonl
            write_jsonl(train_p, train)
            write_jsonl(eval_p, test)
        return train_p, eval_p
    return tasks.ensure_task_files(root, task, n_train, n_test, seed=seed)


# ----------------------------------------------------------------------------------------------
# Making runs
# ----------------------------------------------------------------------------------------------

@dataclass
class RunSpec:
    """Settings of a set of runs (one per seed). train_file / eval_file None: the built-in task's files
    under data_root (written when missing). metrics None: BLEU / ROUGE for the generation tasks only."""
    task: str = "rte"
    seeds: list = field(default_factory=lambda: [1])
    train_file: str | None = None
    eval_file: str | None = None
    data_root: str = "gptdynamics"
    n_test: int | None = None
    data_seed: int = 0
    model: str = "small"
    model_seed: int = 0
    model_cache: str | None = None
    max_len: int = 256
    append_eos: bool = True
    shot: int = 200
    sample: int = 128
    bs: int = 4
    epochs: int = 3
    lr: float = 1e-4
    weight_decay: float = 0.001
    loss_last_token: bool = False
    record_interval: int = 1
    pool_ids: list | None = None
    exclude_ids: list | None = None
    swap_steps: list | None = None
    metrics: bool | None = None
    do_sample: bool = False
    top_p: float = 0.95
    temperature: float = 0.2
    gen_len_factor: float = 1.5
    grad_features: bool = False
    grad_steps: str = "10"
    grad_dim: int = 256
    grad_seed: int = 0
    output_dir: str = "gptdynamics/runs_raw"
    device: str = "cpu"
    bf16: bool = False
    tf32: bool = False
    eval_batch_size: int = 0  # 0: CPU_EVAL_BATCH on the CPU, GPU_EVAL_BATCH on a GPU
    gen_batch_size: int = 64
    threads: int = 0
    workers: int = 0
    progress: bool = True
    summary: bool = True


def check_run_spec(s: RunSpec) -> None:
    """Refuse settings that cannot make runs, before any work (one line naming the flag)."""
    if not s.seeds:
        raise ValueError("no run seeds given (e.g. --seeds 1-27)")
    for flag, v in (("bs", s.bs), ("epochs", s.epochs), ("shot", s.shot), ("sample", s.sample),
                    ("record_interval", s.record_interval), ("max_len", s.max_len),
                    ("gen_batch_size", s.gen_batch_size), ("grad_dim", s.grad_dim)):
        if v < 1:
            raise ValueError(f"--{flag} must be >= 1, got {v}")
    if s.eval_batch_size < 0:
        raise ValueError(f"--eval_batch_size must be >= 1 (0 = the default for the device), got {s.eval_batch_size}")
    if not (math.isfinite(s.lr) and s.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {s.lr}")
    if not (math.isfinite(s.weight_decay) and s.weight_decay >= 0):
        raise ValueError(f"--weight_decay must be >= 0, got {s.weight_decay}")
    if s.sample > s.shot:
        raise ValueError(f"--sample {s.sample} is larger than the training pool (--shot {s.shot})")
    if s.do_sample and not (0 < s.top_p <= 1 and s.temperature > 0):
        raise ValueError(f"--top_p must lie in (0, 1] and --temperature be > 0, got {s.top_p}, {s.temperature}")
    if s.threads < 0:
        raise ValueError(f"--threads must be >= 0 (0 = the default for the machine), got {s.threads}")
    if s.workers < 0:
        raise ValueError(f"--workers must be >= 0 (0 = the default for the machine), got {s.workers}")
    if len(set(s.seeds)) != len(s.seeds):
        raise ValueError(f"--seeds repeats a seed: {s.seeds}")
    out = Path(s.output_dir)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise DataError(f"--output_dir {s.output_dir}: {parent} is a file, not a folder")


def resolve_task_files(s: RunSpec) -> tuple[Path, Path]:
    if s.train_file and s.eval_file:
        return Path(s.train_file), Path(s.eval_file)
    from .. import tasks
    tasks.check_task(s.task)
    train_p, eval_p = task_files(s.data_root, s.task, s.shot, s.n_test, seed=s.data_seed)
    return Path(s.train_file or train_p), Path(s.eval_file or eval_p)


# Test examples per scoring batch (losses, gradient features, label words). On the CPU small batches are faster:
# on the default preset's webnlg test set (50 examples, 26-86 tokens) one scoring took 118 ms at 16 and 150 ms at
# 64, and two processes scoring side by side slowed each other at 64 (rte: 92 -> 115-123 ms) but not at 8 (92 ms):
# a batch's activations then stay in the core's own cache. Decoding wants the opposite (a step costs about the
# same for 16 rows as for 64): 403 ms at 16, 238 ms at 64 (gen_batch_size).
CPU_EVAL_BATCH = 16
GPU_EVAL_BATCH = 64


def run_settings(s: RunSpec, train_p: Path, eval_p: Path, device=None) -> dict:
    """Everything that determines a run's numbers (stored in run_args.json and compared on resume), and how they
    are computed (the batch sizes of scoring and decoding: they change the numbers only by float rounding)."""
    from ..basemodel import model_tag
    from ..runmaker import is_generation_task
    metrics = is_generation_task(s.task) if s.metrics is None else s.metrics
    return {"task": s.task, "model": s.model, "model_seed": s.model_seed, "model_tag": model_tag(s.model, s.model_seed),
            "train_data_path": str(train_p), "eval_data_path": str(eval_p),
            "train_sha": file_sha256(train_p)[:16], "eval_sha": file_sha256(eval_p)[:16],
            "shot": s.shot, "sample": s.sample, "bs": s.bs, "epochs": s.epochs, "lr": s.lr,
            "weight_decay": s.weight_decay, "loss_last_token": s.loss_last_token, "append_eos": s.append_eos,
            "max_len": s.max_len, "record_interval": s.record_interval, "metrics": bool(metrics),
            "do_sample": s.do_sample, "top_p": s.top_p, "temperature": s.temperature,
            "gen_len_factor": s.gen_len_factor, "grad_features": s.grad_features, "grad_steps": s.grad_steps,
            "grad_dim": s.grad_dim, "grad_seed": s.grad_seed, "bf16": s.bf16, "tf32": s.tf32,
            "eval_batch_size": s.eval_batch_size or (CPU_EVAL_BATCH if device is None or device.type == "cpu"
                                                     else GPU_EVAL_BATCH),
            "gen_batch_size": s.gen_batch_size, "pool_ids": s.pool_ids, "exclude_ids": s.exclude_ids,
            "swap_steps": s.swap_steps}


def launcher_shard(seeds: list[int]) -> tuple[list[int], int, int]:
    """The seeds this process makes under a launcher: torchrun / accelerate (RANK, WORLD_SIZE) or a Slurm array
    (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT): rank r of W makes seeds r, r + W, ... Returns (seeds, r, W)."""
    import os
    env = os.environ
    if "WORLD_SIZE" in env and "RANK" in env:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    elif "SLURM_ARRAY_TASK_COUNT" in env and "SLURM_ARRAY_TASK_ID" in env:
        rank = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        world = int(env["SLURM_ARRAY_TASK_COUNT"])
    else:
        return list(seeds), 0, 1
    if not 0 <= rank < world:
        raise ValueError(f"launcher rank {rank} outside 0..{world - 1}")
    return list(seeds)[rank::world], rank, world


def plan_workers(spec: RunSpec, device, n_seeds: int, world: int = 1) -> tuple[int, int]:
    """(worker processes, torch threads per worker). On a GPU, or under a launcher that already starts one process
    per slot: one process. On the CPU the defaults spread the machine's cores over processes with one thread each
    (several small runs at once beat one run with several threads: bench/bench_runs.py measures it); explicit
    --workers / --threads win."""
    import os

    from ..runtime import usable_cores
    cores = usable_cores()
    if world > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        return max(1, spec.workers), spec.threads or max(1, cores // max(1, local))
    if device.type != "cpu":
        return 1, spec.threads or 1
    workers = spec.workers or min(cores, n_seeds)
    workers = max(1, min(workers, n_seeds))
    return workers, spec.threads or max(1, cores // workers)


def make_runs(spec: RunSpec, pools=None) -> list[Path]:
    """Make (resumably) one raw run per seed under spec.output_dir; returns the run folders of the seeds this
    process made (all of them, or its share under a launcher). Several worker processes on the CPU (plan_workers);
    the files of a run do not depend on which process made it. pools: a runtime.WorkerPools whose open workers
    to use (e.g. across the tasks of an experiment; each keeps the base models it loaded), else new ones."""
    from .. import runmaker
    from ..basemodel import PRESETS, ensure_preset_model, get_base_model, resolved_path
    check_run_spec(spec)
    train_p, eval_p = resolve_task_files(spec)
    train, test = load_samples(train_p), load_samples(eval_p)
    if spec.shot > len(train):
        raise DataError(f"--shot {spec.shot} is larger than the training file {train_p} ({len(train)} samples)")
    seeds, rank, world = launcher_shard(spec.seeds)
    device = _device(spec, world)
    settings = run_settings(spec, train_p, eval_p, device)
    runmaker.make_curriculum(spec.shot, spec.sample, spec.bs, spec.epochs, spec.seeds[0], spec.pool_ids,
                             spec.exclude_ids, spec.swap_steps)  # bad pool / exclude / swap fail here, before any work
    runmaker.check_output_dir(spec.output_dir, settings)
    workers, threads = plan_workers(spec, device, len(seeds), world)  # as for a fresh start: the same threads
    set_threads(threads)
    todo = [s for s in seeds
            if not (Path(spec.output_dir) / runmaker.run_dir_name(settings, s) / runmaker.DONE_FILE).is_file()]
    if len(todo) < len(seeds):
        log.info("%d of the %d runs of %s finished before: kept", len(seeds) - len(todo), len(seeds), spec.task)
    if todo and (workers == 1 or spec.model not in PRESETS):
        # loaded here: by the one process that makes the runs, or to fail early, with one clear error, on a folder
        # or hub name that cannot be loaded
        model, tok = get_base_model(spec.model, spec.model_cache, seed=spec.model_seed, device=device,
                                    progress=spec.progress)
    elif todo:  # a preset: built (and cached) once before any worker starts, loaded only by the workers
        ensure_preset_model(spec.model, spec.model_cache, seed=spec.model_seed, progress=spec.progress)
    t0 = time.time()
    if todo:
        log.info("%d runs of %s (rank %d of %d): %d worker process(es) x %d thread(s) on %s", len(todo), spec.task,
                 rank, world, min(workers, len(todo)), threads, device)
    if todo and workers == 1:
        maker = runmaker.RunMaker(model, tok, train, test, settings, device=device, progress=spec.progress)
        runmaker.make_runs(maker, todo, spec.output_dir)
    elif todo:
        path = resolved_path(spec.model, spec.model_cache, spec.model_seed)  # the model built above, as a folder
        jobs = [(asdict(spec), settings, todo[w::workers], path) for w in range(min(workers, len(todo)))]
        # an open pool has `workers` processes (as planned for all the seeds); a new one needs no more than the jobs
        with pool_for(pools, workers if pools is not None else len(jobs), threads) as ex:
            list(ex.map(_worker, jobs))
    dirs = [Path(spec.output_dir) / runmaker.run_dir_name(settings, s) for s in seeds]
    log.info("%d runs in %s (%.1f s)", len(dirs), spec.output_dir, time.time() - t0)
    if spec.summary and dirs:
        report_raw_runs(spec.output_dir, spec.task, settings["train_data_path"], settings["eval_data_path"])
    return dirs


def report_raw_runs(raw_root: str | Path, task: str, train_file=None, eval_file=None) -> dict | None:
    """The dynamics report of every finished raw run under raw_root (made by make_runs), written as
    raw_root/dynamics_report.json and printed. The runs are preprocessed into a temporary folder for it."""
    import tempfile

    from .. import preprocess as P
    from ..runmaker import DONE_FILE
    raw_dirs = sort_by_seed(d for d in Path(raw_root).glob(f"output_{task}_*") if (d / DONE_FILE).is_file())
    if not raw_dirs:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        P.preprocess_runs(raw_dirs, tmp, task, default_metrics(task), progress=False)
        return report_runs([Path(tmp) / d.name for d in raw_dirs], raw_root, task, train_file, eval_file)


def report_runs(run_dirs, folder: str | Path, task: str, train_file=None, eval_file=None) -> dict | None:
    """The dynamics report of processed runs (gptfluence.report.task_report: the loss, and BLEU / ROUGE-L for a
    generation task), written as folder/dynamics_report.json and printed. Runs that cannot be reported together
    (e.g. recorded at different steps) get a logged reason instead of a report."""
    from ..report import format_report, task_report, write_report
    from ..runs import trajectory_file
    run_dirs = [Path(d) for d in run_dirs]
    metrics = [m for m in ("loss", "bleu", "rougeL")
               if m in default_metrics(task) and all(trajectory_file(d, m).is_file() for d in run_dirs)]
    if not run_dirs or not metrics:
        return None
    try:
        rep = task_report(run_dirs, metrics, train_file, eval_file)
    except DataError as e:
        log.warning("%s: no dynamics report for these %d runs (%s)", folder, len(run_dirs), e)
        return None
    write_report(rep, folder)
    print(f"dynamics report ({Path(folder) / 'dynamics_report.json'}):\n  " + "\n  ".join(format_report(rep)))
    return rep


def _device(spec: RunSpec, world: int):
    import os
    device = resolve_device(spec.device)
    if device.type == "cuda" and world > 1 and "LOCAL_RANK" in os.environ:
        import torch
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}")
    if device.type == "cuda" and spec.tf32:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


_LOADED: dict = {}  # in a worker process: the base models it loaded, {(folder, device): (model, tokenizer)}


def _worker(job) -> None:
    """One worker process of worker_pool: its share of the seeds, with the same settings. The base model is loaded
    once per process (a RunMaker fine-tunes a copy of it), so a pool kept open across calls loads it once."""
    from .. import runmaker
    from ..basemodel import get_base_model
    spec_dict, settings, seeds, model_path = job
    spec = RunSpec(**spec_dict)
    device = resolve_device(spec.device)
    key = (str(model_path), str(device))
    if key not in _LOADED:
        _LOADED[key] = get_base_model(model_path, device=device, progress=False)
    model, tok = _LOADED[key]
    train, test = load_samples(settings["train_data_path"]), load_samples(settings["eval_data_path"])
    maker = runmaker.RunMaker(model, tok, train, test, settings, device=device, progress=False)
    runmaker.make_runs(maker, seeds, spec.output_dir)


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------

def default_metrics(task: str) -> list[str]:
    """loss for every task; + bleu, rougeL, rouge1, rouge2 for the generation tasks."""
    from ..runmaker import is_generation_task
    return ["loss", "bleu", "rougeL", "rouge1", "rouge2"] if is_generation_task(task) else ["loss"]


def preprocess(raw_root: str | Path, output_root: str | Path, task: str, metrics: list[str] | None = None,
               run_glob: str | list[str] | None = None, subtasks: dict | None = None, workers: int = 1,
               overwrite: bool = False, allow_nonfinite: bool = False, progress: bool = True,
               train_id_offset: int = 0, train_file=None, eval_file=None) -> list:
    """Raw run dirs under raw_root -> processed run dirs under output_root/task; prints a summary and returns the
    per-run reports (gptfluence.preprocess.RunReport: status, out_dir, gaps, ...). processed_dirs(reports) gives
    the processed run dirs sorted by seed. Ends with the dynamics report of every processed run in
    output_root/task (the sample files, when given, let it group the training examples by label or topic)."""
    from .. import preprocess as P
    globs = [run_glob] if isinstance(run_glob, str) else list(run_glob or [f"output_{task}_*"])
    raw_dirs = P.find_raw_runs(raw_root, globs)
    reports = P.preprocess_runs(raw_dirs, Path(output_root) / task, task, metrics or default_metrics(task), subtasks,
                                allow_nonfinite, overwrite, workers, progress=progress,
                                train_id_offset=train_id_offset)
    print(P.summarize(reports))
    done = [d for d in (Path(output_root) / task).iterdir() if (d / P.MARKER).is_file()] \
        if (Path(output_root) / task).is_dir() else []
    report_runs(sort_by_seed(done), Path(output_root) / task, task, train_file, eval_file)
    return reports


def processed_dirs(reports) -> list[Path]:
    """The processed run dirs of a preprocess() call (raw runs still being written left out), sorted by seed."""
    return sort_by_seed(Path(r.out_dir) for r in reports if r.status != "incomplete")


def sort_by_seed(dirs) -> list[Path]:
    def key(d: Path):
        tail = d.name.rsplit("_seed-", 1)
        return (int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 1 << 30, d.name)
    return sorted((Path(d) for d in dirs), key=key)


def spec_dict(spec) -> dict:
    return asdict(spec)
