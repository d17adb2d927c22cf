"""The GPTDynamics layouts (docs/gptdynamics-format.md): writers and readers.

Readers (bottom of the file): parse_log_records / read_log (log.out, tolerant of progress-bar debris),
list_checkpoints / read_checkpoint (raw checkpoint files), read_samples_id / read_trajectories (processed).

Raw run directory (what a fine-tuning run writes):
    <run_dir>/log.out                                   one Python-dict line per optimizer step
    <run_dir>/loss_<task>/loss_<task>_checkpoint-<step>.out      {"id", "loss"} per test example
    <run_dir>/metric_<task>/metric_<task>_checkpoint-<step>.out  {"id", "loss", "rouge1", "rouge2", "rougeL", "bleu"}

Processed run directory (what train.py / test.py read):
    <run_dir>/train_samples_id.json        {"step": 1, "samples_id": [12, 187, 45, 3]} per step
    <run_dir>/all_<metric>_trajectory.out  {"id": 200, "loss_trajectory": [{"step": 1, "loss": 2.17}, ...]}
The inner keys are "loss_trajectory" / "loss" for every metric, as released.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .io import DataError, iter_jsonl, write_jsonl

METRIC_FIELDS = ("loss", "rouge1", "rouge2", "rougeL", "bleu")

# Global test id = local id + offset, for the instruction-tuning (FLAN) eval set.
FLAN_TEST_OFFSETS = {"sst2": 0, "rte": 200, "boolq": 477, "webnlg": 677, "wmt16_de_en": 855}


def raw_run_name(task: str, model: str, seed: int, bs: int = 4, shot: int = 200, sample: int = 128,
                 lr: str = "5e-7", weight_decay: float = 0.001, epoch: int = 3,
                 loss_output_token: bool = True) -> str:
    """The released raw run folder name, e.g.
    output_rte_bs-4_shot-200_sample-128_model-pythia-410m-deduped_lr-5e-7_weight-decay-0.001_epoch-3_loss-output-token_seed-1
    """
    model = str(model).rstrip("/").split("/")[-1]
    name = (f"output_{task}_bs-{bs}_shot-{shot}_sample-{sample}_model-{model}_lr-{lr}"
            f"_weight-decay-{weight_decay}_epoch-{epoch}")
    if loss_output_token:
        name += "_loss-output-token"
    return f"{name}_seed-{seed}"


def checkpoint_path(run_dir: str | os.PathLike, task: str, step: int, kind: str = "loss") -> Path:
    """Path of a raw checkpoint file; kind is "loss" or "metric"."""
    if kind not in ("loss", "metric"):
        raise ValueError(f"kind must be 'loss' or 'metric', got {kind!r}")
    return Path(run_dir) / f"{kind}_{task}" / f"{kind}_{task}_checkpoint-{step}.out"


class RawRunWriter:
    """Writes one raw run directory in the GPTDynamics layout.

    log_step appends (and flushes) one line to log.out per optimizer step; checkpoint
    files are written atomically, one per recorded step.
    """

    def __init__(self, run_dir: str | os.PathLike, task: str):
        self.run_dir = Path(run_dir)
        self.task = task
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.run_dir / "log.out", "a", encoding="utf-8")

    def log_step(self, step: int, loss: float, samples_id: Sequence[int], **extra) -> None:
        """One optimizer step: its training loss and the training ids of its batch (+ extras,
        e.g. learning_rate). Written as a Python-dict line, as the released runs do."""
        record = {"loss": float(loss), "step": int(step), "samples_id": [int(i) for i in samples_id]}
        record.update(extra)
        self._log.write(repr(record) + "\n")
        self._log.flush()

    def write_loss(self, step: int, ids: Sequence[int], losses: Sequence[float], task: str | None = None) -> Path:
        """The loss of every test example after `step` (ids are task-local)."""
        path = checkpoint_path(self.run_dir, task or self.task, step, "loss")
        write_jsonl(path, ({"id": int(i), "loss": float(v)} for i, v in zip(ids, losses)))
        return path

    def write_metrics(self, step: int, rows: Iterable[Mapping], task: str | None = None) -> Path:
        """Generation metrics after `step`: rows with id, loss, rouge1, rouge2, rougeL (0-1), bleu (0-100)."""
        path = checkpoint_path(self.run_dir, task or self.task, step, "metric")
        write_jsonl(path, ({"id": int(r["id"]), **{k: float(r[k]) for k in METRIC_FIELDS if k in r}} for r in rows))
        return path

    def close(self) -> None:
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_processed_run(run_dir: str | os.PathLike, samples_id: Mapping[int, Sequence[int]],
                        trajectories: Mapping[str, Mapping[int, Sequence[tuple[int, float]]]]) -> None:
    """Write a processed run directory.

    samples_id: step -> training ids of that step's batch.
    trajectories: metric -> test id -> [(step, value), ...] (a step may be absent: a gap).
    """
    run_dir = Path(run_dir)
    write_jsonl(run_dir / "train_samples_id.json",
                ({"step": int(s), "samples_id": [int(i) for i in ids]} for s, ids in sorted(samples_id.items())))
    for metric, per_id in trajectories.items():
        write_jsonl(run_dir / f"all_{metric}_trajectory.out",
                    ({"id": int(tid), "loss_trajectory": [{"step": int(s), "loss": float(v)} for s, v in traj]}
                     for tid, traj in sorted(per_id.items())))


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------

_SAMPLES_KEY = re.compile(r"""['"]samples_id['"]""")
_BARE_NONFINITE = re.compile(r"(?<![\w'\".])(-?)(nan|inf|infinity)(?![\w'\"])", re.IGNORECASE)
_MAX_SPAN_TRIES = 8


def _as_int(x):
    """An int from an int or a digit string; None otherwise (bools are not ints here)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, str) and x.strip().lstrip("-").isdigit():
        return int(x)
    return None


def _literal_dict(text: str):
    """ast.literal_eval of a Python-dict text; bare nan/inf (as repr() writes them) become None."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return ast.literal_eval(_BARE_NONFINITE.sub("None", text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_log_records(line: str) -> list[dict]:
    """Every Python-dict record holding 'samples_id' in one log.out line.

    Tolerates text glued before / after the dict (progress-bar debris such as
    "  5%|▌ | 5/96 [00:01<00:20]{'loss': 2.3, 'step': 5, 'samples_id': [..]}") and several records
    glued on one line. The {...} span around each 'samples_id' key is parsed with ast.literal_eval.
    Returns [] for a line without 'samples_id'; raises ValueError when a 'samples_id' key sits in
    no parseable dict.
    """
    records, pos = [], 0
    while True:
        m = _SAMPLES_KEY.search(line, pos)
        if m is None:
            return records
        starts = [i for i in range(m.start() - 1, -1, -1) if line[i] == "{"][:_MAX_SPAN_TRIES]
        ends = [i for i in range(m.end(), len(line)) if line[i] == "}"][:_MAX_SPAN_TRIES]
        found = None
        for s in starts:
            for e in ends:
                obj = _literal_dict(line[s:e + 1])
                if isinstance(obj, dict) and "samples_id" in obj:
                    found = (obj, e)
                    break
            if found:
                break
        if found is None:
            raise ValueError("a 'samples_id' key outside any parseable {...} dict")
        records.append(found[0])
        pos = found[1] + 1


@dataclass
class LogSteps:
    """What log.out says about the optimizer steps of a run.

    samples_id: step -> training ids of that step's batch (the last line wins for a repeated step).
    learning_rates: step -> 'learning_rate' of that step's record, where the log has one.
    repeated:   step -> 1-based line numbers of every line of that step (only steps seen more than once).
    n_lines / n_unrelated: lines read / lines without a step record (ignored).
    n_bad: lines skipped as unparseable (only with strict=False).
    """
    path: Path
    samples_id: dict = field(default_factory=dict)
    learning_rates: dict = field(default_factory=dict)
    repeated: dict = field(default_factory=dict)
    n_lines: int = 0
    n_unrelated: int = 0
    n_bad: int = 0


def _check_log_record(path, lineno, rec) -> tuple[int, list[int]]:
    step = _as_int(rec.get("step"))
    if step is None or step < 0:
        raise DataError(f"{path}:{lineno}: expected an integer 'step' >= 0 in the dict with 'samples_id', "
                        f"got {rec.get('step')!r}")
    ids = rec.get("samples_id")
    if not isinstance(ids, (list, tuple)):
        raise DataError(f"{path}:{lineno}: step {step}: expected 'samples_id' to be a list of training ids, "
                        f"got {type(ids).__name__}")
    out = []
    for x in ids:
        xi = _as_int(x)
        if xi is None or xi < 0:
            raise DataError(f"{path}:{lineno}: step {step}: expected non-negative integer training ids in "
                            f"'samples_id', got {x!r}")
        out.append(xi)
    return step, out


def read_log(path: str | os.PathLike, strict: bool = True) -> LogSteps:
    """Parse a raw run's log.out (see parse_log_records for what a line may hold): the one log.out parser.

    Raises DataError naming the file if it is missing or holds no step record, and file:line for a
    'samples_id' record that cannot be parsed or lacks an integer 'step' (with strict=False such lines
    are skipped and counted in n_bad instead).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected log.out with one "
                        f"{{'loss': .., 'step': .., 'samples_id': [..]}} line per optimizer step)")
    out = LogSteps(path=path)
    lines_of: dict[int, list[int]] = {}
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            out.n_lines += 1
            try:
                recs = parse_log_records(line)
                checked = [(_check_log_record(path, lineno, rec), rec) for rec in recs]
            except (ValueError, DataError) as e:
                if strict:
                    msg = str(e) if isinstance(e, DataError) else f"{path}:{lineno}: {e}: {line.strip()[:100]!r}"
                    raise DataError(msg) from None
                out.n_bad += 1
                continue
            if not recs:
                out.n_unrelated += 1
            for (step, ids), rec in checked:
                out.samples_id[step] = ids
                if isinstance(rec.get("learning_rate"), (int, float)):
                    out.learning_rates[step] = float(rec["learning_rate"])
                lines_of.setdefault(step, []).append(lineno)
    if not out.samples_id:
        raise DataError(f"{path}: no step records (expected lines like "
                        f"{{'loss': 2.3, 'step': 1, 'samples_id': [12, 187, 45, 3]}})")
    out.samples_id = dict(sorted(out.samples_id.items()))
    out.repeated = {s: ls for s, ls in sorted(lines_of.items()) if len(ls) > 1}
    return out


def list_checkpoints(run_dir: str | os.PathLike, task: str, kind: str = "loss") -> dict[int, Path]:
    """step -> checkpoint file path for every <kind>_<task>/<kind>_<task>_checkpoint-<step>.out (sorted by step).

    Returns {} when the folder does not exist (the caller decides whether that is an error).
    """
    folder = checkpoint_path(run_dir, task, 0, kind).parent
    if not folder.is_dir():
        return {}
    pat = re.compile(rf"^{re.escape(kind)}_{re.escape(task)}_checkpoint-(\d+)\.out$")
    found = {}
    for p in folder.iterdir():
        m = pat.match(p.name)
        if m and p.is_file():
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def _number(path, lineno, key, x) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise DataError(f"{path}:{lineno}: expected a number for {key!r}, got {x!r}")
    return float(x)


def read_checkpoint(path: str | os.PathLike, fields: Sequence[str]) -> dict[str, dict[int, float]]:
    """Read one raw checkpoint file (JSON lines {"id": 0, "loss": 0.69, ...}).

    Returns field -> {task-local test id -> value}. Non-finite values (NaN, Infinity) are returned as
    they are (the caller counts them). Raises DataError with file:line for a corrupt line, a missing
    or non-numeric field, a missing id or a duplicate id.
    """
    out: dict[str, dict[int, float]] = {k: {} for k in fields}
    first: dict[int, int] = {}
    for lineno, obj in iter_jsonl(path):
        tid = _record_id(path, lineno, obj, first, f"a JSON object with 'id' and {list(fields)}")
        for k in fields:
            if k not in obj:
                raise DataError(f"{path}:{lineno}: id {tid}: missing field {k!r} (expected {list(fields)})")
            out[k][tid] = _number(path, lineno, k, obj[k])
    return out


def _record_id(path, lineno: int, obj, first: dict[int, int], expected: str) -> int:
    """The test id of one JSON line of a per-id file (DataError with file:line for a record that is not an object,
    a bad id or a duplicate); first (id -> line) is updated."""
    if not isinstance(obj, dict):
        raise DataError(f"{path}:{lineno}: expected {expected}")
    tid = _as_int(obj.get("id"))
    if tid is None or tid < 0:
        raise DataError(f"{path}:{lineno}: expected a non-negative integer 'id', got {obj.get('id')!r}")
    if tid in first:
        raise DataError(f"{path}:{lineno}: duplicate id {tid} (first on line {first[tid]})")
    first[tid] = lineno
    return tid


def read_samples_id(path: str | os.PathLike) -> dict[int, list[int]]:
    """Read a processed train_samples_id.json (JSON lines {"step": 1, "samples_id": [..]}): step -> ids.

    Raises DataError with file:line for a corrupt line, a bad record or a repeated step.
    """
    out: dict[int, list[int]] = {}
    first: dict[int, int] = {}
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object {{'step': .., 'samples_id': [..]}}")
        step, ids = _check_log_record(path, lineno, obj)
        if step in first:
            raise DataError(f"{path}:{lineno}: step {step} repeated (first on line {first[step]})")
        first[step] = lineno
        out[step] = ids
    if not out:
        raise DataError(f"{path}: no steps (expected JSON lines {{'step': 1, 'samples_id': [..]}})")
    return dict(sorted(out.items()))


def read_trajectories(path: str | os.PathLike, metric: str = "loss") -> dict[int, list[tuple[int, float]]]:
    """Read a processed all_<metric>_trajectory.out: test id -> [(step, value), ...] in file order.

    Accepts the released keys ("loss_trajectory" / "loss") and also "<metric>_trajectory" / "<metric>".
    Values may be non-finite (returned as they are). Raises DataError with file:line for a corrupt line,
    a bad record, a duplicate id or a step repeated within a trajectory.
    """
    out: dict[int, list[tuple[int, float]]] = {}
    first: dict[int, int] = {}
    traj_keys = ("loss_trajectory", f"{metric}_trajectory")
    for lineno, obj in iter_jsonl(path):
        tid = _record_id(path, lineno, obj, first, "a JSON object {'id': .., 'loss_trajectory': [..]}")
        traj = next((obj[k] for k in traj_keys if k in obj), None)
        if not isinstance(traj, list):
            raise DataError(f"{path}:{lineno}: id {tid}: expected a list under 'loss_trajectory'")
        out[tid] = _fast_points(traj, metric) or _checked_points(path, lineno, tid, traj, metric)
    return out


def _fast_points(traj: list, metric: str) -> list[tuple[int, float]] | None:
    """[(step, value)] when every point is well formed (the common case), else None."""
    try:
        steps = [p["step"] for p in traj]
        vals = [p["loss"] if "loss" in p else p[metric] for p in traj]
    except (TypeError, KeyError):
        return None
    if not all(type(s) is int and s >= 0 for s in steps) or len(set(steps)) != len(steps):
        return None
    if not all(type(v) is float or type(v) is int for v in vals):
        return None
    return list(zip(steps, map(float, vals)))


def _checked_points(path, lineno, tid, traj, metric) -> list[tuple[int, float]]:
    """[(step, value)] of one trajectory, or DataError naming file:line, id and the bad point."""
    seen, points = set(), []
    for p in traj:
        step = _as_int(p.get("step")) if isinstance(p, dict) else None
        if step is None:
            raise DataError(f"{path}:{lineno}: id {tid}: expected points {{'step': int, 'loss': number}}, "
                            f"got {p!r}")
        if step in seen:
            raise DataError(f"{path}:{lineno}: id {tid}: step {step} appears twice in the trajectory")
        seen.add(step)
        v = p.get("loss", p.get(metric))
        points.append((step, _number(path, lineno, f"id {tid} step {step} value", v)))
    return points


# ----------------------------------------------------------------------------------------------
# Predicted trajectories (test.py's pred_and_gt_<metric>_trajectories.out)
# ----------------------------------------------------------------------------------------------

def write_pred_and_gt(path: str | os.PathLike, run_names: Sequence[str], steps, test_ids, true, pred, mask) -> None:
    """Write predicted and true trajectories in the released layout: one JSON line per test example, a list
    with one object per run {"gt_loss": [...], "pred_loss": [...], "step": [...]} (the keys say "loss" for
    every metric; element 0 is the start point), plus "run" (folder name) and "id" (test id) in each object.
    A step without a recorded true value has gt null.

    steps [T]; test_ids [N]; true, pred [R, N, T]; mask [R, N, T] (tensors or nested lists).
    """
    steps = [int(s) for s in (steps.tolist() if hasattr(steps, "tolist") else steps)]
    ids = [int(i) for i in (test_ids.tolist() if hasattr(test_ids, "tolist") else test_ids)]
    true = true.tolist() if hasattr(true, "tolist") else true
    pred = pred.tolist() if hasattr(pred, "tolist") else pred
    mask = mask.tolist() if hasattr(mask, "tolist") else mask
    names = [Path(str(n)).name for n in run_names]

    def rows():
        for n, tid in enumerate(ids):
            yield [{"gt_loss": [float(v) if m else None for v, m in zip(true[r][n], mask[r][n])],
                    "pred_loss": [float(v) for v in pred[r][n]], "step": steps, "run": name, "id": tid}
                   for r, name in enumerate(names)]
    write_jsonl(path, rows())


def read_pred_and_gt(path: str | os.PathLike) -> dict[tuple[str, int], dict]:
    """{(run, test id): {"steps", "gt", "pred"}} of a pred_and_gt file. Reads the released layout (a list of
    per-run objects per line; runs without a name become "run<j>", test ids the line number from 0) and the
    one-object-per-line layout {"run", "id", "steps", "gt", "pred"} of earlier versions.
    Raises DataError naming the file and line of a malformed record.
    """
    out: dict[tuple[str, int], dict] = {}
    for k, (lineno, obj) in enumerate(iter_jsonl(path)):
        items = obj if isinstance(obj, list) else [obj]
        for j, it in enumerate(items):
            if isinstance(it, dict) and {"gt_loss", "pred_loss", "step"} <= set(it):
                key = (str(it.get("run", f"run{j}")), int(it.get("id", k)))
                out[key] = {"steps": it["step"], "gt": it["gt_loss"], "pred": it["pred_loss"]}
            elif isinstance(it, dict) and {"run", "id", "steps", "gt", "pred"} <= set(it):
                out[(str(it["run"]), int(it["id"]))] = {"steps": it["steps"], "gt": it["gt"], "pred": it["pred"]}
            else:
                raise DataError(f"{path}:{lineno}: expected a list of {{'gt_loss', 'pred_loss', 'step'}} objects "
                                "(one per run)")
    if not out:
        raise DataError(f"{path}: no trajectories")
    return out
