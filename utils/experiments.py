"""The paper's experiments, each one command that writes results/<experiment>/<preset>/table.md plus figures.

    python utils/experiments.py main        --preset quick --gpu 0   # Table 1/2: 5 methods x tasks, test loss
    python utils/experiments.py metrics     --preset quick           # Table 3/4: BLEU / ROUGE-L
    python utils/experiments.py unseen      --preset quick           # unseen training / test examples
    python utils/experiments.py order       --preset quick           # Markov order n
    python utils/experiments.py cp_interval --preset quick           # metrics recorded every k steps
    python utils/experiments.py model_size  --preset quick           # Pythia-architecture sizes tiny, small

Every stage calls the project's own entry points in this process (utils/prepare_tasks.py, utils/make_runs.py,
utils/construct_runs-data*.py, train.py, test.py, utils/run_tracin.py) and is skipped when its outputs exist,
so an interrupted call resumes. Runs, simulators and test scores live under --work_root (default
results/experiments_work) in folders named by their settings, so experiments with the same settings share them.
Outputs per experiment: table.md (cells "MSE (std) / MAE (std) / rho (std)", mean (std) over held-out runs),
bars.png (averages), trajectories.png (true vs each method for a few test examples), args.json, summary.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("experiments")

EXPERIMENTS = ("main", "metrics", "unseen", "order", "cp_interval", "model_size")
GEN_TASKS = ("webnlg", "wmt16_de_en")
PRESETS = {
    # a smoke test: each experiment in about 1-2 minutes on one CPU core
    "quick": dict(tasks="rte,webnlg", gen_tasks="webnlg", task="rte", model="tiny", models="tiny,small", runs=6,
                  test_runs=2, valid_num=1, shot=24, sample=20, epochs=3, bs=4, n_test=30, make_lr=1e-3,
                  max_epoch=15, patience=5, orders="1,2,3,5,10", intervals="1,2,5,10", timing_runs=2),
    # CPU-sized, meaningful: each experiment <= ~10 minutes on 2 CPU cores
    "default": dict(tasks="rte,sst2,webnlg", gen_tasks="webnlg,wmt16_de_en", task="rte", model="small",
                    models="tiny,small", runs=8, test_runs=2, valid_num=1, shot=64, sample=48, epochs=2, bs=4,
                    n_test=40, make_lr=1e-4, max_epoch=30, patience=6, orders="1,2,3,5,10",
                    intervals="1,2,5,10", timing_runs=2),
}
METHOD_LABEL = {"original": "Simfluence", "enc_sim": "GPTfluence", "norder_enc_sim": "GPTfluence"}
UNABLE = "cannot (unseen ids)"


# ----------------------------------------------------------------------------------------------- arguments
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=EXPERIMENTS, help="which experiment to run")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                   help="named sizes (quick: tiny model, minutes on one core; default: small model, CPU-sized); "
                        "any flag below overrides its value")
    p.add_argument("--gpu", type=str, default="0", help="GPU index; without a GPU the CPU is used (with a notice)")
    p.add_argument("--out_root", type=str, default="results", help="tables go to <out_root>/<experiment>/<preset>/")
    p.add_argument("--work_root", type=str, default=None,
                   help="shared runs / simulators / scores (default <out_root>/experiments_work)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    g = p.add_argument_group("tasks and runs (default: the preset's)")
    g.add_argument("--tasks", type=str, default=None, help="main: comma-separated tasks (columns of Table 1/2)")
    g.add_argument("--gen_tasks", type=str, default=None, help="metrics: comma-separated generation tasks")
    g.add_argument("--task", type=str, default=None, help="unseen / order / cp_interval / model_size: the task")
    g.add_argument("--model", type=str, default=None, help="run-making model: tiny, small, a folder or an HF name")
    g.add_argument("--models", type=str, default=None, help="model_size: comma-separated models")
    g.add_argument("--runs", type=int, default=None, help="runs per setting (training + validation + test)")
    g.add_argument("--test_runs", type=int, default=None, help="held-out test runs among --runs")
    g.add_argument("--valid_num", type=int, default=None, help="training runs held out for validation")
    g.add_argument("--shot", type=int, default=None, help="training pool size")
    g.add_argument("--sample", type=int, default=None,
                   help="training examples per run (unseen: at most shot/2; larger values are cut to shot/2)")
    g.add_argument("--epochs", type=int, default=None, help="epochs per run")
    g.add_argument("--bs", type=int, default=None, help="run batch size (steps per run = sample/bs*epochs)")
    g.add_argument("--n_test", type=int, default=None, help="test examples per task")
    g.add_argument("--make_lr", type=float, default=None, help="learning rate of the runs")
    g.add_argument("--data_seed", type=int, default=0, help="seed of the built-in task generators")
    g = p.add_argument_group("simulators (default: the preset's)")
    g.add_argument("--max_epoch", type=int, default=None, help="simulator training epochs at most")
    g.add_argument("--patience", type=int, default=None, help="early-stopping patience (validations)")
    g.add_argument("--sim_lr", type=float, default=1e-3, help="GPTfluence learning rate")
    g.add_argument("--proj", choices=["separate", "shared"], default="separate",
                   help="GPTfluence projections: separate train/test MLPs (the paper's f != g, train.py "
                        "--separate_proj; clearly better on our runs) or shared (f = g, the released default)")
    g.add_argument("--simfluence_lr", type=float, default=1e-2, help="Simfluence learning rate")
    g.add_argument("--train_bs", type=int, default=256, help="transitions per simulator minibatch")
    g.add_argument("--seed", type=int, default=42, help="simulator seed")
    g.add_argument("--order_sim", type=str, default="enc_sim",
                   help="order: simulator used for n > 1 (enc_sim dot-product form, or norder_enc_sim)")
    g.add_argument("--orders", type=str, default=None, help="order: comma-separated Markov orders n")
    g.add_argument("--intervals", type=str, default=None, help="cp_interval: comma-separated intervals k")
    g.add_argument("--timing_runs", type=int, default=None,
                   help="cp_interval: runs re-made with --record_interval max(k) to measure the time saved")
    g = p.add_argument_group("output")
    g.add_argument("--plot_examples", type=int, default=3, help="test examples in trajectories.png")
    g.add_argument("--progress", action="store_true", help="show the progress bars of the stages")
    args = p.parse_args(argv)
    for k, v in PRESETS[args.preset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.work_root is None:
        args.work_root = str(Path(args.out_root) / "experiments_work")
    return args


def pick_device(gpu: str) -> str:
    """'cuda:<gpu>' when a GPU is there, else 'cpu' with a notice."""
    import torch
    if torch.cuda.is_available():
        return f"cuda:{gpu}" if str(gpu).isdigit() else str(gpu)
    print(f"no GPU found (asked for GPU {gpu}): running on the CPU", file=sys.stderr)
    return "cpu"


def int_list(text: str) -> list[int]:
    return [int(x) for x in str(text).split(",") if x.strip()]


def str_list(text: str) -> list[str]:
    return [x.strip() for x in str(text).split(",") if x.strip()]


# ------------------------------------------------------------------------------------ calling the scripts
def script(rel: str):
    """Import an entry script (names may hold '-') once; importing it does no work."""
    from gptfluence.cli import load_script
    return load_script(rel)


def call(rel: str, argv: list) -> object:
    """Run script `rel`'s main(argv) in this process; a non-zero int return is an error."""
    argv = [str(a) for a in argv]
    log.info("python %s %s", rel, " ".join(argv))
    out = script(rel).main(argv)
    if isinstance(out, int) and not isinstance(out, bool) and out != 0:
        raise RuntimeError(f"{rel} exited with {out}")
    return out


# ------------------------------------------------------------------------------------------------- runs
def task_files(args, task: str) -> tuple[str, str]:
    """(training pool file, test file) of a built-in task, written by utils/prepare_tasks.py when missing."""
    from gptfluence.tasks import task_file_paths
    root = Path(args.work_root) / "data"
    tr, ev = task_file_paths(root, task, args.shot, args.n_test)
    if not (tr.exists() and ev.exists()):
        call("utils/prepare_tasks.py", ["--tasks", task, "--out_dir", root, "--n_train", args.shot,
                                        "--n_test", args.n_test, "--seed", args.data_seed])
    return str(tr), str(ev)


def run_key(args, task: str, model: str, extra: str = "") -> str:
    """Folder name of one set of runs: every setting that changes them."""
    return (f"{task}/{Path(model).name}_shot{args.shot}_sample{args.sample}_ep{args.epochs}_bs{args.bs}"
            f"_lr{args.make_lr:g}_nt{args.n_test}_ds{args.data_seed}{extra}")


def make_runs(args, task: str, model: str, seeds: list[int], extra_flags=(), extra_key: str = "") -> dict:
    """Make (resumably) and preprocess runs; returns {seed: processed run dir}."""
    key = run_key(args, task, model, extra_key)
    work = Path(args.work_root)
    raw, proc = work / "raw" / key, work / "runs" / key
    tr, ev = task_files(args, task)
    call("utils/make_runs.py", ["--task", task, "--train_data_path", tr, "--eval_data_path", ev, "--model", model,
                                "--seeds", ",".join(map(str, seeds)), "--shot", args.shot, "--sample", args.sample,
                                "--bs", args.bs, "--epochs", args.epochs, "--lr", f"{args.make_lr:g}",
                                "--output_dir", raw, "--device", args.device, "--threads", args.threads,
                                "--no_summary", *extra_flags, *progress(args)])
    pre = "utils/construct_runs-data-metric.py" if task in GEN_TASKS else "utils/construct_runs-data.py"
    call(pre, ["--raw_root", raw, "--output_root", proc, "--task", task, "--workers", 1, *progress(args)])
    dirs = {int(d.name.rsplit("_seed-", 1)[1]): str(d) for d in (proc / task).glob("*_seed-*")}
    missing = [s for s in seeds if s not in dirs]
    if missing:
        raise RuntimeError(f"processed runs missing for seeds {missing} under {proc / task}")
    return {s: dirs[s] for s in seeds}


def progress(args) -> list:
    return [] if args.progress else ["--no_progress"]


def split_runs(args, dirs: dict) -> tuple[list, list]:
    """(training + validation runs, held-out test runs): the last --test_runs seeds are held out."""
    seeds = sorted(dirs)
    n = len(seeds) - args.test_runs
    if n < args.valid_num + 1:
        raise ValueError(f"--runs {len(seeds)} leaves {n} training runs for --valid_num {args.valid_num}")
    return [dirs[s] for s in seeds[:n]], [dirs[s] for s in seeds[n:]]


# ------------------------------------------------------------------------------------- train and test
def sim_name_of(sim: str, metric: str, order: int = 1, cp: int = 1, ids: str = "all", n_train: int = 0,
                args=None) -> str:
    lr = args.simfluence_lr if sim == "original" else args.sim_lr
    proj = "_fg" if sim != "original" and args.proj == "separate" else ""
    return (f"{sim}{proj}_{metric}_n{order}_k{cp}_ids{ids}_tr{n_train}_me{args.max_epoch}_p{args.patience}"
            f"_vn{args.valid_num}_lr{lr:g}_s{args.seed}")


def train_sim(args, task: str, key: str, sim: str, metric: str, train_dirs: list, test_dirs: list,
              order: int = 1, cp: int = 1, ids: tuple | None = None, model: str = "") -> Path:
    """Train one simulator (skipped when it finished before); returns best-checkpoint.pt."""
    ids_txt = "all" if ids is None else f"{ids[0]}-{ids[1]}"
    name = sim_name_of(sim, metric, order, cp, ids_txt, len(train_dirs), args)
    out_root = Path(args.work_root) / "sims" / key
    run_dir = out_root / task / name
    ckpt = run_dir / "best-checkpoint.pt"
    if (run_dir / "history.json").exists() and ckpt.exists():
        return ckpt
    tr, ev = task_files(args, task)
    lr = args.simfluence_lr if sim == "original" else args.sim_lr
    argv = ["--sim_name", sim, "--task", task, "--metric", metric,
            "--data_paths_dict", json.dumps({task: {"train": train_dirs, "test": test_dirs}}),
            "--train_data_path", tr, "--eval_data_path", ev, "--valid_num", args.valid_num, "--lr", lr,
            "--train_bs", args.train_bs, "--max_epoch", args.max_epoch, "--patience", args.patience,
            "--warmup_steps", 100, "--seed", args.seed, "--order_n", order, "--cp_interval", cp,
            "--output_dir", out_root, "--run_name", name, "--device", args.device, "--resume", *progress(args)]
    if ids is not None:
        argv += ["--test_example_start_id", ids[0], "--test_example_end_id", ids[1]]
    if sim != "original" and args.proj == "separate":
        argv += ["--separate_proj"]
    if model:
        argv += ["--model_size", model]
    call("train.py", argv)
    return ckpt


def test_sim(args, ckpt: Path, save_dir: Path, test_dirs: list, ids: tuple | None = None) -> dict | str:
    """Score a checkpoint on held-out runs (skipped when scored before). Returns metrics.json's dict, or
    UNABLE when the simulator refuses ids it never saw (Simfluence)."""
    from gptfluence.io import DataError
    done, unable = save_dir / "metrics.json", save_dir / "unable.json"
    if done.exists():
        return json.loads(done.read_text())
    if unable.exists():
        return UNABLE
    argv = ["--checkpoint", ckpt, "--save_dir", save_dir, "--device", args.device, "--plot_examples", 0,
            "--test_run_dirs", *test_dirs, *progress(args)]
    if ids is not None:
        argv += ["--test_example_start_id", ids[0], "--test_example_end_id", ids[1]]
    try:
        return call("test.py", argv)
    except DataError as e:
        if "never saw" not in str(e) and "cannot simulate" not in str(e):
            raise
        log.info("refused as expected: %s", e)
        from gptfluence.io import write_json
        save_dir.mkdir(parents=True, exist_ok=True)
        write_json(unable, {"error": str(e)})
        return UNABLE


def sim_and_test(args, task, key, sim, metric, train_dirs, test_dirs, order=1, cp=1, ids=None, model=""):
    """train_sim + test_sim on the held-out runs; returns (metrics, save_dir)."""
    ckpt = train_sim(args, task, key, sim, metric, train_dirs, test_dirs, order, cp, ids, model)
    save_dir = Path(args.work_root) / "scores" / key / ckpt.parent.name / "heldout"
    return test_sim(args, ckpt, save_dir, test_dirs, ids), save_dir


# ------------------------------------------------------------------------------------------ tables
def fmt_cell(m) -> str:
    """'MSE (std) / MAE (std) / rho (std)', or the text of a refusal."""
    if isinstance(m, str):
        return m
    if m is None:
        return "-"
    return script("utils/make_tables.py").cell(m, True)


def grid_table(title: str, rows: list, cols: list, cells: dict, average: bool = False) -> str:
    """Markdown table: cells[(row, col)] is a metrics dict, a string, or missing; average = mean over cols."""
    mt = script("utils/make_tables.py")
    head = ["| | " + " | ".join(cols) + (" | average |" if average else " |"),
            "|---" * (len(cols) + 1 + average) + "|"]
    lines = [f"### {title}\n", *head]
    for r in rows:
        vals = [cells.get((r, c)) for c in cols]
        txt = [fmt_cell(v) for v in vals]
        if average:
            ok = [v for v in vals if isinstance(v, dict)]
            avg = mt.average(ok) if len(ok) == len(vals) else None
            txt.append(mt.cell(avg, False) if avg else "-")
        lines.append(f"| {r} | " + " | ".join(txt) + " |")
    return "\n".join(lines) + "\n"


def mse(m) -> float:
    return m["all_steps_mse_mean"] if isinstance(m, dict) else float("nan")


# ------------------------------------------------------------------------------------------ figures
def bar_chart(path: Path, groups: list, series: dict, ylabel: str, title: str) -> None:
    """Grouped bars: series = {label: [value per group]} (NaN = no bar, marked 'n/a')."""
    import matplotlib.pyplot as plt

    from gptfluence.plots import save_figure  # also selects the Agg backend
    n = max(len(series), 1)
    w = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(groups) * n * 0.6 + 2), 3.4))
    for i, (label, vals) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * w for g in range(len(groups))]
        ys = [0.0 if v is None or not math.isfinite(v) else v for v in vals]
        ax.bar(xs, ys, w, label=label)
        for x, v in zip(xs, vals):
            if v is None or not math.isfinite(v):
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def read_trajectories(save_dir: Path, metric: str) -> dict:
    """{(run, id): row} of test.py's / run_tracin.py's pred_and_gt_<metric>_trajectories.out."""
    from gptfluence.io import read_jsonl
    f = Path(save_dir) / f"pred_and_gt_{metric}_trajectories.out"
    return {(r["run"], r["id"]): r for r in read_jsonl(f)} if f.exists() else {}


def trajectory_figure(path: Path, methods: dict, metric: str, k: int, title: str = "") -> None:
    """True vs each method's predicted trajectory for the first k test examples of the first held-out run.

    methods: {label: save_dir holding pred_and_gt_<metric>_trajectories.out}; each curve keeps its own steps.
    """
    import matplotlib.pyplot as plt

    from gptfluence.plots import save_figure  # also selects the Agg backend
    trajs = {lab: read_trajectories(d, metric) for lab, d in methods.items()}
    trajs = {lab: t for lab, t in trajs.items() if t}
    if not trajs or k <= 0:
        return
    keys = sorted(next(iter(trajs.values())))[:k]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.1), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        gt_drawn = False
        for lab, t in trajs.items():
            row = t.get(key)
            if row is None:
                continue
            if not gt_drawn:
                gt = [float("nan") if v is None else v for v in row["gt"]]
                ax.plot(row["steps"], gt, color="black", lw=1.8, label="true")
                gt_drawn = True
            ax.plot(row["steps"], row["pred"], lw=1.2, ls="--", marker=".", ms=3, label=lab)
        ax.set_title(f"{title} run {key[0].rsplit('_', 1)[-1]}, test id {key[1]}", fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.legend(fontsize=6)
    save_figure(fig, path)


def write_outputs(args, out: Path, text: str, summary: dict) -> None:
    from gptfluence.io import atomic_open, write_json
    with atomic_open(out / "table.md") as f:
        f.write(text)
    write_json(out / "summary.json", summary)
    print(text)
    print(f"table: {out / 'table.md'}")


# --------------------------------------------------------------------------------------- experiments
def exp_main(args, out: Path) -> tuple[str, dict]:
    """Table 1/2: TracIn-CP(10), TracIn-CP(all), Grad-Dot, Simfluence, GPTfluence x tasks, test loss."""
    mt = script("utils/make_tables.py")
    seeds = list(range(1, args.runs + 1))
    files, traj = [], {}
    for task in str_list(args.tasks):
        dirs = make_runs(args, task, args.model, seeds, ["--grad_features", "--grad_steps", "all"], "_grads-all")
        tr, te = split_runs(args, dirs)
        key = run_key(args, task, args.model, "_grads-all")
        for sim in ("original", "enc_sim"):
            m, d = sim_and_test(args, task, key, sim, "loss", tr, te)
            files.append(d / "metrics.json")
            traj.setdefault(task, {})[METHOD_LABEL[sim]] = d
        raw = Path(args.work_root) / "raw" / key
        for method, k, label in (("tracin_cp", "10", "TracIn-CP(10)"), ("tracin_cp", "all", "TracIn-CP(all)"),
                                 ("grad_dot", "10", "Grad-Dot")):
            d = Path(args.work_root) / "scores" / key / f"{method}{k if method == 'tracin_cp' else ''}"
            if not (d / "metrics.json").exists():
                call("utils/run_tracin.py", ["--method", method, "--num_checkpoints", k, "--task", task,
                                             "--train_run_dirs", *tr, "--test_run_dirs", *te, "--raw_root", raw,
                                             "--save_dir", d, *progress(args)])
            files.append(d / "metrics.json")
            traj[task][label] = d
    text = mt.build_tables(files, ["loss"], stds=True)
    first = str_list(args.tasks)[0]
    trajectory_figure(out / "trajectories.png", traj[first], "loss", args.plot_examples, first)
    ms = [json.loads(Path(f).read_text()) for f in files]
    labels = sorted({mt.method_label(m, Path(f), "method") for m, f in zip(ms, files)},
                    key=lambda r: mt.METHOD_ORDER.index(r) if r in mt.METHOD_ORDER else 99)
    tasks = str_list(args.tasks)
    series = {lab: [next(mse(m) for m, f in zip(ms, files) if mt.method_label(m, Path(f), "method") == lab
                         and m["task"] == t) for t in tasks] for lab in labels}
    bar_chart(out / "bars.png", tasks, series, "all-steps MSE (test loss)", "Table 1/2: MSE per task")
    return text, {"files": [str(f) for f in files]}


def exp_metrics(args, out: Path) -> tuple[str, dict]:
    """Table 3/4: BLEU and ROUGE-L, Simfluence vs GPTfluence on the generation tasks."""
    mt = script("utils/make_tables.py")
    seeds = list(range(1, args.runs + 1))
    files, traj, series = [], {}, {}
    tasks = str_list(args.gen_tasks)
    for task in tasks:
        dirs = make_runs(args, task, args.model, seeds)
        tr, te = split_runs(args, dirs)
        key = run_key(args, task, args.model)
        for metric in ("bleu", "rougeL"):
            for sim in ("original", "enc_sim"):
                m, d = sim_and_test(args, task, key, sim, metric, tr, te)
                files.append(d / "metrics.json")
                traj.setdefault((task, metric), {})[METHOD_LABEL[sim]] = d
                series.setdefault(f"{METHOD_LABEL[sim]} {metric}", []).append(mse(m))
    text = mt.build_tables(files, ["bleu", "rougeL"], stds=True)
    trajectory_figure(out / "trajectories.png", traj[(tasks[0], "bleu")], "bleu", args.plot_examples, tasks[0])
    bar_chart(out / "bars.png", tasks, series, "all-steps MSE", "Table 3/4: BLEU / ROUGE-L MSE per task")
    return text, {"files": [str(f) for f in files]}


def exp_unseen(args, out: Path) -> tuple[str, dict]:
    """Pool and test set split in halves; the simulators see pool half A and test half A only."""
    task, half = args.task, args.shot // 2
    if args.sample > half:
        log.warning("unseen: --sample %d > --shot/2: runs sample %d examples (a whole half)", args.sample, half)
        args.sample = half
    nt = args.n_test // 2
    ids_a, ids_b = (0, nt - 1), (nt, args.n_test - 1)
    dirs_a = make_runs(args, task, args.model, list(range(1, args.runs + 1)),
                       ["--pool_ids", f"0-{half - 1}"], "_poolA")
    dirs_b = make_runs(args, task, args.model, list(range(args.runs + 1, args.runs + 1 + args.test_runs)),
                       ["--pool_ids", f"{half}-{args.shot - 1}"], "_poolB")
    tr, te_a = split_runs(args, dirs_a)
    te_b = [dirs_b[s] for s in sorted(dirs_b)]
    key = run_key(args, task, args.model, "_poolA")
    conds = {"seen (train A, test A)": (te_a, ids_a), "unseen training examples (B, A)": (te_b, ids_a),
             "unseen test examples (A, B)": (te_a, ids_b), "both unseen (B, B)": (te_b, ids_b)}
    cells, traj = {}, {}
    for sim in ("original", "enc_sim"):
        ckpt = train_sim(args, task, key, sim, "loss", tr, te_a, ids=ids_a)
        for ci, (cond, (dirs, ids)) in enumerate(conds.items()):
            d = Path(args.work_root) / "scores" / key / ckpt.parent.name / f"cond{ci}"
            cells[(METHOD_LABEL[sim], cond)] = test_sim(args, ckpt, d, dirs, ids)
            if ci == 3:
                traj[METHOD_LABEL[sim]] = d
    rows, cols = ["Simfluence", "GPTfluence"], list(conds)
    text = grid_table(f"unseen data, {task} test loss: MSE / MAE / final-step rho, mean (std) over "
                      f"{args.test_runs} held-out runs; pool ids A = 0-{half - 1}, B = {half}-{args.shot - 1}; "
                      f"test ids A = {ids_a[0]}-{ids_a[1]}, B = {ids_b[0]}-{ids_b[1]}", rows, cols, cells)
    bar_chart(out / "bars.png", [c.split(" (")[0] for c in cols],
              {r: [mse(cells[(r, c)]) for c in cols] for r in rows}, "all-steps MSE (test loss)",
              f"unseen data ({task}); n/a = cannot simulate unseen ids")
    trajectory_figure(out / "trajectories.png", traj, "loss", args.plot_examples, "both unseen")
    return text, {"cells": {f"{r} | {c}": cells[(r, c)] for r in rows for c in cols}}


def exp_order(args, out: Path) -> tuple[str, dict]:
    """GPTfluence with Markov order n in --orders (Simfluence, n = 1, as reference)."""
    task = args.task
    dirs = make_runs(args, task, args.model, list(range(1, args.runs + 1)))
    tr, te = split_runs(args, dirs)
    key = run_key(args, task, args.model)
    cells, traj, rows = {}, {}, []
    m, d = sim_and_test(args, task, key, "original", "loss", tr, te)
    cells[("Simfluence (n=1)", task)] = m
    rows.append("Simfluence (n=1)")
    for n in int_list(args.orders):
        sim = args.order_sim if n > 1 else "enc_sim"
        m, d = sim_and_test(args, task, key, sim, "loss", tr, te, order=n)
        row = f"GPTfluence (n={n})"
        cells[(row, task)] = m
        rows.append(row)
        traj[f"n={n}"] = d
    text = grid_table(f"Markov order n, {task} test loss: MSE / MAE / final-step rho, mean (std) over "
                      f"{args.test_runs} held-out runs", rows, [task], cells)
    bar_chart(out / "bars.png", [r.replace(" (", "\n(") for r in rows], {"MSE": [mse(cells[(r, task)]) for r in rows]},
              "all-steps MSE (test loss)", f"Markov order ({task})")
    trajectory_figure(out / "trajectories.png", traj, "loss", args.plot_examples, task)
    return text, {"cells": {r: cells[(r, task)] for r in rows}}


def measure_scoring_share(args, task: str, dirs_1: dict, k: int) -> dict:
    """Share of a run's time spent scoring, from runs made twice: recording every step and every k steps.

    seconds per run come from run_done.json; share = (t1 - tk) / (t1 * (1 - 1/k)), i.e. the time the
    dropped scorings took, per dropped share of recorded steps, relative to t1 (clipped to [0, 1]).
    """
    seeds = sorted(dirs_1)[:args.timing_runs]
    make_runs(args, task, args.model, seeds, ["--record_interval", k], f"_rec{k}")
    raw = Path(args.work_root) / "raw"

    def seconds(key, s):
        d = next((raw / key).glob(f"*_seed-{s}"))
        return float(json.loads((d / "run_done.json").read_text())["seconds"])
    t1 = sum(seconds(run_key(args, task, args.model), s) for s in seeds)
    tk = sum(seconds(run_key(args, task, args.model, f"_rec{k}"), s) for s in seeds)
    share = min(max((t1 - tk) / (t1 * (1 - 1 / k)), 0.0), 1.0) if t1 > 0 else 0.0
    return {"runs": len(seeds), "seconds_every_step": t1, "seconds_every_k": tk, "k": k,
            "measured_saved_at_k": (t1 - tk) / t1 if t1 > 0 else 0.0, "scoring_share": share}


def exp_cp_interval(args, out: Path) -> tuple[str, dict]:
    """Simulators trained (and scored) on the metrics of every k-th step, with the run-making time saved."""
    task = args.task
    dirs = make_runs(args, task, args.model, list(range(1, args.runs + 1)))
    tr, te = split_runs(args, dirs)
    key = run_key(args, task, args.model)
    ks = int_list(args.intervals)
    timing = measure_scoring_share(args, task, dirs, max(ks)) if max(ks) > 1 else {"scoring_share": 0.0}
    cells, traj, rows = {}, {}, []
    for sim in ("original", "enc_sim"):
        for k in ks:
            m, d = sim_and_test(args, task, key, sim, "loss", tr, te, cp=k)
            row = f"{METHOD_LABEL[sim]} k={k}"
            rows.append(row)
            cells[(row, task)] = m
            if sim == "enc_sim":
                traj[f"GPTfluence k={k}"] = d
    lines = [f"### checkpoint interval k, {task} test loss (scored on the steps kept): MSE / MAE / final-step rho, "
             f"mean (std) over {args.test_runs} held-out runs\n",
             f"| | {task} | recorded steps kept | run-making time saved |", "|---|---|---|---|"]
    for row in rows:
        k = int(row.rsplit("=", 1)[1])
        lines.append(f"| {row} | {fmt_cell(cells[(row, task)])} | {1 / k:.0%} | "
                     f"{(1 - 1 / k) * timing['scoring_share']:.1%} |")
    lines.append("")
    lines.append(f"Time saved = (1 - 1/k) x scoring share of a run's time; the scoring share "
                 f"{timing['scoring_share']:.1%} was measured from run_done.json seconds of "
                 f"{timing.get('runs', 0)} runs made twice (recording every step: "
                 f"{timing.get('seconds_every_step', 0):.2f} s; every {timing.get('k', 1)} steps: "
                 f"{timing.get('seconds_every_k', 0):.2f} s; measured saving at that k "
                 f"{timing.get('measured_saved_at_k', 0):.1%}).")
    text = "\n".join(lines) + "\n"
    bar_chart(out / "bars.png", [f"k={k}" for k in ks],
              {lab: [mse(cells[(f"{lab} k={k}", task)]) for k in ks] for lab in ("Simfluence", "GPTfluence")},
              "all-steps MSE (test loss)", f"checkpoint interval ({task})")
    trajectory_figure(out / "trajectories.png", traj, "loss", args.plot_examples, task)
    return text, {"timing": timing, "cells": {r: cells[(r, task)] for r in rows}}


def exp_model_size(args, out: Path) -> tuple[str, dict]:
    """GPTfluence vs Simfluence on runs made by each Pythia-architecture model size."""
    task, models = args.task, str_list(args.models)
    cells, traj = {}, {}
    for model in models:
        dirs = make_runs(args, task, model, list(range(1, args.runs + 1)))
        tr, te = split_runs(args, dirs)
        key = run_key(args, task, model)
        for sim in ("original", "enc_sim"):
            m, d = sim_and_test(args, task, key, sim, "loss", tr, te, model=model)
            cells[(METHOD_LABEL[sim], model)] = m
            traj[f"{METHOD_LABEL[sim]} ({model})"] = d if model == models[-1] else None
    rows = ["Simfluence", "GPTfluence"]
    text = grid_table(f"model size, {task} test loss: MSE / MAE / final-step rho, mean (std) over "
                      f"{args.test_runs} held-out runs", rows, models, cells)
    bar_chart(out / "bars.png", models, {r: [mse(cells[(r, m)]) for m in models] for r in rows},
              "all-steps MSE (test loss)", f"model size ({task})")
    trajectory_figure(out / "trajectories.png", {k: v for k, v in traj.items() if v}, "loss", args.plot_examples,
                      models[-1])
    return text, {"cells": {f"{r} | {m}": cells[(r, m)] for r in rows for m in models}}


RUNNERS = {"main": exp_main, "metrics": exp_metrics, "unseen": exp_unseen, "order": exp_order,
           "cp_interval": exp_cp_interval, "model_size": exp_model_size}


def main(argv=None) -> str:
    args = parse_args(argv)
    import torch
    from gptfluence.io import write_json
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    args.device = pick_device(args.gpu)
    out = Path(args.out_root) / args.experiment / args.preset
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "args.json", vars(args))
    t0 = time.time()
    text, summary = RUNNERS[args.experiment](args, out)
    summary.update(experiment=args.experiment, preset=args.preset, device=args.device,
                   seconds=round(time.time() - t0, 1))
    text += f"\n_{args.experiment}, preset {args.preset}, device {args.device}: {summary['seconds']} s " \
            f"(stages found done were skipped)._\n"
    write_outputs(args, out, text, summary)
    return text


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
