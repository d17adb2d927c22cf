"""Building task sets: seeded, content-disjoint train and test records of a built-in task, rendered into
samples, with optional label noise."""

from __future__ import annotations

import json
import random
import zlib
from typing import Mapping, Sequence

from .registry import GENERATORS, make_sample
from .spec import CLASSIFICATION_TASKS, CONTENT_FIELDS, DEFAULT_N_TRAIN, LABEL_WORDS, PAPER_TEST_SIZES, check_task


def named_rng(*parts) -> random.Random:
    """A random stream named by `parts` (stable across Python processes and versions)."""
    return random.Random(zlib.crc32(":".join(map(str, parts)).encode()))


def record_key(task: str, record: Mapping) -> str:
    return json.dumps([record[k] for k in CONTENT_FIELDS[task]], ensure_ascii=False)


def _balanced_labels(rng: random.Random, n: int) -> list[int]:
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return labels


# One in CORPUS_SHARE content keys (a review sentence, a source sentence, the person an RTE event is
# about and its hypothesis, the entity a BoolQ passage or a WebNLG triple describes) is reserved for the
# pre-training corpus: task generators never produce a record with a reserved key, the corpus's task-like
# instances use reserved keys only, so the corpus and every task pool are disjoint by construction,
# whatever the seeds and sizes.
CORPUS_SHARE = 4


def reserved(key: str) -> bool:
    """True if the content key `key` belongs to the pre-training corpus's share."""
    return zlib.crc32(f"corpus-share:{key}".encode()) % CORPUS_SHARE == 0


def _generate(task: str, n: int, rng: random.Random, seen: set[str], max_tries: int = 200) -> list[dict]:
    """n records with content not in `seen` (which is updated) and no key reserved for the corpus;
    labels balanced for classification."""
    gen = GENERATORS[task]
    labels = _balanced_labels(rng, n) if task in CLASSIFICATION_TASKS else [None] * n
    out = []
    for label in labels:
        for _ in range(max_tries):
            rec = gen(rng, label)
            if any(reserved(k) for k in rec.pop("keys")):
                continue
            key = record_key(task, rec)
            if key not in seen:
                seen.add(key)
                out.append(rec)
                break
        else:
            raise ValueError(f"{task}: could not generate {n} distinct examples (got {len(out)})")
    return out


def build_records(task: str, n_train: int = DEFAULT_N_TRAIN, n_test: int | None = None,
                  seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Structured (un-rendered) train and test records of a built-in task, disjoint in content.

    The test records depend only on (task, n_test, seed), so a test set is the same whatever the
    training size (the FLAN eval set equals the fine-tuning test sets); the training records are
    drawn from their own stream and never repeat a test record.
    """
    check_task(task)
    n_test = PAPER_TEST_SIZES[task] if n_test is None else n_test
    if n_train < 0 or n_test < 0:
        raise ValueError(f"{task}: sizes must be >= 0, got n_train={n_train}, n_test={n_test}")
    seen: set[str] = set()
    test = _generate(task, n_test, named_rng(task, seed, "test"), seen)
    train = _generate(task, n_train, named_rng(task, seed, "train"), seen)
    return train, test


def apply_label_noise(samples: Sequence[dict], task: str, fraction: float, seed: int = 0) -> list[dict]:
    """Flip the labels of exactly round(fraction * N) samples (a seeded choice).

    Returns new samples; flipped ones get the other label word as target, "label" = the
    noisy label, "clean_label" = the true label and "flipped": True. Only for classification
    tasks. The prompt (context) is kept; the target is re-rendered.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return [dict(s) for s in samples]
    if task not in CLASSIFICATION_TASKS:
        raise ValueError(f"label noise needs a classification task ({', '.join(CLASSIFICATION_TASKS)}), got {task!r}")
    k = round(fraction * len(samples))
    flip = set(named_rng(task, seed, "noise").sample(range(len(samples)), k))
    out = []
    for i, s in enumerate(samples):
        s = dict(s)
        s.setdefault("clean_label", s["label"])
        s["flipped"] = i in flip
        if i in flip:
            s["label"] = 1 - int(s["label"])
            s["output"] = LABEL_WORDS[task][s["label"]]
            s["target"] = " " + s["output"]
            s["input"] = s["context"] + s["target"]
        out.append(s)
    return out


def build_task(name: str, n_train: int = DEFAULT_N_TRAIN, n_test: int | None = None, seed: int = 0,
               label_noise: float = 0.0) -> tuple[list[dict], list[dict]]:
    """Built-in (train_samples, test_samples) of task `name` in its default prompt format.

    n_test defaults to the paper's test size (sst2 200, rte 277, boolq 200, webnlg 178,
    wmt16_de_en 200). Ids are 0..N-1 in each list; no training input equals a test input.
    label_noise flips exactly round(label_noise * n_train) training labels (see apply_label_noise).
    """
    train_rec, test_rec = build_records(name, n_train, n_test, seed)
    train = [make_sample(name, r, i) for i, r in enumerate(train_rec)]
    test = [make_sample(name, r, i) for i, r in enumerate(test_rec)]
    if label_noise:
        train = apply_label_noise(train, name, label_noise, seed)
    return train, test
