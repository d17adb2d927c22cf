"""How chaotic is fine-tuning? Re-make runs with two batches swapped and measure how far they drift.

A simulator predicts a run from its curriculum. If the same examples, seen as often, in a slightly different order
lead to a run as far from the original as an unrelated curriculum does, the run-to-run differences are chaos
(sensitive dependence on the order), and no simulator whose factors depend on which examples are in which batch
can predict them; the mean trajectory is then the best a simulator can do. This measures that share:

  1. the runs of a reproduce.py preset (the same work folder: they are reused), for each task;
  2. n_runs of its runs (the held-out ones first) re-made with the batches of steps a and b traded
     (make_runs --swap_steps a,b; default 1,2), test loss only (no BLEU / ROUGE decoding, no gradient features);
     and one identical re-make of the first of them (nothing swapped) as the control: it must reproduce the
     original;
  3. per task, over the test examples z and recorded steps t >= 2:
       V = the between-run variance of the loss, mean over (z, t) of the variance over the preset's runs
           (ddof 1): the expected (v_a - v_b)^2 / 2 of two runs with unrelated curricula;
       D = mean over the re-made runs of (v'_zt - v_zt)^2 / 2, v' the swapped run, v its original;
       chaos share = D / V: 0 when the swap changes nothing later, about 1 when the swapped run ends as far from its
       original as from any other run. Also at the last step alone.

If a run's deviation from the mean trajectory is a part set by its curriculum's content plus a chaotic part that two
nearly equal curricula do not share, D / V estimates the chaotic part's share of the variance, and 1 - D / V bounds
the share any order-insensitive simulator could explain (anchor_sim, Simfluence's and GPTfluence's sums over a
batch all predict (almost) no change from a swap).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import replace
from pathlib import Path

import torch

from ..io import DataError, read_json, read_jsonl

log = logging.getLogger("gptfluence.experiments")


def raw_losses(run_dir: Path, task: str, ids: list[int]) -> torch.Tensor:
    """[T, N] float64 test losses of a finished raw run, steps 1..T, test examples in `ids` order."""
    from ..formats import checkpoint_path
    steps = int(read_json(Path(run_dir) / "run_done.json")["steps"])
    out = torch.full((steps, len(ids)), math.nan, dtype=torch.float64)
    col = {i: k for k, i in enumerate(ids)}
    for t in range(1, steps + 1):
        path = checkpoint_path(run_dir, task, t)
        if not path.is_file():
            raise DataError(f"{path}: missing (sensitivity needs every step recorded)")
        for row in read_jsonl(path):
            if int(row["id"]) in col:
                out[t - 1, col[int(row["id"])]] = float(row["loss"])
    return out


def raw_runs_by_seed(raw_root: Path) -> dict[int, Path]:
    """{seed: run folder} of the finished raw runs under raw_root."""
    out = {}
    for args_file in sorted(Path(raw_root).glob("*/run_args.json")):
        if (args_file.parent / "run_done.json").is_file():
            out[int(read_json(args_file)["seed"])] = args_file.parent
    return out


def chaos_share(all_runs: torch.Tensor, originals: torch.Tensor, remade: torch.Tensor) -> dict:
    """all_runs [R, T, N] (R >= 2), originals / remade [S, T, N] (remade[s] = originals[s] re-made with a swap).
    Steps 2..T (the first step is where the swap starts at the earliest). Returns V, D and D / V over all those
    steps (also per re-made run: its spread says how far to trust a share from a few runs), at the last step and
    at every step (per_step_share, steps 1..T), and the swap's largest absolute change."""
    if all_runs.shape[0] < 2:
        raise DataError("the between-run variance needs >= 2 runs")
    var = all_runs.var(dim=0, unbiased=True)  # [T, N]
    half_sq = 0.5 * (remade - originals) ** 2  # [S, T, N]
    v_all, d_all = var[1:].mean().item(), half_sq[:, 1:].mean().item()
    v_last, d_last = var[-1].mean().item(), half_sq[:, -1].mean().item()
    return {"between_run_variance": v_all, "swap_half_sq_change": d_all,
            "chaos_share": d_all / v_all if v_all > 0 else math.nan,
            "between_run_variance_last": v_last, "swap_half_sq_change_last": d_last,
            "chaos_share_last": d_last / v_last if v_last > 0 else math.nan,
            "per_step_share": (half_sq.mean(dim=(0, 2)) / var.mean(dim=1)).tolist(),
            "chaos_share_per_run": [(half_sq[r, 1:].mean() / v_all).item() if v_all > 0 else math.nan
                                    for r in range(half_sq.shape[0])],
            "max_abs_change": (remade - originals).abs().max().item()}


def parse_swap(text: str) -> list[int]:
    m = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) == int(m.group(2)) or min(int(m.group(1)), int(m.group(2))) < 1:
        raise ValueError(f"--swap_steps {text!r}: expected two different steps A,B (1-based), e.g. 1,2")
    return [int(m.group(1)), int(m.group(2))]


def remake(ws, spec, seed: int, out: Path, swap: list[int] | None) -> Path:
    """Re-make run `seed` of `spec` into `out` (test loss only; kept when made before); the raw run folder."""
    from ..pipeline import make_runs
    s = replace(spec, seeds=[seed], output_dir=str(out), swap_steps=swap, grad_features=False, metrics=False,
                device=ws.device, threads=ws.threads, workers=1, progress=False, summary=False,
                model_cache=ws.model_cache)
    (run_dir,) = make_runs(s)
    return Path(run_dir)


def task_sensitivity(ws, args, task: str, swap: list[int]) -> dict:
    from ..io import load_samples
    from .reproduce import preset_run_spec, task_runs
    _, test_dirs, files, key = task_runs(ws, args, task)
    spec = preset_run_spec(ws, args, task)[0]
    raw = raw_runs_by_seed(ws.root / "raw" / key)
    ids = [int(s["id"]) for s in load_samples(files[1])]
    first = sorted(int(Path(d).name.rsplit("_seed-", 1)[1]) for d in test_dirs)
    held = (first + [s for s in sorted(raw) if s not in first])[: args.n_runs]
    every = torch.stack([raw_losses(raw[s], task, ids) for s in sorted(raw)])
    if max(swap) > every.shape[1]:
        raise DataError(f"--swap_steps {swap}: the {task} runs have {every.shape[1]} steps")
    orig = torch.stack([raw_losses(raw[s], task, ids) for s in held])
    base = ws.root / "sensitivity" / key
    tag = f"swap-{swap[0]}-{swap[1]}"
    swapped = torch.stack([raw_losses(remake(ws, spec, s, base / tag, swap), task, ids) for s in held])
    control = raw_losses(remake(ws, spec, held[0], base / "identical", None), task, ids)
    res = chaos_share(every, orig, swapped)
    res.update(task=task, runs=every.shape[0], steps=every.shape[1], lr=spec.lr, test_examples=len(ids),
               swapped_seeds=held, swap_steps=swap, control_max_abs_diff=(control - orig[0]).abs().max().item())
    log.info("%s: between-run variance %.3g, swap %.3g: chaos share %.2f (last step %.2f); identical re-make "
             "differs by %.1e", task, res["between_run_variance"], res["swap_half_sq_change"], res["chaos_share"],
             res["chaos_share_last"], res["control_max_abs_diff"])
    return res


def write_table(results: list[dict], args) -> str:
    head = (f"#### How chaotic are the runs? ({args.preset} preset; {args.n_runs} runs re-made "
            f"with the batches of steps {args.swap_steps} swapped)\n\n"
            "Between-run variance V: of the test loss over the preset's runs; swap change D: (swapped - original)^2 "
            "/ 2; chaos share D / V: 0 = the swap changes nothing, 1 = the swapped run is as far from its original "
            "as an unrelated run. Steps 2..T and the last step.\n\n"
            "| task | runs x steps, lr | V | D | chaos share (per re-made run) | V (last step) | D (last step) "
            "| chaos share (last step) | identical re-make: max difference |\n|---|---|---|---|---|---|---|---|---|\n")
    rows = [f"| {r['task']} | {r['runs']} x {r['steps']}, {r['lr']:g} | {r['between_run_variance']:.3g} | "
            f"{r['swap_half_sq_change']:.3g} | {r['chaos_share']:.2f} ({_span(r['chaos_share_per_run'])}) | "
            f"{r['between_run_variance_last']:.3g} | "
            f"{r['swap_half_sq_change_last']:.3g} | {r['chaos_share_last']:.2f} | {r['control_max_abs_diff']:.1e} |"
            for r in results]
    return head + "\n".join(rows) + "\n"


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else "one run"


def run(ws, args, out: Path) -> tuple[str, dict]:
    swap = parse_swap(args.swap_steps)
    results = [task_sensitivity(ws, args, t.strip(), swap) for t in args.tasks.split(",") if t.strip()]
    return write_table(results, args), {"tasks": results}
