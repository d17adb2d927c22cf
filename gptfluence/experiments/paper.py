"""The paper's experiments, one function each, on runs the repo makes itself (built-in tasks, local GPT):

    main         Table 1/2: TracIn-CP(10), TracIn-CP(all), Grad-Dot, Simfluence, GPTfluence x tasks, test loss
    metrics      Table 3/4: BLEU and ROUGE-L on the generation tasks
    unseen       unseen training / test examples (pool and test set split in halves)
    order        Markov order n
    cp_interval  metrics recorded every k steps, and the run-making time that saves
    model_size   runs made by GPTs of different sizes

Every table carries the honest baselines (no change, mean trajectory) beside the simulators; trained methods
appear as mean (std) over the simulator seeds. Each function returns (markdown text, summary dict) and
writes its figures into `out`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..io import read_json
from ..plots import plot_bars, plot_trajectories
from ..tables import grid_table, load_metrics, method_tables
from .common import ANCHOR, BASELINES, GPTFLUENCE, METHODS, SIMFLUENCE, UNABLE, Workspace, method_seeds, split_runs

log = logging.getLogger("gptfluence.experiments")

GEN_TASKS = ("webnlg", "wmt16_de_en")
PRESETS = {
    # a smoke test: each experiment in about a minute or two on one CPU core
    "quick": dict(tasks="rte,webnlg", gen_tasks="webnlg", task="rte", model="tiny", models="tiny,small", runs=6,
                  test_runs=2, valid_num=1, shot=24, sample=20, epochs=3, bs=4, n_test=30, make_lr=1e-3,
                  seeds="42", orders="1,2,3,5,10", intervals="1,2,5,10", timing_runs=2),
    # CPU-sized, meaningful
    "default": dict(tasks="rte,sst2,webnlg", gen_tasks="webnlg,wmt16_de_en", task="rte", model="small",
                    models="tiny,small", runs=8, test_runs=2, valid_num=1, shot=64, sample=48, epochs=4, bs=4,
                    n_test=40, make_lr=1e-3, seeds="42,43,44", orders="1,2,3,5,10", intervals="1,2,5,10",
                    timing_runs=2),
}
EXPERIMENTS = ("main", "metrics", "unseen", "order", "cp_interval", "model_size")


def int_list(text: str) -> list[int]:
    return [int(x) for x in str(text).split(",") if x.strip()]


def str_list(text: str) -> list[str]:
    return [x.strip() for x in str(text).split(",") if x.strip()]


# ------------------------------------------------------------------------------------------------- runs
def run_key(args, task: str, model: str, extra: str = "") -> str:
    """Folder name of one set of runs: every setting that changes them."""
    return (f"{task}/{Path(model).name}_shot{args.shot}_sample{args.sample}_ep{args.epochs}_bs{args.bs}"
            f"_lr{args.make_lr:g}_nt{args.n_test}_ds{args.data_seed}{extra}")


def make_task_runs(ws: Workspace, args, task: str, model: str, seeds: list[int], extra_key: str = "", **opts):
    """Runs of a built-in task ({seed: processed dir}), the sample files and the work key."""
    from ..pipeline import RunSpec
    files = ws.task_files(task, args.shot, args.n_test, args.data_seed)
    spec = RunSpec(task=task, seeds=seeds, train_file=files[0], eval_file=files[1], model=model, shot=args.shot,
                   sample=args.sample, bs=args.bs, epochs=args.epochs, lr=args.make_lr, **opts)
    key = run_key(args, task, model, extra_key)
    return ws.runs(key, spec), files, key


def score_methods(ws, args, key, task, metric, methods, train, test, files, ids=None, **opts) -> dict:
    """{method label: [metrics per seed] or UNABLE}."""
    seeds = int_list(args.seeds)
    ws.train_methods(key, methods, task, metric, train, files, seeds, args.valid_num, heldout=test, test_ids=ids,
                     **opts)
    return {m.label: ws.method_scores(key, m, task, metric, train, test, files, seeds, args.valid_num, ids, **opts)
            for m in methods}


def _mse(cell) -> float:
    if isinstance(cell, str) or not cell:
        return float("nan")
    vals = [m["all_steps_mse_mean"] for m in cell if m.get("all_steps_mse_mean") is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def _files(cells: dict) -> list[str]:
    return [m["save_dir"] + "/metrics.json" for c in cells.values() if isinstance(c, list) for m in c]


def trajectory_figure(path: Path, save_dirs: dict, metric: str, k: int, title: str = "") -> None:
    """True vs each method's predicted trajectory for the first k test examples of the first held-out run."""
    from ..cli.draw_pred_curves import comparison_curves
    files = {lab: Path(d) / f"pred_and_gt_{metric}_trajectories.out" for lab, d in save_dirs.items()}
    files = {lab: f for lab, f in files.items() if f.is_file()}
    if not files or k <= 0:
        return
    curves, run = comparison_curves(list(files.values()), list(files), k=k)
    for c in curves:
        c["title"] = f"{title} {c['title']}"
    plot_trajectories(path, curves[0]["steps"], curves, metric)


def _first_dirs(cells: dict) -> dict:
    return {lab: c[0]["save_dir"] for lab, c in cells.items() if isinstance(c, list) and c}


# ------------------------------------------------------------------------------------------ experiments
def exp_main(ws: Workspace, args, out: Path):
    """Table 1/2: the honest baselines, TracIn-CP(10), TracIn-CP(all), Grad-Dot, Simfluence, GPTfluence; test loss."""
    seeds = list(range(1, args.runs + 1))
    files, traj = [], {}
    tasks = str_list(args.tasks)
    for task in tasks:
        dirs, sample_files, key = make_task_runs(ws, args, task, args.model, seeds, "_grads-all",
                                                 grad_features=True, grad_steps="all")
        tr, te = split_runs(dirs, args.test_runs, args.valid_num)
        cells = score_methods(ws, args, key, task, "loss", METHODS, tr, te, sample_files)
        files += _files(cells)
        traj.setdefault(task, _first_dirs(cells))
        for method, k in (("tracin_cp", 10), ("tracin_cp", None), ("grad_dot", None)):
            m = ws.baseline_scores(key, method, k, task, tr, te, ws.root / "raw" / key)
            files.append(m["save_dir"] + "/metrics.json")
            traj[task][m["sim_name"]] = m["save_dir"]
    frame = load_metrics(files)
    text = method_tables(frame)
    trajectory_figure(out / "trajectories.png", traj[tasks[0]], "loss", args.plot_examples, tasks[0])
    means = frame.groupby(["method", "task"])["mse"].mean()
    series = {lab: [float(means.get((lab, t), float("nan"))) for t in tasks] for lab in frame["method"].unique()}
    plot_bars(out / "bars.png", tasks, series, "all-steps MSE (test loss)", "Table 1/2: MSE per task")
    return text, {"files": files}


def exp_metrics(ws: Workspace, args, out: Path):
    """Table 3/4: BLEU and ROUGE-L on the generation tasks."""
    seeds = list(range(1, args.runs + 1))
    files, traj, tasks = [], {}, str_list(args.gen_tasks)
    methods = (*BASELINES, SIMFLUENCE, GPTFLUENCE, ANCHOR)
    for task in tasks:
        dirs, sample_files, key = make_task_runs(ws, args, task, args.model, seeds)
        tr, te = split_runs(dirs, args.test_runs, args.valid_num)
        for metric in ("bleu", "rougeL"):
            cells = score_methods(ws, args, key, task, metric, methods, tr, te, sample_files)
            files += _files(cells)
            traj.setdefault((task, metric), _first_dirs(cells))
    frame = load_metrics(files)
    text = method_tables(frame)
    trajectory_figure(out / "trajectories.png", traj[(tasks[0], "bleu")], "bleu", args.plot_examples, tasks[0])
    means = frame.groupby(["method", "metric", "task"])["mse"].mean()
    series = {f"{lab} {metric}": [float(means.get((lab, metric, t), float("nan"))) for t in tasks]
              for lab in frame["method"].unique() for metric in ("bleu", "rougeL")}
    plot_bars(out / "bars.png", tasks, series, "all-steps MSE", "Table 3/4: BLEU / ROUGE-L MSE per task")
    return text, {"files": files}


def exp_unseen(ws: Workspace, args, out: Path):
    """Pool and test set split in halves; the simulators see pool half A and test half A only."""
    task, half = args.task, args.shot // 2
    if args.sample > half:
        log.warning("unseen: --sample %d > --shot/2: runs sample %d examples (a whole half)", args.sample, half)
        args.sample = half
    nt = args.n_test // 2
    ids_a, ids_b = list(range(0, nt)), list(range(nt, args.n_test))
    dirs_a, sample_files, key = make_task_runs(ws, args, task, args.model, list(range(1, args.runs + 1)), "_poolA",
                                               pool_ids=list(range(half)))
    dirs_b, _, _ = make_task_runs(ws, args, task, args.model,
                                  list(range(args.runs + 1, args.runs + 1 + args.test_runs)), "_poolB",
                                  pool_ids=list(range(half, args.shot)))
    tr, te_a = split_runs(dirs_a, args.test_runs, args.valid_num)
    te_b = [dirs_b[s] for s in sorted(dirs_b)]
    conds = {"seen (train A, test A)": (te_a, ids_a), "unseen training examples (B, A)": (te_b, ids_a),
             "unseen test examples (A, B)": (te_a, ids_b), "both unseen (B, B)": (te_b, ids_b)}
    cells, traj = {}, {}
    ws.train_methods(key, METHODS, task, "loss", tr, sample_files, int_list(args.seeds), args.valid_num,
                     test_ids=ids_a)
    for method in METHODS:
        for seed in method_seeds(method, int_list(args.seeds)):
            ckpt = ws.simulator(key, method, task, "loss", tr, sample_files, seed, args.valid_num, test_ids=ids_a)
            for ci, (cond, (dirs, ids)) in enumerate(conds.items()):
                m = ws.score(ckpt, ckpt / f"cond{ci}", dirs, ids)
                if isinstance(m, str) or cells.get((method.label, cond)) == UNABLE:
                    cells[(method.label, cond)] = UNABLE
                    continue
                cells.setdefault((method.label, cond), []).append(m)
                if ci == 3:
                    traj.setdefault(method.label, m["save_dir"])
    rows, cols = [m.label for m in METHODS], list(conds)
    text = grid_table(f"unseen data, {task} test loss: MSE / MAE / final-step rho, mean (std) over simulator seeds; "
                      f"pool ids A = 0-{half - 1}, B = {half}-{args.shot - 1}; test ids A = 0-{nt - 1}, "
                      f"B = {nt}-{args.n_test - 1}", rows, cols, cells)
    plot_bars(out / "bars.png", [c.split(" (")[0] for c in cols], {r: [_mse(cells.get((r, c))) for c in cols]
                                                                  for r in rows},
              "all-steps MSE (test loss)", f"unseen data ({task}); n/a = cannot simulate unseen ids")
    trajectory_figure(out / "trajectories.png", traj, "loss", args.plot_examples, "both unseen")
    return text, {"cells": {f"{r} | {c}": cells.get((r, c)) for r in rows for c in cols}}


def exp_order(ws: Workspace, args, out: Path):
    """GPTfluence with Markov order n (the baselines and Simfluence, n = 1, as reference)."""
    task = args.task
    dirs, sample_files, key = make_task_runs(ws, args, task, args.model, list(range(1, args.runs + 1)))
    tr, te = split_runs(dirs, args.test_runs, args.valid_num)
    cells = {}
    for method in (*BASELINES, SIMFLUENCE, ANCHOR):
        label = method.label + (" (n=1)" if method is SIMFLUENCE else "")
        cells[(label, task)] = score_methods(ws, args, key, task, "loss", [method], tr, te, sample_files)[method.label]
    traj = {}
    for n in int_list(args.orders):
        from dataclasses import replace
        method = replace(GPTFLUENCE, sim_name=args.order_sim if n > 1 else "enc_sim")
        c = score_methods(ws, args, key, task, "loss", [method], tr, te, sample_files, order=n)[method.label]
        cells[(f"GPTfluence (n={n})", task)] = c
        if isinstance(c, list):
            traj[f"n={n}"] = c[0]["save_dir"]
    rows = [r for r, _ in cells]
    text = grid_table(f"Markov order n, {task} test loss: MSE / MAE / final-step rho, mean (std) over simulator seeds",
                      rows, [task], cells)
    plot_bars(out / "bars.png", [r.replace(" (", "\n(") for r in rows], {"MSE": [_mse(cells[(r, task)]) for r in rows]},
              "all-steps MSE (test loss)", f"Markov order ({task})")
    trajectory_figure(out / "trajectories.png", traj, "loss", args.plot_examples, task)
    return text, {"cells": {r: cells[(r, task)] for r in rows}}


def measure_scoring_share(ws: Workspace, args, task: str, k: int) -> dict:
    """Share of a run's time spent scoring, from runs made twice: recording every step and every k steps.

    seconds per run come from run_done.json; share = (t1 - tk) / (t1 * (1 - 1/k)), i.e. the time the dropped
    scorings took, per dropped share of recorded steps, relative to t1 (clipped to [0, 1]).
    """
    seeds = list(range(1, args.timing_runs + 1))
    make_task_runs(ws, args, task, args.model, seeds, f"_rec{k}", record_interval=k)

    def seconds(key, s):
        d = next((ws.root / "raw" / key).glob(f"*_seed-{s}"))
        return float(read_json(d / "run_done.json")["seconds"])
    t1 = sum(seconds(run_key(args, task, args.model), s) for s in seeds)
    tk = sum(seconds(run_key(args, task, args.model, f"_rec{k}"), s) for s in seeds)
    share = min(max((t1 - tk) / (t1 * (1 - 1 / k)), 0.0), 1.0) if t1 > 0 else 0.0
    return {"runs": len(seeds), "seconds_every_step": t1, "seconds_every_k": tk, "k": k,
            "measured_saved_at_k": (t1 - tk) / t1 if t1 > 0 else 0.0, "scoring_share": share}


def exp_cp_interval(ws: Workspace, args, out: Path):
    """Simulators trained (and scored) on the metrics of every k-th step, with the run-making time saved."""
    task = args.task
    dirs, sample_files, key = make_task_runs(ws, args, task, args.model, list(range(1, args.runs + 1)))
    tr, te = split_runs(dirs, args.test_runs, args.valid_num)
    ks = int_list(args.intervals)
    timing = measure_scoring_share(ws, args, task, max(ks)) if max(ks) > 1 else {"scoring_share": 0.0}
    cells, traj, rows = {}, {}, []
    for method in METHODS:
        for k in ks:
            c = score_methods(ws, args, key, task, "loss", [method], tr, te, sample_files, cp_interval=k)[method.label]
            row = f"{method.label} k={k}"
            rows.append(row)
            cells[(row, task)] = c
            if method is GPTFLUENCE and isinstance(c, list):
                traj[f"GPTfluence k={k}"] = c[0]["save_dir"]
    text = grid_table(f"checkpoint interval k, {task} test loss (scored on the steps kept): MSE / MAE / final-step "
                      "rho, mean (std) over simulator seeds", rows, [task], cells)
    saved = "\n".join(f"- k={k}: {1 / k:.0%} of the steps recorded, {(1 - 1 / k) * timing['scoring_share']:.1%} of "
                      "the run-making time saved" for k in ks)
    text += (f"\n{saved}\n\nTime saved = (1 - 1/k) x the scoring share of a run's time; the share "
             f"{timing['scoring_share']:.1%} was measured from run_done.json seconds of {timing.get('runs', 0)} runs "
             f"made twice (every step: {timing.get('seconds_every_step', 0):.2f} s; every {timing.get('k', 1)} steps: "
             f"{timing.get('seconds_every_k', 0):.2f} s).\n")
    plot_bars(out / "bars.png", [f"k={k}" for k in ks],
              {m.label: [_mse(cells[(f"{m.label} k={k}", task)]) for k in ks] for m in METHODS},
              "all-steps MSE (test loss)", f"checkpoint interval ({task})")
    trajectory_figure(out / "trajectories.png", traj, "loss", args.plot_examples, task)
    return text, {"timing": timing, "cells": {r: cells[(r, task)] for r in rows}}


def exp_model_size(ws: Workspace, args, out: Path):
    """The methods on runs made by each GPT size."""
    task, models = args.task, str_list(args.models)
    cells, traj = {}, {}
    for model in models:
        dirs, sample_files, key = make_task_runs(ws, args, task, model, list(range(1, args.runs + 1)))
        tr, te = split_runs(dirs, args.test_runs, args.valid_num)
        got = score_methods(ws, args, key, task, "loss", METHODS, tr, te, sample_files, model_size=model)
        for label, c in got.items():
            cells[(label, model)] = c
            if model == models[-1] and isinstance(c, list):
                traj[label] = c[0]["save_dir"]
    rows = [m.label for m in METHODS]
    text = grid_table(f"model size, {task} test loss: MSE / MAE / final-step rho, mean (std) over simulator seeds",
                      rows, models, cells)
    plot_bars(out / "bars.png", models, {r: [_mse(cells.get((r, m))) for m in models] for r in rows},
              "all-steps MSE (test loss)", f"model size ({task})")
    trajectory_figure(out / "trajectories.png", traj, "loss", args.plot_examples, models[-1])
    return text, {"cells": {f"{r} | {m}": cells.get((r, m)) for r in rows for m in models}}


RUNNERS = {"main": exp_main, "metrics": exp_metrics, "unseen": exp_unseen, "order": exp_order,
           "cp_interval": exp_cp_interval, "model_size": exp_model_size}
__all__ = ["EXPERIMENTS", "PRESETS", "RUNNERS", "UNABLE"]
