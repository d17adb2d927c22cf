"""Task sample files named as in GPTDynamics, written from the built-in generators when missing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..io import write_jsonl
from .build import build_task
from .flan import build_flan_mix
from .spec import DEFAULT_N_TRAIN, FLAN_N_TRAIN, PAPER_TEST_SIZES, TASKS, check_task

logger = logging.getLogger(__name__)


def task_file_paths(root: str | os.PathLike, task: str, n_train: int = DEFAULT_N_TRAIN,
                    n_test: int | None = None) -> tuple[Path, Path]:
    """(train_path, eval_path) named as in GPTDynamics.

    Under <root>/sft_tasks/<task>/ for the five tasks; for task "flan" under <root>/it_tasks/
    (flan_train_0_{n-1}.json, flan_eval_0_{m-1}.json; n_test defaults to 1055 there).
    """
    root = Path(root)
    if task == "flan":
        m = sum(PAPER_TEST_SIZES.values()) if n_test is None else n_test
        d = root / "it_tasks"
        return d / f"flan_train_0_{n_train - 1}.json", d / f"flan_eval_0_{m - 1}.json"
    check_task(task)
    m = PAPER_TEST_SIZES[task] if n_test is None else n_test
    d = root / "sft_tasks" / task
    a, b = n_train - 1, m - 1
    names = {
        "sst2": (f"sst2_train_0-{a}.json", f"sst2_validation_0-{b}.json"),
        "rte": (f"rte_0_{a}_train.json", f"rte_0_{b}_eval.json"),
        "boolq": (f"boolq_train_0-{a}.json", f"boolq_validation_0-{b}.json"),
        "webnlg": (f"webnlg_train_0-{a}.json", f"webnlg_dev_0-{b}.json"),
        "wmt16_de_en": (f"wmt16_de_en_train_0-{a}.json", f"wmt16_de_en_test_0-{b}.json"),
    }[task]
    return d / names[0], d / names[1]


def ensure_task_files(root: str | os.PathLike, task: str, n_train: int | None = None, n_test: int | None = None,
                      seed: int = 0, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the built-in train / eval sample files of `task` (or "flan") unless they exist.

    n_train defaults to 200 (1600 for "flan"); n_test to the paper sizes. Returns
    (train_path, eval_path) as task_file_paths names them. Existing files are not checked
    against the seed: delete them or pass overwrite=True to regenerate.
    """
    if task == "flan":
        n_train = FLAN_N_TRAIN if n_train is None else n_train
        sizes = {t: (PAPER_TEST_SIZES[t] if n_test is None else n_test) for t in TASKS}
        paths = task_file_paths(root, "flan", n_train, sum(sizes.values()))
        make = lambda: build_flan_mix(n_train, sizes, seed)  # noqa: E731
    else:
        n_train = DEFAULT_N_TRAIN if n_train is None else n_train
        paths = task_file_paths(root, task, n_train, n_test)
        make = lambda: build_task(task, n_train, n_test, seed)  # noqa: E731
    if overwrite or not all(p.exists() for p in paths):
        for path, samples in zip(paths, make()):
            write_jsonl(path, samples)
            logger.info("wrote %s (%d samples)", path, len(samples))
    return paths
