"""The FLAN-style instruction-tuning mix: the five tasks under several prompt templates, with the eval
set's global ids as GPTDynamics numbers them."""

from __future__ import annotations

import random
from typing import Mapping, Sequence

from ..formats import FLAN_TEST_OFFSETS
from ..io import DataError
from .build import build_task, named_rng
from .registry import TEMPLATES, render
from .spec import FLAN_N_TRAIN, PAPER_TEST_SIZES, TASKS


def flan_offsets(test_sizes: Mapping[str, int]) -> dict[str, int]:
    """Global-id offset of each task in the FLAN eval set (tasks in TASKS order)."""
    offsets, total = {}, 0
    for task in TASKS:
        offsets[task] = total
        total += int(test_sizes[task])
    return offsets


def _split_evenly(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _retemplate(task: str, sample: Mapping, rng: random.Random) -> dict:
    template = rng.randrange(len(TEMPLATES[task]))
    out = dict(sample)
    out.update(render(task, sample, template))
    out["template"] = template
    return out


def build_flan_mix(n_train: int = FLAN_N_TRAIN, n_test: Mapping[str, int] | None = None, seed: int = 0,
                   task_sets: Mapping[str, tuple[Sequence[dict], Sequence[dict]]] | None = None
                   ) -> tuple[list[dict], list[dict]]:
    """Instruction-tuning (train, eval) mix of the five tasks under several FLAN-style templates.

    Train: n_train samples split evenly over the tasks (remainder to the first tasks), each
    rendered with a seeded random template, shuffled; fields "task" and "local_id" (index in that
    task's training set). Eval: the five test sets concatenated in the order of TASKS, so that
    global id = local_id + flan_offsets(sizes)[task] (= FLAN_TEST_OFFSETS for the paper sizes).
    task_sets: per-task (train, test) samples to use instead of the built-in generators (e.g.
    imported data); each must hold the task's content fields and "output".
    """
    sizes = dict(PAPER_TEST_SIZES, **(n_test or {}))
    per_task = dict(zip(TASKS, _split_evenly(n_train, len(TASKS))))
    rng = named_rng("flan", seed, "templates")
    train, test = [], []
    for task in TASKS:
        if task_sets is not None and task in task_sets:
            tr, te = task_sets[task]
            if len(tr) < per_task[task]:
                raise DataError(f"flan mix: task {task} has {len(tr)} training samples, needs {per_task[task]}")
            tr, te = list(tr)[: per_task[task]], list(te)
            sizes[task] = len(te)
        else:
            tr, te = build_task(task, per_task[task], sizes[task], seed)
        train += [dict(_retemplate(task, s, rng), task=task, local_id=i) for i, s in enumerate(tr)]
        test += [dict(_retemplate(task, s, rng), task=task, local_id=i) for i, s in enumerate(te)]
    named_rng("flan", seed, "order").shuffle(train)
    for i, s in enumerate(train):
        s["id"] = i
    offsets = flan_offsets(sizes)
    for s in test:
        s["id"] = offsets[s["task"]] + s["local_id"]
    if all(sizes[t] == PAPER_TEST_SIZES[t] for t in TASKS):
        assert offsets == FLAN_TEST_OFFSETS
    return train, test
