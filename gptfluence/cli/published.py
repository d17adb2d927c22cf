"""Entry points under the released scripts' names that map onto this repo's tools (one thin function each).

    utils/draw_cmp_curves.py          GT vs two methods (e.g. Simfluence and GPTfluence)   -> draw_pred_curves
    utils/draw_cmp_orders_curves.py   GT vs simulators of several Markov orders            -> draw_pred_curves
    utils/draw_rescaled_pred_curves.py GT vs rescaled TracIn-CP predictions                -> draw_pred_curves
    utils/get_min_valid_loss.py       the best validation MSE of a training log (or history.json)
    test_tracincp.py                  TracIn-CP on held-out runs (or self-influence)       -> run_tracin
    rescale_tracincp.py               nothing to do here: run_tracin fits and applies the rescaling
"""

from __future__ import annotations

import re
from pathlib import Path

from . import parser


def draw_compare(argv, prog: str, labels: list[str], what: str):
    """draw_pred_curves with the released script's labels as defaults."""
    from .draw_pred_curves import build_parser, main
    p = build_parser()
    p.prog = prog
    p.description = f"{what}: true and predicted trajectories from pred_and_gt files (utils/draw_pred_curves.py)."
    args, _ = p.parse_known_args(argv)
    argv = list(argv or [])
    if args.labels is None and len(args.pred_files) == len(labels):
        argv += ["--labels", *labels]
    return main(argv)


def get_min_valid_loss(argv=None) -> dict:
    """The best validation MSE of a simulator training: from a run folder's history.json, or from a log
    (this repo's train.log lines "valid MSE x", or the released "valid mse loss x")."""
    from ..io import DataError, read_json
    p = parser("Minimum validation all-steps MSE of a simulator training (train.log, a training stdout log, or a run "
               "folder holding history.json).\n\n    python utils/get_min_valid_loss.py rte output/rte/<run>/train.log",
               "get_min_valid_loss.py")
    p.add_argument("task_name", nargs="?", default=None, help="a label printed with the result (released order)")
    p.add_argument("log_file_path", nargs="?", default=None, help="train.log / stdout log / run folder")
    p.add_argument("--task_name", dest="task_flag", default=None, help="the same as the first positional")
    p.add_argument("--log_file_path", dest="log_flag", default=None, help="the same as the second positional")
    args = p.parse_args(argv)
    path = Path(args.log_flag or args.log_file_path or "")
    if not str(path) or str(path) == ".":
        raise DataError("give the log file (or run folder) to read: get_min_valid_loss.py TASK LOG")
    if path.is_dir():
        vals = [r["valid_mse"] for r in read_json(path / "history.json") if r.get("valid_mse") is not None]
    elif path.is_file():
        pat = re.compile(r"valid (?:mse loss|MSE)[ :]+([-+0-9.eE]+|inf|nan)")
        vals = [float(m.group(1)) for line in path.read_text(errors="replace").splitlines()
                if (m := pat.search(line))]
    else:
        raise DataError(f"{path}: not found (expected a train.log, a training stdout log or a run folder)")
    if not vals:
        raise DataError(f"{path}: no validation MSE found (expected lines 'valid MSE <x>' or history.json)")
    best = min(range(len(vals)), key=lambda i: vals[i])
    out = {"task": args.task_flag or args.task_name, "validations": len(vals), "min_valid_mse": vals[best],
           "at_validation": best}
    print(f"task: {out['task']}\nvalidations: {len(vals)}\nminimum validation MSE: {vals[best]:.6g}\n"
          f"at validation {best} (0-based)")
    return out


def test_tracincp(argv=None, train_paths: dict | None = None, test_paths: dict | None = None):
    """The released test_tracincp.py flags mapped onto utils/run_tracin.py (TracIn-CP from the gradient features
    the run maker records); --step_ckpt_dir (GPT checkpoints) is not read here."""
    from ..datapaths import runs_exist, test_runs, train_runs
    from ..io import DataError
    from .run_tracin import main as run_tracin
    p = parser("TracIn-CP on held-out runs under the released test_tracincp.py flags (utils/run_tracin.py does the "
               "work; --self_influence ranks training examples by TracIn-CP self-influence).", "test_tracincp.py")
    a = p.add_argument
    a("--task", default="rte", help="key of train.py's (training runs) and test.py's (test runs) data paths dicts")
    a("--metric", default="loss", help="only loss (TracIn-CP predicts no BLEU / ROUGE)")
    a("--sim_name", default="tracincp_sim", help="released flag; tracincp_sim")
    a("--dataset_name", default=None, help="released flag (not needed: the runs carry the gradient features)")
    a("--save_dir", default=None, help="output folder")
    a("--test_example_start_id", default=None, help="first test id (inclusive)")
    a("--test_example_end_id", default=None, help="last test id (inclusive)")
    a("--test_example_nums", type=int, default=None, help="released flag (unused)")
    a("--train_example_nums", type=int, default=None, help="released flag (unused)")
    a("--hyper_parameter", type=float, default=None, help="released flag (unused)")
    a("--step_ckpt_dir", default=None, help="released flag: GPT checkpoints (not read here; see the error)")
    a("--ckpt_steps", default=None, help="released flag: k checkpoints -> --num_checkpoints")
    a("--self_influence", default=False, nargs="?", const=True, help="rank training examples by self-influence")
    a("--raw_root", default=None, help="where the raw runs (grads/, log.out) are")
    args = p.parse_args(argv)
    if args.step_ckpt_dir:
        raise DataError("--step_ckpt_dir: this repo computes TracIn-CP from gradient features recorded while the runs "
                        "are made (utils/make_runs.py --grad_features), not from saved GPT checkpoints; run "
                        "utils/run_tracin.py on such runs")
    if args.sim_name not in ("tracincp_sim", "tracin_cp"):
        raise ValueError(f"--sim_name {args.sim_name}: test_tracincp.py scores tracincp_sim; simulators: test.py")
    train = train_runs(train_paths or {}, args.task)[0]
    test = runs_exist(test_runs(test_paths or {}, args.task))
    k = str(len([s for s in str(args.ckpt_steps).split(",") if s.strip()])) if args.ckpt_steps else "all"
    argv2 = ["--method", "tracin_cp", "--num_checkpoints", k, "--task", args.task, "--metric", args.metric,
             "--train_run_dirs", *train, "--test_run_dirs", *test]
    for flag in ("save_dir", "test_example_start_id", "test_example_end_id", "raw_root"):
        if getattr(args, flag) is not None:
            argv2 += [f"--{flag}", str(getattr(args, flag))]
    if args.self_influence not in (False, "False", "false", "0"):
        from ..baselines import tracin_self_influence
        scores, steps = tracin_self_influence(test[0], None if k == "all" else int(k), args.raw_root)
        order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
        out = Path(args.save_dir or ".") / "sorted_self_influence.out"
        from ..io import write_jsonl
        write_jsonl(out, ({str(i): float(scores[i])} for i in order))
        print(f"self-influence of {len(order)} training examples (checkpoints {steps}): {out}")
        return out
    return run_tracin(argv2)


def rescale_tracincp(argv=None) -> int:
    """The released script rescales TracIn-CP predictions by one global factor; run_tracin.py already fits that
    rescaling on the training runs and writes the rescaled predictions."""
    from ..io import DataError
    p = parser("rescale_tracincp.py: nothing to rescale here (see the error message).", "rescale_tracincp.py")
    p.parse_args(argv)
    raise DataError("utils/run_tracin.py fits the global rescaling of TracIn-CP on the training runs and writes the "
                    "rescaled predictions (scale and offset in its metrics.json): run it instead")
