"""Planted dynamics: a generated run set whose true influence structure is known.

Every example (training or test) is a short text about one of K topics, written with that
topic's words. After each step, a test example's loss is multiplied by a factor per
training example in the batch, smaller when the training example shares its topic (it
helps), and raised by an additive term when the training example is about the "rival"
topic (it hurts):

    phi_t(z) = sum_{i in c_t} A_i(z) * phi_{t-1}(z) + sum_{i in c_t} B_i(z) + noise
    A_i(z) = (1 - help * [topic(i) == topic(z)]) / batch
    B_i(z) = hurt * [topic(i) == rival(topic(z))]

The factors depend on the texts only through their topic, which a text encoder sees, so a
feature-based simulator can learn them and carry them to texts it never saw. Used by the
tests and the benchmarks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formats import RawRunWriter, write_processed_run
from .io import write_jsonl

TOPICS = {
    "sports": "football goal striker referee stadium league match coach team penalty tennis racket".split(),
    "cooking": "recipe oven flour butter garlic simmer onion kitchen chef pepper bake sauce".split(),
    "weather": "rain storm forecast cloud thunder snow wind humid sunny temperature drizzle fog".split(),
    "finance": "stock market bank interest loan dividend investor bond inflation budget profit tax".split(),
    "music": "guitar melody concert piano rhythm song chorus drummer violin album lyrics band".split(),
    "space": "planet orbit rocket galaxy astronaut telescope comet moon satellite star nebula launch".split(),
}
FILLER = "the a this that today really quite some about with".split()


@dataclass
class PlantedTask:
    train_path: Path
    eval_path: Path
    run_dirs: list[Path]
    train_topics: np.ndarray
    test_topics: np.ndarray
    help: float
    hurt: float


def _texts(rng: np.random.Generator, topics: np.ndarray, names: list[str]) -> list[str]:
    out = []
    for k in topics:
        words = list(rng.choice(TOPICS[names[k]], size=6, replace=False)) + list(rng.choice(FILLER, size=2))
        rng.shuffle(words)
        out.append("Note: " + " ".join(words) + ".")
    return out


def planted_dynamics(batches: np.ndarray, init: np.ndarray, train_topics: np.ndarray, test_topics: np.ndarray,
                     n_topics: int, help: float, hurt: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Simulate the planted recurrence. batches [T, B] ids; init [N]. Returns values [N, T]."""
    same = train_topics[:, None] == test_topics[None, :]                        # [P, N]
    rival = train_topics[:, None] == (test_topics[None, :] + 1) % n_topics       # [P, N]
    B = batches.shape[1]
    A = (1.0 - help * same) / B
    Bf = hurt * rival
    vals = [init]
    for t in range(1, batches.shape[0]):
        ids = batches[t]
        nxt = A[ids].sum(0) * vals[-1] + Bf[ids].sum(0) + noise * rng.standard_normal(init.shape)
        vals.append(nxt)
    return np.stack(vals, 1)


def make_planted(root: str | os.PathLike, n_train: int = 48, n_test: int = 60, n_runs: int = 12, sample: int = 32,
                 batch: int = 4, epochs: int = 2, n_topics: int = 4, help: float = 0.04, hurt: float = 0.02,
                 noise: float = 0.002, seed: int = 0, raw: bool = False, task: str = "planted") -> PlantedTask:
    """Write sample files and n_runs runs with planted dynamics under root.

    Runs are processed run dirs (root/runs/<task>/run_seed-<s>), or raw GPTDynamics run dirs
    (root/raw/output_<task>_..._seed-<s>) with raw=True. Run seeds are 1..n_runs.
    """
    rng = np.random.default_rng(seed)
    names = list(TOPICS)[:n_topics]
    train_topics = np.arange(n_train) % n_topics
    test_topics = rng.integers(0, n_topics, size=n_test)
    root = Path(root)
    paths = []
    for split, topics in (("train", train_topics), ("eval", test_topics)):
        texts = _texts(rng, topics, names)
        path = root / "data" / f"{task}_{split}.json"
        write_jsonl(path, ({"id": i, "input": t, "context": "", "topic": names[k]}
                           for i, (t, k) in enumerate(zip(texts, topics))))
        paths.append(path)
    base_init = 2.0 + 0.5 * rng.random(n_test)
    run_dirs = []
    for s in range(1, n_runs + 1):
        r = np.random.default_rng(seed * 1000 + s)
        pool = r.choice(n_train, size=sample, replace=False)
        order = np.concatenate([r.permutation(pool) for _ in range(epochs)])
        batches = order[: len(order) // batch * batch].reshape(-1, batch)
        init = base_init + 0.01 * r.standard_normal(n_test)
        vals = planted_dynamics(batches, init, train_topics, test_topics, n_topics, help, hurt, noise, r)
        steps = np.arange(1, batches.shape[0] + 1)
        if raw:
            d = root / "raw" / f"output_{task}_bs-{batch}_shot-{n_train}_sample-{sample}_model-planted_seed-{s}"
            with RawRunWriter(d, task) as w:
                for t, st in enumerate(steps):
                    w.log_step(int(st), float(vals[:, t].mean()), batches[t].tolist())
                    w.write_loss(int(st), range(n_test), vals[:, t].tolist())
        else:
            d = root / "runs" / task / f"run_seed-{s}"
            write_processed_run(d, {int(st): batches[t].tolist() for t, st in enumerate(steps)},
                                {"loss": {i: list(zip(steps.tolist(), vals[i].tolist())) for i in range(n_test)}})
        run_dirs.append(d)
    return PlantedTask(paths[0], paths[1], run_dirs, train_topics, test_topics, help, hurt)
