"""Benchmark: our vectorised simulator vs a reference written the released way.

Same generated data for both (planted dynamics, default 25 training + 2 validation runs,
200 training and 200 test examples, 96 steps, batch 4) and the same enc_sim architecture.

- reference: per-transition dataset items collated into minibatches of 128 for training;
  rollout with one test example and one step per forward call;
- ours: factor tables from per-example features, gather-sum over batch ids, recurrence
  over steps for all runs and test examples at once.

Prints, measured in this run: rollout time and ratio; time for each to reach the same
validation MSE (the reference's after --ref_epochs epochs) and the ratio.

    python bench/bench_simulator.py            # full size (a few minutes on 2 cores)
    python bench/bench_simulator.py --quick    # small sizes, seconds
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gptfluence.encoders import embed_texts
from gptfluence.io import load_samples
from gptfluence.metrics import evaluate
from gptfluence.rollout import (
    rollout,
    teacher_forced,
    transition_index,
)
from gptfluence.runs import load_runs
from gptfluence.simulators import EncSim
from gptfluence.synthetic import make_planted
from gptfluence.training import Dynamics, TrainConfig, make_optimizer, validate


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (8+2 runs, 40 x 40 examples, 32 steps)")
    p.add_argument("--ref_epochs", type=int, default=2, help="reference training epochs that set the target MSE")
    p.add_argument("--ours_bs", type=int, default=16384,
                   help="our minibatch of transitions (the per-step cost is the MLPs over all examples, so large "
                        "batches are nearly free)")
    p.add_argument("--ours_lr", type=float, default=3e-3, help="our learning rate")
    p.add_argument("--ours_max_epochs", type=int, default=60, help="give up after this many of our epochs")
    p.add_argument("--rollout_runs", type=int, default=None, help="runs in the rollout timing (default all)")
    p.add_argument("--skip_rollout", action="store_true", help="only the training comparison")
    p.add_argument("--seed", type=int, default=42, help="seed")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- the released way
class RefEncSim(nn.Module):
    """enc_sim as released: per-sample tensors in, one MLP per factor applied to both sides."""

    def __init__(self, d):
        super().__init__()
        self.alpha = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.beta = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))

    def forward(self, train_emb, test_emb, prev):
        # train_emb [b, M, d] (zeros for padding), test_emb [b, d], prev [b]
        pad = (train_emb.abs().sum(-1) > 0).float()                          # [b, M]
        a = ((self.alpha(train_emb) * self.alpha(test_emb)[:, None]).sum(-1) * pad).sum(-1)
        b = ((self.beta(train_emb) * self.beta(test_emb)[:, None]).sum(-1) * pad).sum(-1)
        return a * prev + b


class TransitionDataset(Dataset):
    def __init__(self, data: Dynamics, tr_emb, te_emb):
        self.data, self.tr, self.te = data, tr_emb, te_emb
        self.idx = transition_index(data.mask, 1).tolist()

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, k):
        r, n, t = self.idx[k]
        emb = self.tr[self.data.batches[r, t]]  # [M, d]; padding ids (-1) point at the zero row
        test = self.te[int(self.data.test_rows[n])]
        return emb, test, self.data.values[r, n, t - 1], self.data.values[r, n, t]


@torch.no_grad()
def ref_rollout(model, data: Dynamics, tr, te):
    R, N, T = data.values.shape
    pred = torch.zeros(R, N, T)
    for r in range(R):
        for n in range(N):
            phi = data.values[r, n, 0]
            pred[r, n, 0] = phi
            test = te[int(data.test_rows[n])][None]
            for t in range(1, T):
                emb = tr[data.batches[r, t]][None]
                phi = model(emb, test, phi.view(1))[0]
                pred[r, n, t] = phi
    return pred


def ref_train(model, train, valid, tr, te, epochs, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    loader = DataLoader(TransitionDataset(train, tr, te), batch_size=128, shuffle=True)
    t0, curve = time.perf_counter(), []
    for ep in range(epochs):
        for emb, test, prev, target in loader:
            loss = torch.mean((model(emb, test, prev) - target) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        val = evaluate(ref_rollout(model, valid, tr, te), valid.values, valid.mask)["all_steps_mse_mean"]
        curve.append((time.perf_counter() - t0, val))
        print(f"  reference epoch {ep + 1}: valid MSE {val:.5f}  ({curve[-1][0]:.1f}s)")
    return curve


# ----------------------------------------------------------------------------- ours
def ours_train_until(sim, train, valid, target, bs, lr, max_epochs, seed):
    torch.manual_seed(seed)
    idx = transition_index(train.mask, sim.order)
    steps = math.ceil(len(idx) / bs)
    opt, sched = make_optimizer(sim, TrainConfig(lr=lr, weight_decay=1e-5, warmup_steps=20), max_epochs * steps)
    t0 = time.perf_counter()
    for ep in range(max_epochs):
        perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed + ep))
        for k in range(steps):
            b = idx[perm[k * bs:(k + 1) * bs]]
            pred = teacher_forced(sim, train.values, train.batches, train.test_rows, b)
            loss = torch.mean((pred - train.values[b[:, 0], b[:, 1], b[:, 2]]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val = validate(sim, valid)["all_steps_mse_mean"]
        val = math.inf if val is None else val
        print(f"  ours epoch {ep + 1}: valid MSE {val:.5f}  ({time.perf_counter() - t0:.1f}s)")
        if val <= target:
            return time.perf_counter() - t0, ep + 1, val
    return None, max_epochs, val


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    sizes = dict(n_train=40, n_test=40, n_runs=10, sample=32, epochs=4) if args.quick else \
        dict(n_train=200, n_test=200, n_runs=27, sample=128, epochs=3)
    tmp = tempfile.mkdtemp(prefix="bench_sim_")
    task = make_planted(tmp, seed=args.seed, **sizes)
    rs = load_runs(task.run_dirs, "loss")
    data = Dynamics.from_runset(rs)
    train, valid = data.runs(list(range(2, data.num_runs))), data.runs([0, 1])
    tr = embed_texts([s["input"] for s in load_samples(task.train_path)], show_progress=False)
    te = embed_texts([s["input"] for s in load_samples(task.eval_path)], show_progress=False)
    R, N, T = train.values.shape
    tr_pad = torch.cat([tr, torch.zeros(1, tr.shape[1])])  # reference: id -1 -> zero row
    print(f"data: {R} training + 2 validation runs, {tr.shape[0]} train x {N} test examples, {T} steps, "
          f"batch {train.batches.shape[-1]}; torch threads {torch.get_num_threads()}")

    if not args.skip_rollout:  # the same weights in both implementations
        bench_rollout(args, data, tr, te, tr_pad, N, T)
    train_to_same_mse(args, train, valid, tr, te, tr_pad)


def bench_rollout(args, data, tr, te, tr_pad, N, T):
    torch.manual_seed(args.seed)
    ref = RefEncSim(tr.shape[1])
    ours = EncSim(tr, te)
    ours.alpha_f[0].load_state_dict(ref.alpha.state_dict())
    ours.beta_f.load_state_dict(ref.beta.state_dict())
    roll = data.runs(list(range(args.rollout_runs or data.num_runs)))
    n_traj = roll.values.shape[0] * N
    t0 = time.perf_counter()
    p_ref = ref_rollout(ref, roll, tr_pad, te)
    t_ref = time.perf_counter() - t0
    rollout(ours, roll.batches, roll.values[..., 0], roll.test_rows)  # warm-up
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        p_ours = rollout(ours, roll.batches, roll.values[..., 0], roll.test_rows)
    t_ours = (time.perf_counter() - t0) / reps
    agree = torch.allclose(p_ref, p_ours, rtol=1e-3, atol=1e-3)
    print(f"rollout of {n_traj} trajectories x {T - 1} steps: reference {t_ref:.2f}s "
          f"({n_traj * (T - 1) / t_ref:,.0f} steps/s), ours {t_ours * 1e3:.1f} ms; "
          f"ratio {t_ref / t_ours:,.0f}x; same predictions: {agree}")


def train_to_same_mse(args, train, valid, tr, te, tr_pad):
    print(f"training to the same validation MSE (reference: {args.ref_epochs} epochs, bs 128, lr 1e-4; "
          "target = its best validation MSE, timed when first reached)")
    curve = ref_train(RefEncSim(tr.shape[1]), train, valid, tr_pad, te, args.ref_epochs, args.seed)
    t_ref_train, target = min(curve, key=lambda c: c[1])
    torch.manual_seed(args.seed)
    t_ours_train, ep, val = ours_train_until(EncSim(tr, te), train, valid, target, args.ours_bs, args.ours_lr,
                                             args.ours_max_epochs, args.seed)
    if t_ours_train is None:
        print(f"ours did not reach the reference's validation MSE {target:.5f} in {ep} epochs (best {val:.5f})")
    else:
        print(f"time to validation MSE <= {target:.5f}: reference {t_ref_train:.1f}s, ours {t_ours_train:.1f}s "
              f"({ep} epochs, bs {args.ours_bs}, lr {args.ours_lr}); ratio {t_ref_train / t_ours_train:.1f}x")


if __name__ == "__main__":
    main()
