"""Curricula: which training examples a run sees, in which order and batch."""

from __future__ import annotations

from typing import Sequence

import torch

from ..io import DataError


def make_curriculum(shot: int, sample: int, bs: int, epochs: int, seed: int,
                    pool_ids: Sequence[int] | None = None, exclude_ids: Sequence[int] | None = None,
                    swap_steps: Sequence[int] | None = None) -> list[list[int]]:
    """The batches of one run: K = `sample` ids drawn from the pool without replacement,
    shuffled anew every epoch, cut into batches of `bs` (a last partial batch is kept).

    pool_ids: draw only from these pool positions (default range(shot)), e.g. one half of the
    pool for the unseen-data experiments. exclude_ids: remove these from every batch of the
    curriculum the seed gives (a counterfactual re-run: the other examples keep their steps;
    a batch can shrink, or become empty, in which case that step makes no update). swap_steps (a, b), 1-based:
    the batches of steps a and b trade places, every other step unchanged (the same examples, as often, in a
    different order: the smallest change of a curriculum, used to measure how chaotic the training is).
    """
    candidates = list(range(shot)) if pool_ids is None else [int(i) for i in pool_ids]
    bad = [i for i in candidates if not 0 <= i < shot]
    if bad:
        raise DataError(f"--pool_ids {bad[:5]} are outside the training pool 0..{shot - 1}")
    if sample > len(candidates):
        raise DataError(f"--sample {sample} is larger than the training pool ({len(candidates)} ids to draw from)")
    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor(candidates)
    chosen = pool[torch.randperm(len(candidates), generator=g)[:sample]]
    batches = []
    for _ in range(epochs):
        perm = chosen[torch.randperm(sample, generator=g)].tolist()
        batches.extend(perm[i:i + bs] for i in range(0, sample, bs))
    if exclude_ids:
        drop = set(int(i) for i in exclude_ids)
        batches = [[i for i in b if i not in drop] for b in batches]
    if swap_steps:
        if len(swap_steps) != 2 or not all(1 <= int(x) <= len(batches) for x in swap_steps):
            raise DataError(f"--swap_steps {list(swap_steps)}: expected two steps in 1..{len(batches)} "
                            f"(the run has {len(batches)} steps)")
        a, b = (int(x) - 1 for x in swap_steps)
        batches[a], batches[b] = batches[b], batches[a]
    return batches

def format_lr(lr: float) -> str:
    """5e-07 -> "5e-7", 0.00025 -> "2.5e-4" (the released folder-name style)."""
    mant, exp = f"{lr:e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"
