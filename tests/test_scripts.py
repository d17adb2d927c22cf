"""Entry points: every script answers --help (in-process through its parser, and a few as real processes),
importing a script does no work, and every script is a thin entry into gptfluence/cli."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["train.py", "test.py", "influence.py", "test_tracincp.py", "rescale_tracincp.py",
           *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "utils").glob("*.py")),
           *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.py"))]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_in_process(script, capsys):
    """--help prints the usage and exits 0; nothing happens at import (the work sits behind __main__)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("script_under_test", ROOT / script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # importing does no work
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "-h, --help" in out


@pytest.mark.parametrize("script", ["train.py", "utils/make_runs.py", "utils/construct_runs-data.py"])
def test_help_as_a_process(script):
    out = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage:"), out.stderr[-1000:]


@pytest.mark.parametrize("script", [s for s in SCRIPTS if not s.startswith("bench/")])
def test_scripts_are_thin(script):
    """A script is argument parsing plus one call: no more than two functions, none longer than 20 lines."""
    tree = ast.parse((ROOT / script).read_text())
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(funcs) <= 2 and all(f.end_lineno - f.lineno < 20 for f in funcs), script


def test_shell_script_without_gpu_says_so_and_names_what_is_missing(tmp_path):
    import os
    env = dict(os.environ, OUTPUT_DIR=str(tmp_path / "nothing"), TASKS="rte", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(["bash", "auto_test.sh", "0"], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 1
    assert "no GPU found (asked for GPU 0): running on the CPU" in out.stdout
    assert "no checkpoints for metrics 'loss'" in out.stderr and "bash run_enc_sim.sh 0" in out.stderr
