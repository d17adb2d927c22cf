"""Benchmark: influence of every training example on every test example, vectorised vs a loop.

Planted task (make_planted, default 200 training x 200 test examples, one run of 128 sampled
examples x 3 epochs, batch 4 = 96 steps) and an enc_sim on random embeddings (d = 384,
freshly initialised: the timing does not depend on the weights).

- loop: one rollout (gptfluence.rollout.rollout) per removed training example, the way a
  counterfactual is usually computed; every rollout rebuilds the factors of its curriculum;
- ours: gptfluence.influence.influence: factor tables once, then one recurrence over the
  steps for all [P, N] counterfactuals at once.

Prints both times (best of --repeats), the ratio, and the largest difference between the two.

    python bench/bench_influence.py
    python bench/bench_influence.py --n_train 60 --n_test 60 --sample 40   # seconds
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from gptfluence.influence import influence, reference_influence
from gptfluence.runs import load_runs
from gptfluence.simulators import EncSim
from gptfluence.synthetic import make_planted


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--n_train", type=int, default=200, help="training pool size P")
    a("--n_test", type=int, default=200, help="test examples N")
    a("--sample", type=int, default=128, help="training examples sampled into the run")
    a("--epochs", type=int, default=3, help="passes over the sample (steps = sample * epochs / batch)")
    a("--batch", type=int, default=4, help="batch size")
    a("--dim", type=int, default=384, help="embedding width of the random embeddings")
    a("--mode", default="remove", choices=["remove", "add"], help="counterfactual")
    a("--repeats", type=int, default=3, help="time the vectorised version this many times, keep the best")
    a("--threads", type=int, default=2, help="torch threads (the target is stated for 2 cores)")
    a("--seed", type=int, default=0, help="seed of the data and the simulator")
    return p.parse_args(argv)


def setup(args, root: str):
    """Planted run + an enc_sim on random embeddings: (sim, batches [1, T, M], init [1, N])."""
    task = make_planted(root, n_train=args.n_train, n_test=args.n_test, n_runs=1, sample=args.sample,
                        batch=args.batch, epochs=args.epochs, seed=args.seed)
    rs = load_runs(task.run_dirs, use_cache=False)
    g = torch.Generator().manual_seed(args.seed)
    sim = EncSim(torch.randn(args.n_train, args.dim, generator=g), torch.randn(args.n_test, args.dim, generator=g))
    sim.eval()
    tame(sim, args.batch)
    return sim, rs.batches, rs.values[..., 0]


@torch.no_grad()
def tame(sim: EncSim, batch: int, alpha_scale: float = 0.7, beta_scale: float = 0.01) -> None:
    """Rescale the last layers so that a batch's alpha is about alpha_scale and beta about beta_scale
    in size (random weights otherwise give factors that make every trajectory diverge)."""
    A, B = sim.factor_tables(torch.arange(sim.n_test))
    for mlps, table, target in ((sim.alpha_f, A, alpha_scale / batch), ([sim.beta_f], B, beta_scale / batch)):
        s = (target / table[:-1].abs().mean().item()) ** 0.5  # factors are products of two features
        for m in mlps:
            m[-1].weight.mul_(s)
            m[-1].bias.mul_(s)


def timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as root:
        sim, batches, init = setup(args, root)
    T = batches.shape[1]
    print(f"{args.n_train} training x {args.n_test} test examples, {T} steps (batch {args.batch}), "
          f"mode {args.mode}, {torch.get_num_threads()} threads")
    t_ours, res = timed(lambda: influence(sim, batches, init, mode=args.mode), args.repeats)
    t_loop, ref = timed(lambda: reference_influence(sim, batches, init, mode=args.mode))
    diff = (res.final.float() - ref).abs().max().item()
    scale = ref.abs().max().item()
    print(f"loop of {args.n_train} single rollouts: {t_loop:8.3f} s")
    print(f"vectorised (best of {args.repeats}):      {t_ours:8.3f} s")
    print(f"ratio loop / ours: {t_loop / t_ours:.1f}x   (target: ours < 1 s on 2 cores: "
          f"{'met' if t_ours < 1 else 'NOT met'})")
    print(f"max |ours - loop| = {diff:.3g} (largest |score| {scale:.3g})")
    return {"ours_s": t_ours, "loop_s": t_loop, "ratio": t_loop / t_ours, "max_abs_diff": diff}


if __name__ == "__main__":
    main()
