"""Reading the gradient-feature files the run maker writes (make_runs.py --grad_features):

    <raw run dir>/grads/grads_step-<t>.pt   features at theta_{t-1} + "learning_rate" lr_t of step t's update
    <raw run dir>/grads/grads_final.pt      features at the final parameters

and the learning rates of a run's optimizer steps (its raw log.out)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from ..formats import read_log
from ..io import DataError, read_json

log = logging.getLogger(__name__)

GRADS_DIR = "grads"

FINAL_FILE = "grads_final.pt"

_STEP_FILE = re.compile(r"^grads_step-(\d+)\.pt$")

_MARKER = ".complete"  # gptfluence.preprocess.MARKER (its "source" names the raw run dir)

REMAKE_HINT = ("re-make the runs with `utils/make_runs.py --grad_features` (add `--grad_steps all` for "
               "TracIn-CP(all))")

class StepGrads(NamedTuple):
    """Features at one set of parameters. Rows are indexed BY ID: train[i] is training id i's
    feature (zeros for ids absent from the file), test[j] test id j's. Float32."""
    lr: float               # learning rate of the update computed from these parameters (0 for final)
    train: torch.Tensor     # [max train id + 1, D]
    test: torch.Tensor      # [max test id + 1, D]

@dataclass
class GradFeatures:
    """The gradient features of one run.

    steps: optimizer step t -> StepGrads at theta_{t-1} (only the steps loaded); final: at the final
    parameters (None if not loaded); train_ids / test_ids: LongTensor of the ids the files hold;
    available: every step with a grads_step file; grads_dir: where they were found.
    """
    grads_dir: Path
    steps: dict = field(default_factory=dict)
    final: StepGrads | None = None
    train_ids: torch.Tensor | None = None
    test_ids: torch.Tensor | None = None
    available: list = field(default_factory=list)

    @property
    def dim(self) -> int:
        any_g = self.final if self.final is not None else next(iter(self.steps.values()), None)
        return 0 if any_g is None else int(any_g.train.shape[1])

def _raw_dir_candidates(run_dir: Path, raw_root) -> list[Path]:
    """Folders that may hold the raw files of a (processed or raw) run dir, in search order:
    the dir itself, <raw_root>/<basename>, the raw dir named in the processed dir's .complete marker."""
    out = [run_dir]
    if raw_root is not None:
        out.append(Path(raw_root) / run_dir.name)
    marker = run_dir / _MARKER
    if marker.is_file():
        try:
            src = read_json(marker).get("source")
        except (DataError, AttributeError):
            src = None
        if src:
            out.append(Path(src))
    seen, uniq = set(), []
    for p in out:
        if str(p) not in seen:
            seen.add(str(p))
            uniq.append(p)
    return uniq

def find_grads_dir(run_dir: str | os.PathLike, raw_root: str | os.PathLike | None = None) -> Path:
    """The grads/ folder of a run: <run_dir>/grads (a processed dir may hold a copy), else
    <raw_root>/<basename(run_dir)>/grads, else <raw dir named in run_dir/.complete>/grads.

    Raises DataError naming every path searched and how to make the features.
    """
    run_dir = Path(run_dir)
    searched = []
    for cand in _raw_dir_candidates(run_dir, raw_root):
        g = cand / GRADS_DIR
        searched.append(str(g))
        if g.is_dir() and (any(_STEP_FILE.match(p.name) for p in g.iterdir()) or (g / FINAL_FILE).is_file()):
            return g
    hint = "" if raw_root is not None else " (pass --raw_root if the raw run dirs live elsewhere)"
    raise DataError(f"{run_dir}: no gradient features found (searched {', '.join(searched)}){hint}; "
                    f"TracIn-CP / Grad-Dot need them: {REMAKE_HINT}")

def list_grad_steps(grads_dir: str | os.PathLike) -> list[int]:
    """Sorted optimizer steps t with a grads_step-<t>.pt file."""
    return sorted(int(m.group(1)) for p in Path(grads_dir).iterdir() if (m := _STEP_FILE.match(p.name)))

def _by_id(feats: torch.Tensor, ids: torch.Tensor, path: Path, what: str) -> torch.Tensor:
    """Scatter rows [n, D] to rows indexed by id: [max id + 1, D] float32."""
    if ids.dim() != 1 or len(ids) != feats.shape[0]:
        raise DataError(f"{path}: '{what}' has {feats.shape[0]} rows but '{what}_ids' has {len(ids)} ids "
                        "(expected one id per row)")
    if len(ids) and int(ids.min()) < 0:
        raise DataError(f"{path}: negative id {int(ids.min())} in '{what}_ids'")
    if len(torch.unique(ids)) != len(ids):
        raise DataError(f"{path}: repeated ids in '{what}_ids'")
    out = torch.zeros(int(ids.max()) + 1 if len(ids) else 0, feats.shape[1], dtype=torch.float32)
    out[ids] = feats.float()
    return out

def read_grads_file(path: str | os.PathLike) -> tuple[StepGrads, torch.Tensor, torch.Tensor]:
    """One grads_*.pt file -> (StepGrads, train_ids [n_pool], test_ids [n_test]).

    Raises DataError naming the file if it is unreadable or lacks / misshapes a field.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataError(f"{path}: unreadable gradient feature file ({type(e).__name__}: {e}); {REMAKE_HINT}") from None
    need = ("learning_rate", "train", "test", "train_ids", "test_ids")
    if not isinstance(obj, dict) or any(k not in obj for k in need):
        have = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise DataError(f"{path}: expected a dict with {', '.join(need)} (found {have})")
    tr, te = obj["train"], obj["test"]
    if not (torch.is_tensor(tr) and torch.is_tensor(te) and tr.dim() == 2 and te.dim() == 2
            and tr.shape[1] == te.shape[1]):
        raise DataError(f"{path}: 'train' and 'test' must be 2-d tensors [n, D] with the same D "
                        f"(found {getattr(tr, 'shape', None)} and {getattr(te, 'shape', None)})")
    train_ids = torch.as_tensor(obj["train_ids"], dtype=torch.long)
    test_ids = torch.as_tensor(obj["test_ids"], dtype=torch.long)
    g = StepGrads(float(obj["learning_rate"]), _by_id(tr, train_ids, path, "train"),
                  _by_id(te, test_ids, path, "test"))
    return g, train_ids, test_ids

def read_grads_lr(path: str | os.PathLike) -> float:
    """The "learning_rate" of one grads file, read lazily (memory-mapped: the tensors stay on disk)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return float(obj["learning_rate"])
    except Exception as e:
        raise DataError(f"{path}: cannot read 'learning_rate' ({type(e).__name__}: {e}); {REMAKE_HINT}") from None

def load_grad_features(run_dir: str | os.PathLike, raw_root: str | os.PathLike | None = None,
                       steps: Sequence[int] | None = None, final: bool = True) -> GradFeatures:
    """Load a run's gradient features (see find_grads_dir for where they are looked for).

    steps: the optimizer steps to load (None: every grads_step file); final: also load grads_final.pt.
    Every file must hold the same train / test ids and feature size D. Raises DataError (with the
    make_runs hint) when the features, a requested step or the final file are missing.
    """
    gdir = find_grads_dir(run_dir, raw_root)
    out = GradFeatures(grads_dir=gdir, available=list_grad_steps(gdir))
    want = out.available if steps is None else sorted(set(int(s) for s in steps))
    missing = sorted(set(want) - set(out.available))
    if missing:
        raise DataError(f"{gdir}: no gradient features for steps {missing[:10]}{' ...' if len(missing) > 10 else ''}"
                        f" (found {len(out.available)} grads_step files); {REMAKE_HINT}")
    paths = [(s, gdir / f"grads_step-{s}.pt") for s in want]
    if final:
        if not (gdir / FINAL_FILE).is_file():
            raise DataError(f"{gdir / FINAL_FILE}: file not found (Grad-Dot needs the final-model features); "
                            f"{REMAKE_HINT}")
        paths.append((None, gdir / FINAL_FILE))
    for s, p in paths:
        g, tr_ids, te_ids = read_grads_file(p)
        if out.train_ids is None:
            out.train_ids, out.test_ids, first = tr_ids, te_ids, p
        elif not (torch.equal(tr_ids, out.train_ids) and torch.equal(te_ids, out.test_ids)):
            raise DataError(f"{p}: train / test ids differ from those of {first} (expected one set of ids per run)")
        elif g.train.shape[1] != out.dim:
            raise DataError(f"{p}: feature size {g.train.shape[1]} differs from {out.dim} in {first}")
        if s is None:
            out.final = g
        else:
            out.steps[s] = g
    return out

def read_log_learning_rates(run_dir: str | os.PathLike, raw_root: str | os.PathLike | None = None
                            ) -> dict[int, float]:
    """step -> 'learning_rate' of the run's raw log.out (searched as for find_grads_dir); {} when no
    log.out is found or it records no learning rates. The last record of a repeated step wins."""
    for cand in _raw_dir_candidates(Path(run_dir), raw_root):
        if (cand / "log.out").is_file():
            return read_log(cand / "log.out").learning_rates
    return {}
