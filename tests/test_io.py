"""gptfluence/io.py: JSON lines with file:line errors, atomic writes, sample files, the hasher."""

import hashlib

import pytest

from gptfluence.io import (
    DataError,
    atomic_open,
    file_fingerprint,
    file_sha256,
    load_samples,
    read_jsonl,
    sample_target,
    write_jsonl,
)


def test_jsonl_roundtrip_and_corrupt_line(tmp_path):
    path = tmp_path / "a.json"
    write_jsonl(path, [{"id": 0}, {"id": 1}])
    assert read_jsonl(path) == [{"id": 0}, {"id": 1}]
    path.write_text('{"id": 0}\n\n{"id": \n')
    with pytest.raises(DataError, match=r"a.json:3: corrupt JSON line"):
        read_jsonl(path)
    with pytest.raises(DataError, match="file not found"):
        read_jsonl(tmp_path / "missing.json")


def test_atomic_open_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write("new")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_samples_and_targets(tmp_path):
    path = tmp_path / "s.json"
    write_jsonl(path, [{"id": 1, "input": "b yes", "context": "b"}, {"id": 0, "input": "a no", "context": "a"}])
    s = load_samples(path)
    assert [x["id"] for x in s] == [0, 1] and sample_target(s[1]) == " yes"
    write_jsonl(path, [{"id": 0, "input": "a"}, {"id": 2, "input": "b"}])
    with pytest.raises(DataError, match=r"ids must be 0..1; missing \[1\]"):
        load_samples(path)
    with pytest.raises(DataError, match="'context' is not a prefix"):
        sample_target({"id": 3, "input": "xyz", "context": "abc"})


def test_hashes(tmp_path):
    path = tmp_path / "f.bin"
    data = bytes(range(256)) * 10000
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_fingerprint(path) == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    sampled = file_sha256(path, sampled=True, chunk=1000)
    path.write_bytes(data[:5000] + b"\x00" + data[5001:])  # a change in the middle: the sampled hash misses it
    assert file_sha256(path, sampled=True, chunk=1000) == sampled
    assert file_sha256(path) != hashlib.sha256(data).hexdigest()
