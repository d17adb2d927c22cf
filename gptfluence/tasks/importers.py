"""Real datasets as task samples: local csv / tsv / JSON-lines files with named columns and the Hugging
Face hub, through one row converter per task."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..io import DataError, iter_jsonl
from .build import named_rng, record_key
from .registry import make_sample
from .spec import CLASSIFICATION_TASKS, CONTENT_FIELDS, LABEL_WORDS, check_task

logger = logging.getLogger(__name__)


# task field -> accepted column names (first present wins), for local files
DEFAULT_COLUMNS = {
    "sst2": {"sentence": ("sentence", "text"), "label": ("label",)},
    "rte": {"premise": ("premise", "sentence1"), "hypothesis": ("hypothesis", "sentence2"), "label": ("label",)},
    "boolq": {"passage": ("passage",), "question": ("question",), "label": ("label", "answer")},
    "webnlg": {"triples": ("triples",), "output": ("text", "target", "lex")},
    "wmt16_de_en": {"source": ("de", "source"), "output": ("en", "target")},
}
# Hugging Face dataset (path, name) and the (train, test) splits used
HF_DATASETS = {"sst2": ("glue", "sst2"), "rte": ("super_glue", "rte"), "boolq": ("super_glue", "boolq"),
               "webnlg": ("web_nlg", "release_v3.0_en"), "wmt16_de_en": ("wmt16", "de-en")}
HF_SPLITS = {"sst2": ("train", "validation"), "rte": ("train", "validation"), "boolq": ("train", "validation"),
             "webnlg": ("train", "dev"), "wmt16_de_en": ("train", "test")}
_LABEL_STRINGS = {
    "sst2": {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1},
    "rte": {"0": 0, "1": 1, "entailment": 0, "not_entailment": 1, "yes": 0, "no": 1},
    "boolq": {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1},
}


def _parse_label(task: str, value, where: str) -> int:
    key = str(value).strip().lower()
    if key.endswith(".0"):
        key = key[:-2]
    if key not in _LABEL_STRINGS[task]:
        raise DataError(f"{where}: bad {task} label {value!r}; expected one of "
                        f"{sorted(set(_LABEL_STRINGS[task]))}")
    return _LABEL_STRINGS[task][key]


def _parse_triples(value, where: str) -> list[str]:
    """Triples as a list of 's | r | o' strings, from a list, a JSON list, or 'a | b | c ; d | e | f'."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise DataError(f"{where}: triples column is not a valid JSON list: {text[:60]!r}") from None
        else:
            value = [t for t in text.replace("\n", ";").split(";") if t.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(f"{where}: expected 1 or more triples 'subject | relation | object', got {value!r}")
    triples = []
    for t in value:
        if isinstance(t, (list, tuple)) and len(t) == 3:
            t = " | ".join(map(str, t))
        parts = [p.strip() for p in str(t).split("|")]
        if len(parts) != 3 or not all(parts):
            raise DataError(f"{where}: expected a triple 'subject | relation | object', got {t!r}")
        triples.append(" | ".join(parts))
    return triples


def convert_row(task: str, row: Mapping, where: str) -> dict:
    """A record (content fields + "output" [+ "label"]) from a row already keyed by task field names.

    where: "file:line" (or dataset name and row) used in error messages.
    """
    check_task(task)
    rec: dict = {}
    for key in CONTENT_FIELDS[task]:
        value = row.get(key)
        if key == "triples":
            rec[key] = _parse_triples(value, where)
            continue
        if value is None or not str(value).strip():
            raise DataError(f"{where}: empty {key!r} for task {task}")
        rec[key] = " ".join(str(value).split())
    if task in CLASSIFICATION_TASKS:
        rec["label"] = _parse_label(task, row.get("label"), where)
        rec["output"] = LABEL_WORDS[task][rec["label"]]
    else:
        out = row.get("output")
        if out is None or not str(out).strip():
            raise DataError(f"{where}: empty target text for task {task}")
        rec["output"] = " ".join(str(out).split())
    if task == "boolq":
        rec["question"] = rec["question"].rstrip("?").strip()
    return rec


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """(column names, [(line number, row dict)]) of a csv, tsv or JSON-lines file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if suffix in (".jsonl", ".json"):
        rows = list(iter_jsonl(path))
        for lineno, obj in rows:
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object with named fields")
        columns = list(dict.fromkeys(k for _, obj in rows for k in obj))
        return columns, rows
    if suffix not in (".csv", ".tsv"):
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .tsv, .jsonl or .json")
    with open(path, "r", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
        rows = [(i + 2, row) for i, row in enumerate(reader)]
        columns = list(reader.fieldnames or [])
    return columns, rows


def _resolve_columns(task: str, path: Path, present: Sequence[str],
                     columns: Mapping[str, str] | None) -> dict[str, str]:
    """task field -> column name; DataError naming the file, missing and present columns."""
    mapping, missing = {}, []
    for field, candidates in DEFAULT_COLUMNS[task].items():
        if columns and field in columns:
            candidates = (columns[field],)
        found = next((c for c in candidates if c in present), None)
        if found is None:
            missing.append("/".join(candidates))
        else:
            mapping[field] = found
    if missing:
        raise DataError(f"{path}: task {task} needs column(s) {', '.join(missing)}; "
                        f"the file has {', '.join(present) or 'no columns'}")
    return mapping


def _select(records: list[dict], n: int | None, seed: int, task: str) -> list[dict]:
    """Drop content duplicates, then a seeded choice of n (all when n is None), in a seeded order."""
    unique = list({record_key(task, r): r for r in records}.values())
    if n is None:
        return unique
    if n > len(unique):
        raise DataError(f"{task}: asked for {n} samples but only {len(unique)} distinct ones are available")
    return named_rng(task, seed, "select").sample(unique, n)


def import_local(task: str, path: str | os.PathLike, columns: Mapping[str, str] | None = None,
                 n: int | None = None, seed: int = 0) -> list[dict]:
    """Samples of `task` from a csv / tsv / JSON-lines file with named columns.

    Default columns (first present wins): sst2 sentence|text, label; rte premise|sentence1,
    hypothesis|sentence2, label; boolq passage, question, label|answer; webnlg triples, text|target|lex;
    wmt16_de_en de|source, en|target. `columns` maps a task field (as the keys of DEFAULT_COLUMNS)
    to a column name. n: a seeded random choice of n distinct rows (all when None).
    """
    check_task(task)
    path = Path(path)
    present, rows = _read_table(path)
    mapping = _resolve_columns(task, path, present, columns)
    records = [convert_row(task, {f: row.get(c) for f, c in mapping.items()}, f"{path}:{lineno}")
               for lineno, row in rows]
    return [make_sample(task, r, i) for i, r in enumerate(_select(records, n, seed, task))]


def hf_row_to_fields(task: str, row: Mapping) -> dict:
    """Map a row of the task's Hugging Face dataset to task field names (see DEFAULT_COLUMNS)."""
    if task == "sst2":
        return {"sentence": row["sentence"], "label": row["label"]}
    if task == "rte":
        return {"premise": row["premise"], "hypothesis": row["hypothesis"], "label": row["label"]}
    if task == "boolq":
        return {"passage": row["passage"], "question": row["question"], "label": row["label"]}
    if task == "webnlg":
        triples = row["modified_triple_sets"]["mtriple_set"][0]
        texts = row["lex"]["text"]
        return {"triples": list(triples), "output": texts[0] if texts else None}
    if task == "wmt16_de_en":
        return {"source": row["translation"]["de"], "output": row["translation"]["en"]}
    raise ValueError(check_task(task))


def convert_hf_rows(task: str, rows: Iterable[Mapping], source: str = "hub") -> list[dict]:
    """Records from Hugging Face rows (rows with label -1, i.e. unlabelled, raise DataError)."""
    return [convert_row(task, hf_row_to_fields(task, row), f"{source} row {i}") for i, row in enumerate(rows)]


def import_hf(task: str, split: str, n: int | None = None, seed: int = 0, max_rows: int = 20000) -> list[dict]:
    """Samples of `task` from its Hugging Face dataset (needs the hub or a local datasets cache).

    Reads at most max_rows rows of `split` (a seeded shuffle first), converts them with the same
    row converter as import_local and returns a seeded choice of n distinct samples.
    """
    check_task(task)
    import datasets  # imported here: only this path needs it

    path, name = HF_DATASETS[task]
    ds = datasets.load_dataset(path, name, split=split)
    ds = ds.shuffle(seed=seed).select(range(min(max_rows, len(ds))))
    logger.info("%s: read %d rows of %s/%s split %s", task, len(ds), path, name, split)
    records = convert_hf_rows(task, ds, source=f"{path}/{name}:{split}")
    return [make_sample(task, r, i) for i, r in enumerate(_select(records, n, seed, task))]


def split_disjoint(task: str, samples: Sequence[dict], n_train: int, n_test: int, seed: int = 0
                   ) -> tuple[list[dict], list[dict]]:
    """Split imported samples into disjoint (train, test) sets (no shared input text), ids 0..N-1."""
    unique = list({s["input"]: s for s in samples}.values())
    if n_train + n_test > len(unique):
        raise DataError(f"{task}: need {n_train}+{n_test} distinct samples, have {len(unique)}")
    picked = named_rng(task, seed, "split").sample(unique, n_train + n_test)
    train = [dict(s, id=i) for i, s in enumerate(picked[:n_train])]
    test = [dict(s, id=i) for i, s in enumerate(picked[n_train:])]
    return train, test
