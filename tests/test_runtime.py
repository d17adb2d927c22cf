"""gptfluence/runtime.py: device, threads, seeds, logging, provenance, the entry-point wrapper."""

import json
import logging
import os

import pytest
import torch

from gptfluence import runtime as RT
from gptfluence.io import DataError


def test_resolve_device(caplog):
    assert RT.resolve_device("cpu") == torch.device("cpu") and RT.resolve_device(None) == torch.device("cpu")
    if not torch.cuda.is_available():
        with caplog.at_level(logging.WARNING):
            assert RT.resolve_device("1") == torch.device("cpu")
        assert "no GPU available (asked for 1): running on the CPU" in caplog.text
    with pytest.raises(ValueError, match="expected cpu, cuda, cuda:N or a GPU index"):
        RT.resolve_device("gpu0")


def test_set_threads_and_seeds():
    before = torch.get_num_threads()
    assert RT.set_threads(0) == before and RT.set_threads(1) == 1
    with pytest.raises(ValueError, match="--threads must be >= 0"):
        RT.set_threads(-1)
    RT.set_threads(before)
    RT.seed_everything(7)
    a = (torch.rand(3), __import__("random").random())
    RT.seed_everything(7)
    assert torch.equal(a[0], torch.rand(3)) and a[1] == __import__("random").random()


def test_fresh_log_per_call(tmp_path):
    path = tmp_path / "x.log"
    for word in ("first", "second"):
        h = RT.setup_logging(path)
        logging.getLogger("gptfluence.test").info(word)
        RT.finish_logging(h)
    text = path.read_text()
    assert "second" in text and "first" not in text


def test_provenance_and_env_json(tmp_path):
    info = RT.provenance(["train.py", str(RT.REPO_ROOT / "runs" / "x")], preset="quick", task="rte")
    assert info["command"] == "train.py runs/x" and info["preset"] == "quick" and info["task"] == "rte"
    assert info["versions"]["torch"] == torch.__version__.split("+")[0] or info["versions"]["torch"]
    assert len(info["git_commit"] or "x" * 40) == 40
    path = RT.write_env_json(tmp_path)
    assert set(json.loads(path.read_text())) >= {"git_commit", "git_dirty", "command", "versions", "machine", "utc"}
    machine = info["machine"]
    assert machine["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(machine["cpu"], str) and machine["cpu"]


def test_git_dirty_ignores_rewritten_results(tmp_path, monkeypatch):
    """A re-make rewrites tracked files under results/: that is not uncommitted code."""
    import subprocess
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    monkeypatch.setattr(RT, "REPO_ROOT", tmp_path)
    assert RT.provenance(["x"])["git_dirty"] is False
    (tmp_path / "results" / "table.md").write_text("new\n")
    assert RT.provenance(["x"])["git_dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert RT.provenance(["x"])["git_dirty"] is True


def test_relative_and_cache_dir(monkeypatch):
    assert RT.relative(RT.REPO_ROOT / "results" / "a.md") == os.path.join("results", "a.md")
    assert RT.relative("/elsewhere/x") == "/elsewhere/x" and RT.relative("rel/x") == "rel/x"
    monkeypatch.setenv("GPTFLUENCE_CACHE", "/tmp/somewhere")
    assert RT.cache_dir("models") == "/tmp/somewhere/models"


def test_run_main_exit_codes(capsys):
    def bad(argv):
        raise DataError("file.json:3: expected a number\n(second line)")
    with pytest.raises(SystemExit) as e:
        RT.run_main(bad)
    assert e.value.code == 2 and capsys.readouterr().err == "error: file.json:3: expected a number (second line)\n"
    with pytest.raises(SystemExit) as e:
        RT.run_main(lambda argv: 1)
    assert e.value.code == 1
    with pytest.raises(KeyError):  # a bug keeps its traceback
        RT.run_main(lambda argv: {}["missing"])


def test_worker_pool_workers_die_with_a_killed_parent(tmp_path):
    """kill -9 of a process leaves no worker of its worker_pool behind (they would wait for work forever)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from gptfluence.runtime import worker_pool\n"
        "if __name__ == '__main__':\n"
        "    ex = worker_pool(1)\n"
        "    pid = ex.submit(os.getpid).result()\n"
        "    ex.submit(time.sleep, 120)\n"
        "    print(pid, flush=True)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        os.kill(worker, 0)  # alive
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            try:  # a dead child of ours stays a zombie until reaped; it is not ours here (its parent died)
                if open(f"/proc/{worker}/stat").read().split()[2] == "Z":
                    break
            except OSError:
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError(f"worker {worker} outlived its killed parent")
    finally:
        parent.kill()
