"""Per-task run settings of the reproduce.py presets: the default preset runs sst2 at its own lr and length, a flag
given on the command line holds for every task, and every consumer (reproduce, bench_fidelity, sensitivity,
bench_runs) gets the same per-task run spec."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from gptfluence.cli import fidelity, sensitivity
from gptfluence.cli import reproduce as cli
from gptfluence.experiments.reproduce import preset_run_spec, task_args

ROOT = Path(__file__).resolve().parents[1]


def fake_workspace():
    return SimpleNamespace(task_files=lambda task, shot, n_test, seed: (f"{task}_train.json", f"{task}_eval.json"))


def spec_of(args, task):
    spec, key, _ = preset_run_spec(fake_workspace(), args, task)
    return spec, key


def test_default_preset_runs_sst2_gentler_and_longer():
    args = cli.parse_args([])
    assert args.per_task == {"sst2": {"epochs": 8, "make_lr": 2e-4}}
    sst2, key = spec_of(args, "sst2")
    assert (sst2.epochs, sst2.lr) == (8, 2e-4) and "_ep8_lr0.0002_" in key
    for task in ("rte", "boolq", "webnlg", "wmt16_de_en"):
        spec, key = spec_of(args, task)
        assert (spec.epochs, spec.lr) == (4, 1e-3) and "_ep4_lr0.001_" in key
    # the common values stay in args (what args.json records beside per_task)
    assert (args.epochs, args.make_lr) == (4, 1e-3)


def test_a_flag_on_the_command_line_holds_for_every_task():
    args = cli.parse_args(["--epochs", "3"])
    assert args.per_task == {"sst2": {"make_lr": 2e-4}}
    assert (spec_of(args, "sst2")[0].epochs, spec_of(args, "sst2")[0].lr) == (3, 2e-4)
    assert (spec_of(args, "rte")[0].epochs, spec_of(args, "rte")[0].lr) == (3, 1e-3)
    args = cli.parse_args(["--epochs", "3", "--make_lr", "5e-4"])
    assert args.per_task == {}
    assert {(spec_of(args, t)[0].epochs, spec_of(args, t)[0].lr) for t in ("sst2", "rte")} == {(3, 5e-4)}


def test_presets_without_per_task_settings_and_the_other_commands():
    assert cli.parse_args(["--preset", "quick"]).per_task == {}
    for mod in (fidelity, sensitivity):
        args = mod.parse_args([])
        assert spec_of(args, "sst2")[0].epochs == 8 and spec_of(args, "boolq")[0].epochs == 4


def test_only_run_settings_can_differ_between_tasks():
    args = cli.parse_args([])
    args.per_task = {"rte": {"shot": 10}}
    with pytest.raises(ValueError, match="per-task setting 'shot' of rte"):
        task_args(args, "rte")


def test_bench_runs_uses_the_per_task_shape():
    spec = importlib.util.spec_from_file_location("bench_runs", ROOT / "bench" / "bench_runs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (mod.shape_of("default", "sst2")["epochs"], mod.shape_of("default", "sst2")["lr"]) == (8, 2e-4)
    assert (mod.shape_of("default", "rte")["epochs"], mod.shape_of("default", "rte")["lr"]) == (4, 1e-3)
