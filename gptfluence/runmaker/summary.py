"""Evidence that recorded runs are real training dynamics (printed by make_runs.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from ..formats import list_checkpoints, read_log
from ..io import DataError, iter_jsonl, sample_target


def read_raw_run(run_dir: str | os.PathLike, task: str) -> dict:
    """A raw run folder as dicts: {"batches": {step: [ids]}, "lr": {step: lr},
    "values": {metric: {step: {test_id: value}}}}. Unparseable log lines are skipped."""
    run_dir = Path(run_dir)
    logged = read_log(run_dir / "log.out", strict=False)
    values: dict[str, dict[int, dict[int, float]]] = {}
    for kind in ("loss", "metric"):
        for step, path in list_checkpoints(run_dir, task, kind).items():
            for _, row in iter_jsonl(path):
                for m, v in row.items():
                    if m != "id" and (m == "loss") == (kind == "loss"):  # loss from loss_ files only
                        values.setdefault(m, {}).setdefault(step, {})[int(row["id"])] = float(v)
    return {"batches": logged.samples_id, "lr": logged.learning_rates, "values": values}


def _labels(samples: Sequence[dict] | None) -> dict[int, str] | None:
    """Target text per id when the task looks like classification (few distinct targets)."""
    if not samples:
        return None
    labels = {int(s["id"]): sample_target(s).strip() for s in samples}
    distinct = set(labels.values())
    return labels if len(distinct) <= 10 and len(distinct) * 4 <= len(labels) else None

def summarize_runs(run_dirs: Sequence[str | os.PathLike], task: str, train_samples: Sequence[dict] | None = None,
                   test_samples: Sequence[dict] | None = None) -> dict:
    """Evidence that the recorded dynamics are real, from raw run folders.

    Returns a dict with
      n_runs, steps (first, last, mid = common step used for the spread)
      loss_first_mean, loss_last_mean: mean test loss (nats) at the first / last recorded step
      frac_test_loss_fell: fraction of (run, test example) whose loss is lower at the last step
      n_distinct_curricula, mean_sample_overlap (Jaccard of the sampled id sets, over run pairs)
      spread_change_std: mean over test examples of the std over runs of (loss at mid - loss at first)
      spread_change_abs_mean: mean |loss at mid - loss at first| (scale of the change)
      for classification-like tasks (train_samples and test_samples given, <= 10 labels):
        match_delta_mean / other_delta_mean: mean one-step change of test loss for test examples whose
        label equals the batch's majority label / the others (match should be lower), n_match, n_other
      for metric runs: bleu_first_mean, bleu_last_mean, rougeL_first_mean, rougeL_last_mean
    """
    runs = [read_raw_run(d, task) for d in run_dirs]
    if not runs or not runs[0]["values"].get("loss"):
        raise DataError(f"no loss checkpoints for task {task!r} in {list(map(str, run_dirs))[:3]}")
    steps = sorted(set.intersection(*(set(r["values"]["loss"]) for r in runs)))
    ids = sorted(runs[0]["values"]["loss"][steps[0]])
    s0, s1, sm = steps[0], steps[-1], steps[len(steps) // 2]

    def mat(r, metric, step):
        return torch.tensor([r["values"][metric][step][i] for i in ids])

    L0 = torch.stack([mat(r, "loss", s0) for r in runs])  # [R, N]
    L1 = torch.stack([mat(r, "loss", s1) for r in runs])
    Lm = torch.stack([mat(r, "loss", sm) for r in runs])
    out = {"n_runs": len(runs), "n_test": len(ids), "steps": {"first": s0, "last": s1, "mid": sm},
           "loss_first_mean": float(L0.mean()), "loss_last_mean": float(L1.mean()),
           "frac_test_loss_fell": float((L1 < L0).float().mean())}
    curricula = [tuple(tuple(r["batches"][k]) for k in sorted(r["batches"])) for r in runs]
    sets = [set(i for b in c for i in b) for c in curricula]
    pairs = [(a, b) for a in range(len(sets)) for b in range(a + 1, len(sets))]
    out["n_distinct_curricula"] = len(set(curricula))
    out["mean_sample_overlap"] = (sum(len(sets[a] & sets[b]) / len(sets[a] | sets[b]) for a, b in pairs) / len(pairs)
                                  if pairs else 1.0)
    change = Lm - L0
    out["spread_change_std"] = float(change.std(dim=0, unbiased=False).mean()) if len(runs) > 1 else 0.0
    out["spread_change_abs_mean"] = float(change.abs().mean())
    train_lab, test_lab = _labels(train_samples), _labels(test_samples)
    if train_lab and test_lab:
        out.update(_batch_label_effect(runs, steps, ids, train_lab, test_lab))
    for m in ("bleu", "rougeL"):
        if all(m in r["values"] and s0 in r["values"][m] and s1 in r["values"][m] for r in runs):
            out[f"{m}_first_mean"] = float(torch.stack([mat(r, m, s0) for r in runs]).mean())
            out[f"{m}_last_mean"] = float(torch.stack([mat(r, m, s1) for r in runs]).mean())
    return out

def _batch_label_effect(runs, steps, ids, train_lab, test_lab) -> dict:
    """Mean one-step test-loss change for label-matching vs other test examples."""
    match, other = [], []
    test_labels = [test_lab.get(i) for i in ids]
    for r in runs:
        for prev, cur in zip(steps[:-1], steps[1:]):
            batch = [i for k in range(prev + 1, cur + 1) for i in r["batches"].get(k, [])]
            counts: dict[str, int] = {}
            for i in batch:
                counts[train_lab[i]] = counts.get(train_lab[i], 0) + 1
            if not counts:
                continue
            top = sorted(counts.values())[-2:]
            if len(top) == 2 and top[0] == top[1]:
                continue  # no majority label
            major = max(counts, key=counts.get)
            for i, lab in zip(ids, test_labels):
                d = r["values"]["loss"][cur][i] - r["values"]["loss"][prev][i]
                (match if lab == major else other).append(d)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {"match_delta_mean": mean(match), "other_delta_mean": mean(other), "n_match": len(match),
            "n_other": len(other)}

def format_summary(summary: dict) -> str:
    """Human-readable lines of summarize_runs' figures."""
    s = summary
    lines = [
        f"runs {s['n_runs']}, test examples {s['n_test']}, recorded steps {s['steps']['first']}..{s['steps']['last']}",
        f"mean test loss: step {s['steps']['first']} {s['loss_first_mean']:.4f} -> step {s['steps']['last']} "
        f"{s['loss_last_mean']:.4f} (nats/token); loss fell for {100 * s['frac_test_loss_fell']:.1f}% of "
        f"(run, test example)",
        f"curricula: {s['n_distinct_curricula']} distinct of {s['n_runs']}; mean Jaccard overlap of sampled ids "
        f"{s['mean_sample_overlap']:.3f}",
        f"at step {s['steps']['mid']}: change since step {s['steps']['first']} has std across runs "
        f"{s['spread_change_std']:.4f} per test example (mean |change| {s['spread_change_abs_mean']:.4f})",
    ]
    if "match_delta_mean" in s:
        lines.append(f"batch content: one-step loss change {s['match_delta_mean']:+.5f} for test examples whose "
                     f"label is the batch majority ({s['n_match']}) vs {s['other_delta_mean']:+.5f} for the others "
                     f"({s['n_other']})")
    for m in ("bleu", "rougeL"):
        if f"{m}_first_mean" in s:
            lines.append(f"{m}: {s[f'{m}_first_mean']:.3f} -> {s[f'{m}_last_mean']:.3f}")
    return "\n".join(lines)
