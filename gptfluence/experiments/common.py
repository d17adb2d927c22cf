"""What every experiment shares: the methods compared, and a work folder where runs, simulators and scores
are made once (named by their settings) and reused by every experiment with the same settings.

All work goes through gptfluence.pipeline (task_files, make_runs, preprocess, train_simulator,
test_simulator, score_baselines); each stage is skipped when its outputs exist, so an interrupted experiment
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..io import DataError, read_json, write_json

log = logging.getLogger("gptfluence.experiments")

UNABLE = "cannot (unseen ids)"


@dataclass(frozen=True)
class Method:
    """A row of the tables: a simulator (or baseline) with its options, trained with `seeds` seeds."""
    label: str
    sim_name: str
    options: tuple = ()          # (("separate_proj", True), ...) passed to TrainSpec
    deterministic: bool = False  # a baseline: one seed says it all

    def spec_options(self) -> dict:
        return dict(self.options)


NO_CHANGE = Method("No change", "no_change", deterministic=True)
MEAN_TRAJECTORY = Method("Mean trajectory", "mean_trajectory", deterministic=True)
SIMFLUENCE = Method("Simfluence", "original")
GPTFLUENCE = Method("GPTfluence (f!=g)", "enc_sim", (("separate_proj", True),))
#: the repo's recommended simulator (closed form: the same data give the same fit whatever the seed)
ANCHOR = Method("anchor_lex_sim (ours)", "anchor_lex_sim", deterministic=True)
#: anchor_sim without the word-overlap effect (a row of the fidelity table, to show what the lexical part adds)
ANCHOR_PLAIN = Method("anchor_sim", "anchor_sim", deterministic=True)
BASELINES = (NO_CHANGE, MEAN_TRAJECTORY)
METHODS = (NO_CHANGE, MEAN_TRAJECTORY, SIMFLUENCE, GPTFLUENCE, ANCHOR)


def method_seeds(method: Method, seeds: list[int]) -> list[int]:
    return seeds[:1] if method.deterministic else list(seeds)


@dataclass
class Workspace:
    """The shared work folder and how to run there (device, threads, progress bars)."""
    root: Path
    device: str = "cpu"
    threads: int = 1
    progress: bool = False
    encoder_cache: str = "default"
    model_cache: str | None = None
    plot_examples: int = 0
    workers: int = 1  # simulators trained at once by train_simulators (worker processes, `threads` threads each)
    pools: object = None  # a runtime.WorkerPools kept open for the work here (runs, simulators); None: new pools

    # -------------------------------------------------------------------------------- data and runs
    def task_files(self, task: str, shot: int, n_test: int, data_seed: int = 0,
                   label_noise: float = 0.0) -> tuple[str, str]:
        from ..pipeline import task_files
        tr, ev = task_files(self.root / "data", task, shot, n_test, seed=data_seed, label_noise=label_noise)
        return str(tr), str(ev)

    def runs(self, key: str, run_spec) -> dict[int, str]:
        """Make (resumably) and preprocess the runs of a RunSpec under <root>/raw/<key>; {seed: processed dir}."""
        from ..pipeline import make_runs, preprocess, processed_dirs
        raw, proc = self.root / "raw" / key, self.root / "runs" / key
        spec = replace(run_spec, output_dir=str(raw), device=self.device, threads=self.threads,
                       progress=self.progress, summary=False, model_cache=self.model_cache)
        make_runs(spec, self.pools)
        dirs = processed_dirs(preprocess(raw, proc, spec.task, progress=self.progress, train_file=spec.train_file,
                                         eval_file=spec.eval_file))
        by_seed = {int(d.name.rsplit("_seed-", 1)[1]): str(d) for d in dirs}
        missing = [s for s in spec.seeds if s not in by_seed]
        if missing:
            raise DataError(f"processed runs missing for seeds {missing} under {proc / spec.task}")
        return {s: by_seed[s] for s in spec.seeds}

    # -------------------------------------------------------------------------------- simulators
    def simulator_spec(self, key: str, method: Method, task: str, metric: str, train_dirs: list, files: tuple,
                       seed: int, valid_num: int, **opts):
        """The TrainSpec of one simulator of this work folder (its run folder named by its settings)."""
        from ..pipeline import TrainSpec
        spec = TrainSpec(sim_name=method.sim_name, task=task, metric=metric, run_dirs=list(train_dirs),
                         valid_num=valid_num, train_file=files[0], eval_file=files[1], seed=seed,
                         output_dir=str(self.root / "sims" / key), embedding_cache=self.encoder_cache,
                         device=self.device, progress=self.progress, resume=True,
                         **{**method.spec_options(), **opts})
        spec.run_name = f"{method.sim_name}{'_fg' if spec.separate_proj else ''}_{metric}_" + _short_hash(spec)
        return spec

    def simulator(self, key: str, method: Method, task: str, metric: str, train_dirs: list, files: tuple,
                  seed: int, valid_num: int, **opts) -> Path:
        """Train one simulator (kept when it finished before); returns its run folder."""
        from ..pipeline import train_simulator
        spec = self.simulator_spec(key, method, task, metric, train_dirs, files, seed, valid_num, **opts)
        if _trained(spec.out_dir()):
            return spec.out_dir()
        return train_simulator(spec).out_dir

    def train_simulators(self, jobs: list[dict]) -> None:
        """Train the simulators of `jobs` (each the keyword arguments of simulator(), plus optionally "heldout": the
        held-out run folders to score it on, as method_scores does) that were not trained (and scored) before,
        `self.workers` at a time in worker processes with `self.threads` torch threads each (the trainings are
        independent and each is deterministic for its settings: a simulator comes out the same, bit for bit, as
        trained alone by simulator(), and so do its scores). The loops that follow find them trained and scored.
        After a failed training the ones not yet started are cancelled, those running finish, and the failure's own
        error is raised here (a call again resumes every unfinished training from its last epoch)."""
        specs, heldout = {}, {}
        for job in jobs:
            job = dict(job)
            test_dirs = job.pop("heldout", None)
            spec = self.simulator_spec(**job)
            out = spec.out_dir()
            scored = test_dirs is None or _stored_score(out / "heldout", test_dirs, spec.test_ids) is not None
            if not _trained(out) or not scored:
                specs.setdefault(str(out), spec)
                if not scored:
                    heldout[str(out)] = list(test_dirs)
        todo = list(specs.values())
        if not todo:
            return
        here = replace(self, pools=None)  # what a worker needs to score as this workspace does (the pool stays here)
        jobs = [(asdict(s), (here, heldout[str(s.out_dir())]) if str(s.out_dir()) in heldout else None)
                for s in todo]
        if self.workers <= 1 or len(todo) == 1:
            for job in jobs:
                _train_worker(*job)
            return
        import time
        from concurrent.futures import FIRST_EXCEPTION, wait

        from ..runtime import pool_for
        todo.sort(key=lambda s: s.sim_name in _CLOSED_FORM)  # the closed forms (seconds) last
        workers = min(self.workers, len(todo))
        t0 = time.time()
        log.info("training %d simulators, %d worker processes x %d thread(s)", len(todo), workers, self.threads)
        shared = self.pools  # the open pool has self.workers processes; a new one needs no more than the trainings
        with pool_for(shared, self.workers if shared is not None else workers, self.threads) as ex:
            futures = {ex.submit(_train_worker, *job): s for job, s in zip(jobs, todo)}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                ex.shutdown(cancel_futures=True)
                if shared is not None:
                    shared.discard(self.workers, self.threads)
                spec = futures[failed[0]]
                log.error("training %s (%s/%s, seed %d) failed; the trainings not yet started were cancelled (a call "
                          "again resumes them)", spec.run_name, spec.task, spec.metric, spec.seed)
                raise failed[0].exception()
        log.info("trained %d simulators in %.1f s", len(todo), time.time() - t0)

    def score(self, ckpt_dir: Path, save_dir: Path, test_dirs: list, ids: list | None = None) -> dict | str:
        """Score a checkpoint on held-out runs (kept when scored before): metrics dict, or UNABLE when the
        simulator refuses ids it never saw (Simfluence)."""
        from ..pipeline import TestSpec, test_simulator
        stored = _stored_score(save_dir, test_dirs, ids)
        if stored is not None:
            return stored
        done, unable = save_dir / "metrics.json", save_dir / "unable.json"
        spec = TestSpec(checkpoint=str(ckpt_dir), test_dirs=list(test_dirs), save_dir=str(save_dir), test_ids=ids,
                        plot_examples=self.plot_examples, embedding_cache=self.encoder_cache, device=self.device,
                        progress=self.progress)
        try:
            m = test_simulator(spec)
        except DataError as e:
            if "never saw" not in str(e) and "cannot simulate" not in str(e):
                raise
            log.info("refused as expected: %s", e)
            save_dir.mkdir(parents=True, exist_ok=True)
            write_json(unable, {"error": str(e)})
            return UNABLE
        m["test_runs_key"] = _key(test_dirs, ids)
        write_json(done, m)
        return m

    def train_methods(self, key: str, methods, task: str, metric: str, train_dirs: list, files: tuple,
                      seeds: list[int], valid_num: int, heldout: list | None = None, **opts) -> None:
        """train_simulators for every seed of every method (each method's seeds by method_seeds); heldout: also
        score each on these held-out runs (with the test ids it is trained on, as method_scores then asks)."""
        extra = {} if heldout is None else {"heldout": list(heldout)}
        self.train_simulators([dict(key=key, method=m, task=task, metric=metric, train_dirs=train_dirs, files=files,
                                    seed=seed, valid_num=valid_num, **extra, **opts)
                               for m in methods for seed in method_seeds(m, seeds)])

    def method_scores(self, key: str, method: Method, task: str, metric: str, train_dirs: list, test_dirs: list,
                      files: tuple, seeds: list[int], valid_num: int, ids: list | None = None,
                      **opts) -> list[dict] | str:
        """Train and score one method with each of its seeds; [metrics per seed], or UNABLE."""
        out = []
        for seed in method_seeds(method, seeds):
            ckpt = self.simulator(key, method, task, metric, train_dirs, files, seed, valid_num, test_ids=ids, **opts)
            m = self.score(ckpt, ckpt / "heldout", test_dirs, ids)
            if isinstance(m, str):
                return m
            out.append(m)
        return out

    def baseline_scores(self, key: str, method: str, k, task: str, train_dirs: list, test_dirs: list,
                        raw_root: Path) -> dict:
        """TracIn-CP(k) / Grad-Dot on the held-out runs (kept when scored before)."""
        from ..pipeline import BaselineSpec, score_baselines
        tag = method if method == "grad_dot" else f"tracin_cp{'all' if k is None else k}"
        save = self.root / "scores" / key / tag
        if (save / "metrics.json").is_file():
            return read_json(save / "metrics.json")
        return score_baselines(BaselineSpec(method=method, num_checkpoints=k, task=task, train_dirs=list(train_dirs),
                                            test_dirs=list(test_dirs), raw_root=str(raw_root), save_dir=str(save),
                                            progress=self.progress))


# simulators fitted in closed form (seconds): trained after the gradient-trained ones by train_simulators
_CLOSED_FORM = ("no_change", "mean_trajectory", "anchor_sim", "anchor_lex_sim")


def _trained(out: Path) -> bool:
    return (out / "history.json").is_file() and (out / "best-checkpoint.pt").is_file()


def _train_worker(spec_dict: dict, score: tuple | None = None) -> str:
    """One simulator trained (when it was not before) in a worker process of worker_pool, or in this process
    (Workspace.train_simulators); score: (a Workspace, held-out run folders) to also score it on them."""
    from ..pipeline import TrainSpec, train_simulator
    spec = TrainSpec(**spec_dict)
    out = spec.out_dir()
    if not _trained(out):
        out = train_simulator(spec).out_dir
    if score is not None:
        ws, test_dirs = score
        ws.score(out, out / "heldout", test_dirs, spec.test_ids)
    return str(out)


def _stored_score(save_dir: Path, test_dirs, ids) -> dict | str | None:
    """What Workspace.score wrote before for these held-out runs (metrics dict, or UNABLE), else None."""
    done = save_dir / "metrics.json"
    if done.is_file():
        m = read_json(done)
        if m.get("test_runs_key") == _key(test_dirs, ids):
            return m
    return UNABLE if (save_dir / "unable.json").is_file() else None


def _key(test_dirs, ids) -> str:
    return hashlib.sha1(json.dumps([sorted(map(str, test_dirs)), ids]).encode()).hexdigest()[:12]


def _short_hash(spec) -> str:
    """A short stable name for a training spec (its settings, without where it runs)."""
    from dataclasses import asdict
    keep = {k: v for k, v in asdict(spec).items()
            if k not in ("output_dir", "run_name", "device", "progress", "resume", "embedding_cache")}
    keep["run_dirs"] = [Path(d).name for d in spec.run_dirs]
    return f"s{spec.seed}_" + hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:10]


def split_runs(dirs: dict, test_runs: int, valid_num: int) -> tuple[list, list]:
    """(training + validation runs, held-out test runs): the last `test_runs` seeds are held out."""
    seeds = sorted(dirs)
    n = len(seeds) - test_runs
    if n < valid_num + 1:
        raise ValueError(f"{len(seeds)} runs leave {n} training runs for {valid_num} validation runs")
    return [dirs[s] for s in seeds[:n]], [dirs[s] for s in seeds[n:]]
