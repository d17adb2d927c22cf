"""The catalogue of bad inputs: each entry point ends with ONE line naming the thing, a non-zero exit status, no
traceback, and nothing left that looks complete. Run in-process through gptfluence.runtime.run_main (what every
script's __main__ does); a few are also run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rawruns import write_raw_run

from gptfluence.cli import (
    construct_runs,
    experiments,
    influence,
    make_runs,
    make_tables,
    mislabelled,
    prepare_tasks,
    published,
    run_tracin,
    test,
    train,
)
from gptfluence.runtime import run_main
from gptfluence.synthetic import make_planted

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Planted runs, their sample files, a finished and an unfinished checkpoint, raw runs, a file in the way."""
    root = tmp_path_factory.mktemp("errors")
    task = make_planted(root / "planted", n_train=16, n_test=8, n_runs=5, sample=8, epochs=2, seed=0)
    runs = [str(d) for d in task.run_dirs]
    paths = json.dumps({"planted": {"train": runs[:4], "test": runs[4:]}})
    base = ["--task", "planted", "--data_paths_dict", paths, "--train_data_path", str(task.train_path),
            "--eval_data_path", str(task.eval_path), "--valid_num", "1", "--no_progress"]
    ckpt = train.main(["--sim_name", "original", *base, "--output_dir", str(root / "out"), "--max_epoch", "2"])
    unfinished = root / "unfinished.pt"
    import torch
    c = torch.load(ckpt / "best-checkpoint.pt", weights_only=False)
    c["finished"] = False
    torch.save(c, unfinished)
    (root / "a_file").write_text("not a folder\n")
    raw = root / "raw"
    write_raw_run(raw / "nan" / "output_rte_x_seed-1", nonfinite={2: 1})
    write_raw_run(raw / "trunc" / "output_rte_x_seed-1")
    f = next((raw / "trunc" / "output_rte_x_seed-1" / "loss_rte").glob("*-3.out"))
    f.write_text(f.read_text()[:-9])
    (raw / "zero" / "output_rte_x_seed-1").mkdir(parents=True)
    (raw / "zero" / "output_rte_x_seed-1" / "log.out").write_text("starting\n")
    (raw / "zero" / "output_rte_x_seed-1" / "loss_rte").mkdir()
    zero_ckpt = raw / "zero" / "output_rte_x_seed-1" / "loss_rte" / "loss_rte_checkpoint-1.out"
    zero_ckpt.write_text('{"id": 0, "loss": 1}\n')
    local = root / "five.tsv"
    local.write_text("sentence\tlabel\n" + "".join(f"row {i} is fine\t{i % 2}\n" for i in range(5)))
    curriculum = root / "cur.json"
    curriculum.write_text(json.dumps([[0, 1], [2, 99]]))
    return {"root": root, "task": task, "runs": runs, "base": base, "ckpt": str(ckpt), "unfinished": str(unfinished),
            "file": str(root / "a_file"), "raw": raw, "local": str(local), "curriculum": str(curriculum)}


def W(key):
    """A value of the fixture, filled in when the case runs."""
    return ("world", key)


T = ["--task", "rte", "--model", "tiny"]
CASES = [
    # (entry point, argv, fragment of the one-line message)
    (prepare_tasks, ["--tasks", "foo"], "unknown task 'foo'"),
    (prepare_tasks, ["--n_train", "0"], "--n_train must be >= 1"),
    (prepare_tasks, ["--n_test", "0"], "--n_test must be >= 1"),
    (prepare_tasks, ["--label_noise", "1.5"], "--label_noise must lie in [0, 1]"),
    (prepare_tasks, ["--out_dir", (W("file"), "/sub")], "is a file, not a folder"),
    (prepare_tasks, ["--source", "local", "--tasks", "sst2", "--local_files", "sst2=/missing/rows.csv"],
     "file not found"),
    (prepare_tasks, ["--source", "local", "--tasks", "sst2", "--local_files", ("sst2=", W("local")), "--n_train", "20",
                     "--out_dir", (W("root"), "/pt")], "need 20+"),
    (prepare_tasks, ["--source", "nowhere"], "invalid choice"),
    (construct_runs, ["--raw_root", "/missing/raw"], "raw run root not found"),
    (construct_runs, ["--raw_root", (W("raw"), "/nan"), "--run_glob", "output_*", "--output_root", (W("root"), "/p1")],
     "--allow_nonfinite"),
    (construct_runs, ["--raw_root", (W("raw"), "/trunc"), "--run_glob", "output_*", "--output_root",
                      (W("root"), "/p2")], "corrupt JSON line"),
    (construct_runs, ["--raw_root", (W("raw"), "/zero"), "--run_glob", "output_*", "--output_root",
                      (W("root"), "/p3")], "no step records"),
    (construct_runs, ["--raw_root", (W("raw"), "/nan"), "--metrics", "loss,accuracy"], "unknown metrics"),
    (construct_runs, ["--raw_root", (W("raw"), "/nan"), "--workers", "0"], "--workers must be >= 1"),
    (construct_runs, ["--raw_root", (W("raw"), "/nan"), "--run_glob", "output_*", "--output_root", W("file")],
     "is a file, not a folder"),
    (make_runs, [*T, "--bs", "0"], "--bs must be >= 1"),
    (make_runs, [*T, "--epochs", "0"], "--epochs must be >= 1"),
    (make_runs, [*T, "--eval_batch_size", "-1"], "--eval_batch_size must be >= 1 (0 = the default"),
    (make_runs, [*T, "--gen_batch_size", "0"], "--gen_batch_size must be >= 1"),
    (make_runs, [*T, "--lr", "-1"], "--lr must be a positive number"),
    (make_runs, [*T, "--lr", "nan"], "--lr must be a positive number"),
    (make_runs, [*T, "--seeds", "5-1"], "range 5-1 is reversed"),
    (make_runs, [*T, "--seeds", "abc"], "expected e.g. '1-27'"),
    (make_runs, [*T, "--shot", "20", "--sample", "30"], "larger than the training pool"),
    (make_runs, [*T, "--record_interval", "0"], "--record_interval must be >= 1"),
    (make_runs, [*T, "--threads", "-1"], "--threads must be >= 0"),
    (make_runs, [*T, "--workers", "-2"], "--workers must be >= 0"),
    (make_runs, [*T, "--output_dir", (W("file"), "/raw")], "is a file, not a folder"),
    (make_runs, [*T, "--train_data_path", "/missing/train.json", "--eval_data_path", "/missing/eval.json"],
     "file not found"),
    (make_runs, ["--task", "nope"], "unknown task 'nope'"),
    (train, [W("base_args"), "--train_bs", "0"], "--train_bs must be >= 1"),
    (train, [W("base_args"), "--sim_name", "norder_enc_sim", "--order_n", "0"], "--order_n must be >= 1"),
    (train, [W("base_args"), "--max_epoch", "0"], "--max_epoch must be >= 1"),
    (train, [W("base_args"), "--lr", "0"], "--lr must be a positive number"),
    (train, [W("base_args"), "--cp_interval", "0"], "--cp_interval must be >= 1"),
    (train, [W("base_args"), "--weight_decay", "-1"], "--weight_decay must be a number >= 0"),
    (train, [W("base_args"), "--output_dir", (W("file"), "/out")], "is a file, not a folder"),
    (train, [W("base_args"), "--sim_name", "foo"], "unknown simulator 'foo'"),
    (train, [W("base_args"), "--sim_name", "tracincp_sim"], "tracincp_sim is not trained"),
    (train, [W("base_args"), "--sim_name", "enc_sim", "--eval_task", "rte"], "--eval_task applies to"),
    (train, [W("base_args"), "--valid_num", "9"], "leave no training run"),
    (train, [W("base_args"), "--test_example_start_id", "5", "--test_example_end_id", "2"], "end is inclusive"),
    (train, ["--task", "planted", "--data_paths_dict", "{not json"], "neither a JSON file nor inline JSON"),
    (train, ["--task", "rte", "--data_paths_dict", '{"rte": ["/missing/run"]}'], "run directory not found"),
    (train, ["--task", "mnli", "--data_paths_dict", '{"rte": ["/missing/run"]}'], "is not in the data paths dict"),
    (train, [W("base_args"), "--train_data_path", "/missing/train.json"], "sample file not found"),
    (test, ["--checkpoint", "/missing/ckpt"], "checkpoint not found"),
    (test, ["--checkpoint", W("ckpt"), "--save_dir", (W("file"), "/t")], "is a file, not a folder"),
    (test, ["--checkpoint", W("ckpt"), "--sim_name", "enc_sim"], "sim_name: checkpoint has 'original'"),
    (test, ["--checkpoint", W("unfinished"), "--save_dir", (W("root"), "/t1")], "--resume"),
    (test, ["--checkpoint", W("ckpt"), "--test_run_dirs", "/missing/run"], "run directory not found"),
    (test, ["--checkpoint", W("ckpt"), "--diverge_bound", "0"], "--diverge_bound must be > 0"),
    (test, ["--checkpoint", W("ckpt"), "--test_num", "0"], "--test_num must be >= 1"),
    (test, ["--checkpoint", W("file")], "not a readable checkpoint"),
    (influence, ["--checkpoint", W("ckpt"), "--curriculum", W("curriculum"), "--init_value", "nan"],
     "--init_value must be a finite number"),
    (influence, ["--checkpoint", W("ckpt"), "--curriculum", W("curriculum"), "--init_value", "1", "--top_k", "0"],
     "--top_k must be >= 1"),
    (influence, ["--checkpoint", W("ckpt")], "exactly one of --run_dir"),
    (influence, ["--checkpoint", W("ckpt"), "--curriculum", W("curriculum"), "--init_value", "1", "--insert_steps",
                 "2"], "--insert_steps needs --mode add"),
    (influence, ["--checkpoint", W("unfinished"), "--curriculum", W("curriculum"), "--init_value", "1"], "--resume"),
    (influence, ["--checkpoint", W("ckpt"), "--curriculum", W("curriculum"), "--init_value", "1"],
     "training id 99 is outside the pool"),
    (influence, ["--checkpoint", W("ckpt"), "--run_dir", W("run0"), "--test_ids", "0,999"],
     "outside the test set"),
    (experiments, ["nope"], "invalid choice: 'nope'"),
    (experiments, ["order", "--workers", "-1"], "--workers must be >= 0"),
    (mislabelled, ["--preset", "quick", "--workers", "-2"], "--workers must be >= 0"),
    (experiments, ["order", "--runs", "4", "--test_runs", "0"], "--test_runs must lie in"),
    (make_tables, ["--metrics_files", "/missing/*.json"], "no metrics.json files match"),
    (mislabelled, ["--preset", "quick", "--shot", "10", "--sample", "6", "--epochs", "1"], "must divide"),
    (mislabelled, ["--preset", "quick", "--shot", "100", "--sample", "50", "--epochs", "2", "--bs", "4"],
     "would have 52 steps and the target run 50"),
    (mislabelled, ["--preset", "quick", "--label_noise", "1.5"], "--label_noise must lie in (0, 1)"),
    (mislabelled, ["--preset", "quick", "--eval_runs", "0"], "--eval_runs must be >= 1"),
    (mislabelled, ["--preset", "quick", "--flipped_controls", "-1"], "--flipped_controls must be >= 0"),
    (mislabelled, ["--preset", "quick", "--n_shuffles", "3", "--random_runs", "4"],
     "--random_runs must lie in 1..--n_shuffles (3)"),
    (mislabelled, ["--preset", "default", "--eval_n_test", "0"], "--eval_n_test must be >= 1"),
    (run_tracin, ["--metric", "bleu", "--train_run_dirs", W("run0"), "--test_run_dirs", W("run1")],
     "predict the loss only"),
    (published, ["get_min_valid_loss", "rte", "/missing/train.log"], "not found"),
    (published, ["rescale_tracincp"], "run it instead"),
]


def _fill(argv, world):
    out = []
    for a in argv:
        if isinstance(a, tuple) and a and a[0] == "world":
            key = a[1]
            out.extend(world["base"] if key == "base_args" else [_value(world, key)])
        elif isinstance(a, tuple):
            out.append("".join(_value(world, x[1]) if isinstance(x, tuple) else x for x in a))
        else:
            out.append(a)
    return out


def _value(world, key):
    if key.startswith("run"):
        return world["runs"][int(key[3:])]
    return str(world[key])


def _main(module, argv):
    if module is published:
        return getattr(published, argv[0])(argv[1:])
    if module is construct_runs:
        return construct_runs.main(argv, "construct_runs-data")
    return module.main(argv)


@pytest.mark.parametrize("module, argv, fragment", CASES,
                         ids=[f"{m.__name__.rsplit('.', 1)[1]}-{i}" for i, (m, _, _) in enumerate(CASES)])
def test_one_line_error(module, argv, fragment, world, capsys):
    argv = _fill(argv, world)
    with pytest.raises(SystemExit) as e:
        run_main(lambda a: _main(module, a), argv)
    err = capsys.readouterr().err
    assert e.value.code not in (0, None), err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error" in last and fragment in last, err[-600:]


def test_the_catalogue_is_large():
    assert len(CASES) >= 50


def test_nothing_left_behind_when_settings_are_refused(tmp_path):
    """Refused settings are checked before any work: no output folder appears."""
    for module, argv in ((make_runs, [*T, "--epochs", "0", "--output_dir", str(tmp_path / "raw")]),
                         (prepare_tasks, ["--n_train", "0", "--out_dir", str(tmp_path / "data")])):
        with pytest.raises(SystemExit):
            run_main(module.main, argv)
        assert not any(tmp_path.iterdir())


def test_train_refusals_leave_no_checkpoint(world):
    for flag, value in (("--max_epoch", "0"), ("--lr", "0"), ("--cp_interval", "0")):
        out = world["root"] / f"refused{flag}"
        with pytest.raises(SystemExit):
            run_main(train.main, [*world["base"], flag, value, "--output_dir", str(out)])
        assert not out.exists()


@pytest.mark.parametrize("script, argv, fragment", [
    ("train.py", ["--train_bs", "0", "--data_paths_dict", '{"rte": {"train": ["."]}}'], "--train_bs must be >= 1"),
    ("utils/make_runs.py", ["--seeds", "5-1"], "range 5-1 is reversed"),
    ("utils/prepare_tasks.py", ["--tasks", "foo"], "unknown task 'foo'"),
])
def test_real_scripts_print_one_line(script, argv, fragment):
    out = subprocess.run([sys.executable, script, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert fragment in out.stderr.strip().splitlines()[-1]
