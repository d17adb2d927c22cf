"""Checkpoints: one dict that carries the simulator's weights, its config and the run arguments.

    {"format", "sim_name", "sim_config", "state_dict", "args", "encoder", "data",
     "epoch", "best_val", "train_state" [, "optimizer", "scheduler"]}

A checkpoint is refused, naming the setting, when it is used with another simulator,
encoder, or example count than the one it was made with.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .io import DataError, atomic_open
from .simulators import FeatureSimulator, Simulator, simulator_class

FORMAT = "gptfluence-checkpoint/1"
BEST, LAST = "best-checkpoint.pt", "last-checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write a checkpoint dict atomically."""
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, **payload}, f)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a folder holding best-checkpoint.pt."""
    p = Path(path)
    if p.is_dir():
        p = p / BEST
    if not p.is_file():
        raise DataError(f"{p}: checkpoint not found (expected a .pt file or a folder with {BEST})")
    return p


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    p = resolve_checkpoint(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise DataError(f"{p}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DataError(f"{p}: not a gptfluence checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else '?'})")
    ckpt["path"] = str(p)
    return ckpt


def build_simulator(sim_name: str, sim_config: dict, train_emb: torch.Tensor | None = None,
                    test_emb: torch.Tensor | None = None) -> Simulator:
    """Construct a simulator from its registry name and config (embeddings for feature simulators)."""
    cls = simulator_class(sim_name)
    cfg = dict(sim_config)
    if issubclass(cls, FeatureSimulator):
        if train_emb is None or test_emb is None:
            # placeholders of the right shape; load_state_dict fills the real buffers
            n_tr, n_te, d = cfg.pop("n_train"), cfg.pop("n_test"), cfg.pop("dim")
            train_emb, test_emb = torch.zeros(n_tr, d), torch.zeros(n_te, d)
        else:
            for k in ("n_train", "n_test", "dim"):
                cfg.pop(k, None)
        return cls(train_emb, test_emb, **cfg)
    return cls(**cfg)


def simulator_from_checkpoint(ckpt: dict, device="cpu") -> Simulator:
    """Rebuild the simulator stored in a checkpoint dict, with its weights (and embeddings)."""
    cfg = dict(ckpt["sim_config"])
    if issubclass(simulator_class(ckpt["sim_name"]), FeatureSimulator):
        sd = ckpt["state_dict"]
        cfg.update(n_train=sd["train_emb"].shape[0], n_test=sd["test_emb"].shape[0], dim=sd["train_emb"].shape[1])
    sim = build_simulator(ckpt["sim_name"], cfg)
    sim.load_state_dict(ckpt["state_dict"])
    return sim.to(device)


def check_compatible(ckpt: dict, **expected) -> None:
    """Refuse a checkpoint whose settings differ from `expected` (None values are not checked).

    Keys are looked up in ckpt["args"] first, then at the top level of the checkpoint.
    Raises DataError naming every differing setting with both values.
    """
    args = ckpt.get("args", {})
    diffs = []
    for key, want in expected.items():
        if want is None:
            continue
        have = args.get(key, ckpt.get(key))
        if have != want:
            diffs.append(f"{key}: checkpoint has {have!r}, asked for {want!r}")
    if diffs:
        raise DataError(f"{ckpt.get('path', 'checkpoint')}: made with other settings; " + "; ".join(diffs))
