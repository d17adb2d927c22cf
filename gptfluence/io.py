"""Small, careful file helpers: JSON lines with line numbers, atomic writes, sample files.

Every reader names the file and line of a bad record; every writer writes to a
temporary file in the same folder and renames it, so an interrupted job never
leaves a file that a later job mistakes for complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


class DataError(ValueError):
    """Bad input data. The message names the file (and line or id) and what was expected."""


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield (line_number, object) for every non-blank line of a JSON-lines file.

    Raises DataError naming the file and 1-based line number of a corrupt line, and
    DataError if the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a JSON-lines file)")
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: corrupt JSON line ({e.msg}): {line[:80]!r}") from None


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """All objects of a JSON-lines file (see iter_jsonl for errors)."""
    return [obj for _, obj in iter_jsonl(path)]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside `path`; on success rename it onto `path`.

    On an exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    """Write one JSON object per line, atomically."""
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write a JSON document, atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=indent, sort_keys=False)
        f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a JSON file)")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: corrupt JSON ({e.msg})") from None


def load_samples(path: str | os.PathLike) -> list[dict]:
    """Read a task sample file: JSON lines {"id": int, "input": str, "context": str, ...}.

    Returns the samples as a list indexed by id (ids must be exactly 0..N-1, in any
    order). Unknown fields are kept and otherwise ignored. Raises DataError naming
    the file and line of a record without an integer id or a string input, a
    duplicate id, or a hole in the id range.
    """
    by_id: dict[int, dict] = {}
    first_line: dict[int, int] = {}
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object with id, input, context")
        sid = obj.get("id")
        if isinstance(sid, str) and sid.strip().lstrip("-").isdigit():
            sid = int(sid)
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise DataError(f"{path}:{lineno}: expected an integer 'id', got {obj.get('id')!r}")
        if not isinstance(obj.get("input"), str):
            raise DataError(f"{path}:{lineno}: id {sid}: expected a string 'input' (prompt + target)")
        ctx = obj.get("context", "")
        if not isinstance(ctx, str):
            raise DataError(f"{path}:{lineno}: id {sid}: expected a string 'context' (prompt)")
        if sid in by_id:
            raise DataError(f"{path}:{lineno}: duplicate id {sid} (first on line {first_line[sid]})")
        by_id[sid] = dict(obj, id=sid, context=ctx)
        first_line[sid] = lineno
    if not by_id:
        raise DataError(f"{path}: no samples (expected JSON lines with id, input, context)")
    n = len(by_id)
    missing = [i for i in range(n) if i not in by_id]
    if missing:
        raise DataError(
            f"{path}: ids must be 0..{n - 1}; missing {missing[:5]}{' ...' if len(missing) > 5 else ''} "
            f"(max id {max(by_id)})"
        )
    return [by_id[i] for i in range(n)]


def sample_target(sample: dict) -> str:
    """The reference output of a sample: `input` with the `context` prefix removed.

    Raises DataError if `context` is not a prefix of `input`.
    """
    inp, ctx = sample["input"], sample.get("context", "")
    if not inp.startswith(ctx):
        raise DataError(f"sample id {sample.get('id')}: 'context' is not a prefix of 'input'")
    return inp[len(ctx):]


def file_sha256(path: str | os.PathLike, sampled: bool = False, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's content: the one hasher of the package.

    sampled=True hashes only the size and the first and last `chunk` bytes (cheap for large
    weight files whose identity is all that matters).
    """
    import hashlib
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if sampled:
            size = path.stat().st_size
            h.update(str(size).encode())
            h.update(f.read(chunk))
            if size > chunk:
                f.seek(max(chunk, size - chunk))
                h.update(f.read(chunk))
        else:
            for block in iter(lambda: f.read(chunk), b""):
                h.update(block)
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike) -> dict:
    """Size and sha256 of a file: detects a sample file that changed since a checkpoint was made."""
    return {"size": os.path.getsize(path), "sha256": file_sha256(path)}
