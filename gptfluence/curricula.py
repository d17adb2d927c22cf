"""Curricula as tensors: batches [R, T, M] of training ids (-1 = padding), their checks, the membership
counts of a counterfactual edit, curriculum files, and edited copies of a curriculum."""

from __future__ import annotations

import torch

from .io import DataError
from .simulators.base import batch_counts

MODES = ("remove", "add")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown influence mode {mode!r} (expected one of {', '.join(MODES)})")


def as_runs(batches: torch.Tensor) -> torch.Tensor:
    """A curriculum [T, M] or a set [R, T, M] of training ids (-1 = padding) -> LongTensor [R, T, M]."""
    batches = torch.as_tensor(batches, dtype=torch.long)
    if batches.dim() == 2:
        batches = batches[None]
    if batches.dim() != 3:
        raise ValueError(f"batches: expected [T, M] or [R, T, M], got shape {tuple(batches.shape)}")
    return batches


def as_init(init, R: int, N: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """Initial values: a number, [N] (shared by the runs) or [R, N] -> [R, N]."""
    init = torch.as_tensor(init, dtype=dtype, device=device)
    if init.dim() == 0:
        return init.expand(R, N).clone()
    if init.dim() == 1:
        init = init[None].expand(R, -1)
    if tuple(init.shape) != (R, N):
        raise ValueError(f"init: expected a number, [{N}] or [{R}, {N}] values, got shape {tuple(init.shape)}")
    return init.clone()


def check_ids(batches: torch.Tensor, n_train: int, where: str = "curriculum", steps=None) -> None:
    """Refuse training ids outside 0..n_train-1 (-1 is padding), naming the step and the id."""
    bad = (batches >= n_train) | (batches < -1)
    if bad.any():
        r, t, m = torch.nonzero(bad)[0].tolist()
        step = int(steps[t]) if steps is not None else t
        raise DataError(f"{where}: step {step}: training id {int(batches[r, t, m])} is outside the pool "
                        f"(expected ids 0..{n_train - 1})")


def counterfactual_counts(batches: torch.Tensor, n_train: int, mode: str = "remove",
                          insert_steps=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Change of membership counts of each example's counterfactual, and which examples it applies to.

    batches [R, T, M]. insert_steps (mode "add" only): step slots t (ints in 1..T-1) or a bool mask [T];
    example i is inserted once into each of them instead of duplicated in its own batches.
    Returns delta [R, T, P] (float64; column i = count change of example i in its counterfactual) and
    used [R, P] (bool; True where the counterfactual changes a simulated step t >= 1).
    """
    check_mode(mode)
    R, T, _ = batches.shape
    counts = batch_counts(batches.reshape(R * T, -1), n_train).reshape(R, T, n_train).double()
    if insert_steps is not None:
        if mode != "add":
            raise ValueError("insert_steps only applies to mode 'add'")
        slots = torch.zeros(T, dtype=torch.bool, device=batches.device)
        ix = torch.as_tensor(insert_steps, device=batches.device)
        if ix.dtype == torch.bool:
            slots = ix.clone()
        else:
            if ix.numel() and (int(ix.min()) < 1 or int(ix.max()) >= T):
                raise ValueError(f"insert_steps: step slots must lie in 1..{T - 1} (slot 0 is never simulated)")
            slots[ix.long()] = True
        delta = slots.double()[None, :, None].expand(R, T, n_train).clone()
    else:
        delta = -counts if mode == "remove" else counts.clone()
    delta[:, 0] = 0.0  # batches[:, 0] is never simulated
    return delta, delta.abs().sum(1) > 0


def read_curriculum(path, n_train: int) -> tuple[torch.Tensor, list[int]]:
    """Read a curriculum file: batches LongTensor [T, M] (-1 padded) and its steps [T].

    Accepted: a JSON list of {"step": s, "samples_id": [ids]} or of id lists (steps 1..T), or JSON lines
    {"step": s, "samples_id": [...]} (a processed run's train_samples_id.json). Steps must increase; a
    batch may be empty; ids must lie in 0..n_train-1. As in a run dir, the initial value is the value
    after the first listed step (list {"step": 0, "samples_id": []} first to start before step 1).
    Raises DataError naming the file, the entry / step and the id.
    """
    from pathlib import Path

    from .io import read_json, read_jsonl
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: curriculum file not found (expected a JSON list of "
                        "{\"step\": s, \"samples_id\": [...]} or of id lists)")
    with open(path, "r", encoding="utf-8") as f:
        head = f.read(64).lstrip()
    entries = read_json(path) if head.startswith("[") else read_jsonl(path)
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a non-empty JSON list of batches")
    steps, rows = [], []
    for k, e in enumerate(entries):
        step, ids = _curriculum_entry(path, k, e)
        if steps and step <= steps[-1]:
            raise DataError(f"{path}: entry {k}: step {step} comes after step {steps[-1]} "
                            "(steps must be strictly increasing)")
        for i in ids:
            if not 0 <= i < n_train:
                raise DataError(f"{path}: step {step}: training id {i} is outside the pool "
                                f"(expected ids 0..{n_train - 1})")
        steps.append(step)
        rows.append(ids)
    width = max(1, max(len(r) for r in rows))
    batches = torch.full((len(rows), width), -1, dtype=torch.long)
    for t, r in enumerate(rows):
        batches[t, :len(r)] = torch.tensor(r, dtype=torch.long)
    return batches, steps


def _curriculum_entry(path, k: int, e) -> tuple[int, list[int]]:
    """(step, ids) of entry k: {"step", "samples_id"} or a bare id list (step k + 1)."""
    if isinstance(e, dict):
        step, ids = e.get("step"), e.get("samples_id")
        if not isinstance(step, int) or isinstance(step, bool):
            raise DataError(f"{path}: entry {k}: expected an integer 'step', got {step!r}")
    else:
        step, ids = k + 1, e
    if not isinstance(ids, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in ids):
        raise DataError(f"{path}: entry {k} (step {step}): expected a list of integer training ids, got {ids!r}")
    return step, ids


def batch_sizes(batches: torch.Tensor) -> torch.Tensor:
    """Number of real ids (not -1) of each step: [R, T, M] -> float64 [R, T]."""
    return (batches >= 0).sum(-1).double()


def edit_curriculum(batches: torch.Tensor, i: int, mode: str = "remove", insert_steps=None) -> torch.Tensor:
    """The curriculum [R, T, M'] with example i removed from every batch (-1 in its place), duplicated in
    every batch it is in (mode "add"), or inserted once into the step slots insert_steps (mode "add")."""
    check_mode(mode)
    batches = as_runs(batches)
    if mode == "remove":
        return torch.where(batches == i, torch.full_like(batches, -1), batches)
    if insert_steps is not None:
        extra = torch.full(batches.shape[:2] + (1,), -1, dtype=batches.dtype)
        extra[:, torch.as_tensor(insert_steps, dtype=torch.long)] = i
    else:
        extra = torch.where(batches == i, batches, torch.full_like(batches, -1))
    return torch.cat([batches, extra], -1)
