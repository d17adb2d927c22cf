"""Checkpoints: one dict that carries the simulator's weights, its config and the spec it was trained from.

    {"format", "sim_name", "sim_config", "state_dict", "spec", "encoder", "n_train", "n_test", "data",
     "epoch", "best_val", "train_state", "finished" [, "optimizer", "scheduler"]}

This module is the one place that builds, writes, reads and checks them (train, test and influence all
come here). The rules:
- a checkpoint used with another simulator, encoder or example count is refused, naming the setting;
- the checkpoint of a training that did not finish is refused unless the caller allows it (the message
  says how to resume);
- sample files that differ from the training ones: a feature simulator embeds the new texts (examples it
  never saw), a free-parameter simulator (Simfluence) is refused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import torch

from .io import DataError, atomic_open, file_fingerprint, load_samples
from .simulators import Simulator, simulator_class

log = logging.getLogger(__name__)

FORMAT = "gptfluence-checkpoint/2"
BEST, LAST = "best-checkpoint.pt", "last-checkpoint.pt"


# ----------------------------------------------------------------------------------------------
# Build, write, read
# ----------------------------------------------------------------------------------------------

def data_record(train_file: str, eval_file: str, train_runs: list[str], valid_runs: list[str],
                seen_test_ids: list[int], seen_train_ids: list[int]) -> dict:
    """What a checkpoint remembers about its data: the sample files (with fingerprints), the runs and the
    ids the simulator saw (a free-parameter simulator can say nothing about other ids)."""
    return {"train_file": str(train_file), "train_file_fingerprint": file_fingerprint(train_file),
            "eval_file": str(eval_file), "eval_file_fingerprint": file_fingerprint(eval_file),
            "train_runs": [str(r) for r in train_runs], "valid_runs": [str(r) for r in valid_runs],
            "seen_test_ids": list(seen_test_ids), "seen_train_ids": list(seen_train_ids)}


def build_payload(sim: Simulator, spec: dict, data: dict, encoder: dict | None) -> dict:
    """The parts of a checkpoint that do not change during training (weights are added at save time)."""
    return {"sim_name": sim.name, "sim_config": sim.config(), "spec": dict(spec), "encoder": encoder,
            "n_train": sim.n_train, "n_test": sim.n_test, "data": data}


#: a 2-D weight or buffer with at most this share of non-zeros is written in compressed sparse row form (the hashed
#: bags of words of anchor_lex_sim are ~95% zeros: default webnlg's checkpoint 8.0 -> 2.6 MB); read back, it is
#: the same dense tensor
SPARSE_DENSITY = 0.2
SPARSE_MIN_NUMEL = 1 << 16


def _pack(state: dict) -> dict:
    out = {}
    for k, t in state.items():
        if (isinstance(t, torch.Tensor) and t.layout == torch.strided and t.dim() == 2
                and t.numel() >= SPARSE_MIN_NUMEL and t.is_floating_point()
                and int(torch.count_nonzero(t)) <= SPARSE_DENSITY * t.numel()):
            with _sparse_quiet():
                t = t.to_sparse_csr()
        out[k] = t
    return out


@contextlib.contextmanager
def _sparse_quiet():
    """torch warns that sparse CSR support is in beta whenever such a tensor is made (also when torch.load reads
    one back): only its storage is used here, so that one warning is silenced and no other."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        yield


def _unpack(state: dict) -> dict:
    with _sparse_quiet():
        return {k: t.to_dense() if isinstance(t, torch.Tensor) and t.layout != torch.strided else t
                for k, t in state.items()}


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write a checkpoint dict atomically (mostly-zero 2-D tensors of the state dict in sparse form)."""
    if isinstance(payload.get("state_dict"), dict):
        payload = {**payload, "state_dict": _pack(payload["state_dict"])}
    with atomic_open(path, "wb") as f:
        torch.save({"format": FORMAT, **payload}, f)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a folder holding best-checkpoint.pt."""
    p = Path(path)
    if p.is_dir():
        p = p / BEST
    if not p.is_file():
        raise DataError(f"{p}: checkpoint not found (expected a .pt file or a folder with {BEST}; "
                        "train.py writes them)")
    return p


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint (file or run folder). Raises DataError for a missing, truncated or foreign file."""
    p = resolve_checkpoint(path)
    try:
        with _sparse_quiet():  # a checkpoint with sparse parts warns on reading them back
            ckpt = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise DataError(f"{p}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt != FORMAT:
        raise DataError(f"{p}: not a {FORMAT} checkpoint (format {fmt!r}); re-train it with this version "
                        "of train.py")
    if isinstance(ckpt.get("state_dict"), dict):
        ckpt["state_dict"] = _unpack(ckpt["state_dict"])
    ckpt["path"] = str(p)
    return ckpt


def mark_finished(folder: str | os.PathLike) -> None:
    """Flag the best and last checkpoints of a finished training (test.py and influence.py check it)."""
    for name in (BEST, LAST):
        p = Path(folder) / name
        if p.is_file():
            ckpt = torch.load(p, map_location="cpu", weights_only=False)
            ckpt.pop("path", None)
            ckpt["finished"] = True
            save_checkpoint(p, {k: v for k, v in ckpt.items() if k != "format"})


def simulator_from_checkpoint(ckpt: dict, device="cpu") -> Simulator:
    """Rebuild the simulator stored in a checkpoint dict, with its weights (and embeddings)."""
    sim = simulator_class(ckpt["sim_name"]).from_config(ckpt["sim_config"], ckpt["state_dict"])
    sim.load_state_dict(ckpt["state_dict"])
    return sim.to(device)


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------

def check_compatible(ckpt: dict, **expected) -> None:
    """Refuse a checkpoint whose settings differ from `expected` (None values are not checked).

    Keys are looked up in ckpt["spec"] first, then at the top level of the checkpoint.
    Raises DataError naming every differing setting with both values.
    """
    spec = ckpt.get("spec", {})
    diffs = []
    for key, want in expected.items():
        if want is None:
            continue
        have = spec.get(key, ckpt.get(key))
        if have != want:
            diffs.append(f"{key}: checkpoint has {have!r}, asked for {want!r}")
    if diffs:
        raise DataError(f"{ckpt.get('path', 'checkpoint')}: made with other settings; " + "; ".join(diffs))


def check_finished(ckpt: dict, allow_unfinished: bool = False) -> None:
    """Refuse the checkpoint of a training that did not finish (interrupted or still running)."""
    if ckpt.get("finished"):
        return
    folder = Path(ckpt.get("path", ".")).parent
    msg = (f"{ckpt.get('path', 'checkpoint')}: its training did not finish (epoch {ckpt.get('epoch')}); resume it "
           f"with the same train.py command plus --resume (folder {folder}), or pass --allow_unfinished to use it "
           "as it is")
    if not allow_unfinished:
        raise DataError(msg)
    log.warning("%s", msg.split("; resume")[0] + ": used as it is (--allow_unfinished)")


def refuse_unseen_ids(ckpt: dict, test_ids, train_ids) -> None:
    """A simulator with free factors per example id (Simfluence) cannot simulate ids it never trained on."""
    if simulator_class(ckpt["sim_name"]).handles_unseen_ids:
        return
    data = ckpt["data"]
    for what, ids, seen in (("test", test_ids, data.get("seen_test_ids")),
                            ("training", train_ids, data.get("seen_train_ids"))):
        if seen is None:
            continue
        unseen = sorted(set(int(i) for i in ids) - set(seen))
        if unseen:
            raise DataError(f"{ckpt['path']}: {ckpt['sim_name']} has free factors per example id and never saw "
                            f"{len(unseen)} of these {what} ids ({unseen[:8]}{' ...' if len(unseen) > 8 else ''}): "
                            "it cannot simulate them (a feature-based simulator such as enc_sim can)")


def simulator_for_files(ckpt: dict, train_file: str, eval_file: str, cache_dir: str | None, device,
                        progress: bool = True) -> Simulator:
    """The checkpoint's simulator for these sample files. The same files as in training: as saved.
    Other files: a feature simulator embeds their texts with the checkpoint's encoder (examples it never
    saw); a simulator with free factors per id is refused, naming the files."""
    sim = simulator_from_checkpoint(ckpt, device)
    data = ckpt["data"]
    same = {"train": file_fingerprint(train_file) == data["train_file_fingerprint"],
            "eval": file_fingerprint(eval_file) == data["eval_file_fingerprint"]}
    if all(same.values()):
        return sim
    changed = [k for k, v in same.items() if not v]
    if not sim.uses_features and sim.handles_unseen_ids:  # a baseline: every test example counts as unseen
        if not same["eval"]:
            sim.forget_test_examples(len(load_samples(eval_file)))
        return sim
    if not sim.uses_features:
        raise DataError(f"{ckpt['path']}: {sim.name} has free factors per example id and cannot simulate examples "
                        f"it never saw; the {' and '.join(changed)} sample file(s) differ from those it was trained "
                        f"on ({data['train_file']}, {data['eval_file']})")
    from .encoders import embed_samples
    log.info("%s sample file(s) differ from training: embedding their texts with %s", "/".join(changed),
             ckpt["encoder"]["encoder"])
    new = {key: embed_samples(load_samples(path), ckpt["encoder"], cache_dir, device, progress)
           for key, path in (("train", train_file), ("eval", eval_file)) if not same[key]}
    sim.set_examples(train_emb=new.get("train"), test_emb=new.get("eval"))
    return sim
