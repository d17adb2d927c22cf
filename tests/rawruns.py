"""Small synthetic raw runs (GPTDynamics layout) with known values, for the preprocessing / loading tests.

write_raw_run writes one raw run dir with gptfluence.formats.RawRunWriter, then dresses log.out the way real
logs look: progress-bar debris glued before / after step dicts, unrelated lines, optionally a repeated step.
It returns what a correct preprocess must produce:
    {"samples": {step: [train ids]}, "values": {metric: {global test id: [(step, value), ...]}}}
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Mapping, Sequence

from gptfluence.formats import FLAN_TEST_OFFSETS, RawRunWriter, checkpoint_path

GEN_METRICS = ("bleu", "rougeL", "rouge1", "rouge2")


def _value(rng: random.Random, metric: str, step: int, tid: int) -> float:
    base = {"loss": 2.5 - 0.02 * step, "bleu": 10.0 + 0.3 * step, "rougeL": 0.2 + 0.004 * step,
            "rouge1": 0.3 + 0.004 * step, "rouge2": 0.1 + 0.003 * step}[metric]
    return base + 0.01 * (tid % 7) + rng.random() * 0.05


def write_raw_run(run_dir, task: str = "rte", n_steps: int = 8, n_test: int = 5, n_train: int = 20,
                  batch_size: int = 4, seed: int = 0, every: int = 1, missing_steps: Sequence[int] = (),
                  drop: Mapping[int, Sequence[int]] | None = None, nonfinite: Mapping[int, int] | None = None,
                  repeat_step: int | None = None, metrics: bool = False, debris: bool = True,
                  subtasks: Mapping[str, int] | None = None,
                  missing_sub_steps: Mapping[str, Sequence[int]] | None = None) -> dict:
    """Write a raw run; returns the expected processed content (see the module docstring).

    every: write checkpoint files only at steps divisible by `every`; missing_steps: no checkpoint file there;
    drop: step -> local test ids left out of that checkpoint file; nonfinite: step -> local test id whose loss
    is NaN; repeat_step: log this step twice (first with a wrong batch; the second line is the true one);
    metrics: also write metric_<task>/ files (loss, bleu, rougeL, rouge1, rouge2); subtasks: FLAN sub-task ->
    number of test examples (global id = local id + FLAN_TEST_OFFSETS); missing_sub_steps: sub-task -> steps
    without a checkpoint file for that sub-task only.
    """
    rng = random.Random(seed)
    drop, nonfinite = drop or {}, nonfinite or {}
    subtasks = dict(subtasks) if subtasks else {task: n_test}
    offsets = {t: (FLAN_TEST_OFFSETS[t] if len(subtasks) > 1 or t != task else 0) for t in subtasks}
    missing_sub_steps = missing_sub_steps or {}
    names = ["loss"] + (list(GEN_METRICS) if metrics else [])
    expected = {"samples": {}, "values": {m: {} for m in names}}
    with RawRunWriter(run_dir, task) as w:
        for step in range(1, n_steps + 1):
            batch = rng.sample(range(n_train), batch_size)
            if step == repeat_step:
                w.log_step(step, 9.9, [n_train - 1] * batch_size)
            w.log_step(step, 2.0 - 0.01 * step, batch, learning_rate=5e-7)
            expected["samples"][step] = batch
            if step % every or step in missing_steps:
                continue
            for sub, n in subtasks.items():
                if step in missing_sub_steps.get(sub, ()):
                    continue
                _write_checkpoint(w, rng, sub, step, n, offsets[sub], drop.get(step, ()), nonfinite.get(step),
                                  names, expected["values"])
    if debris:
        _dress_log(Path(run_dir) / "log.out")
    for m in names:
        for pts in expected["values"][m].values():
            pts.sort()
    return expected


def _write_checkpoint(w, rng, sub, step, n, offset, dropped, nan_id, names, values) -> None:
    ids = [i for i in range(n) if i not in dropped]
    rows = {i: {m: _value(rng, m, step, i) for m in names} for i in ids}
    if step in (3, 4):  # an exactly repeated value (as in the released runs): step 4 == step 3
        for i in ids:
            prev = values["loss"].get(i + offset, [])
            if step == 4 and prev and prev[-1][0] == 3:
                rows[i]["loss"] = prev[-1][1]
    if nan_id is not None and nan_id in rows:
        rows[nan_id]["loss"] = math.nan
    w.write_loss(step, ids, [rows[i]["loss"] for i in ids], task=sub)
    if len(names) > 1:
        w.write_metrics(step, [dict(id=i, **rows[i]) for i in ids], task=sub)
    for i in ids:
        for m in names:
            v = rows[i][m]
            if math.isfinite(v):
                values[m].setdefault(i + offset, []).append((step, v))


def _dress_log(path: Path) -> None:
    """Glue progress-bar debris to step lines and add unrelated lines, as real training logs have."""
    lines = path.read_text(encoding="utf-8").splitlines()
    n = len(lines)
    out = ["***** Running training *****", "  Num examples = 128"]
    for k, line in enumerate(lines):
        if k % 3 == 0:
            line = f"{100 * k // n:3d}%|▌         | {k}/{n} [00:0{k % 10}<00:20,  4.50it/s]" + line
        elif k % 3 == 1:
            line = line + f" {100 * (k + 1) // n:3d}%|█▌        | {k + 1}/{n} [00:02<00:19]"
        out.append(line)
        if k == n // 2:
            out.append("{'eval_loss': 0.51, 'eval_runtime': 1.2, 'epoch': 1.0}")
    out.append("{'train_runtime': 12.3, 'train_samples_per_second': 31.2, 'epoch': 3.0}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def raw_run_dir(root, task: str, seed: int) -> Path:
    """A released-style raw run dir name under root."""
    from gptfluence.formats import raw_run_name

    return Path(root) / raw_run_name(task, "pythia-410m-deduped", seed)


def checkpoint_file(run_dir, task: str, step: int, kind: str = "loss") -> Path:
    return checkpoint_path(run_dir, task, step, kind)
