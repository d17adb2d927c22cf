"""Ground-truth check of influence: re-make a run without each method's top examples and compare.

    python utils/influence_check.py --preset quick            # tiny model, ~2 minutes on 1 CPU core
    python utils/influence_check.py --preset default --gpu 0  # small model, ~10-15 minutes on 1 CPU core

Pipeline (every stage is skipped when its outputs exist, so an interrupted call resumes):
  1. runs: utils/make_runs.py on the built-in task (seeds 1..R, gradient features for TracIn-CP);
  2. preprocess (utils/construct_runs-data.py); 3. train Simfluence (original) and GPTfluence (enc_sim)
     with train.py on runs 1..R-1; run R is held out;
  4. on the held-out run, for a few test examples z, each method names its top-k HELPFUL and top-k
     HARMFUL training examples (GPTfluence / Simfluence: counterfactual removal rolled out by the
     simulator; TracIn-CP: sum over the run's steps of lr_u <g_i, g_z> at the nearest recorded checkpoint);
     plus a few random k-sets as controls;
  5. every removal set is re-made for real: the same seed, the same curriculum with those ids removed
     from every batch (make_runs --exclude_ids); an identical re-run with nothing removed is the baseline;
  6. predicted vs actual change of z's FINAL loss, for every (test example, removal set) pair.

Predicted change of removing a set S (nats; > 0 = the loss rises, i.e. S helped z):
  GPTfluence / Simfluence: the simulator rolled out along the curriculum with S removed, minus the
      rollout along the full curriculum (a batch keeps the mean of its factors: factors scaled by old / new
      batch size, as the mean-reduced training loss does; a batch emptied by the removal makes no update);
  TracIn-CP: a * sum_{i in S} TracIn(i, z), a = the rescaling fitted on the simulator-training runs.
Actual change: final loss in the re-made run minus final loss in the identical re-run. It includes the
chaotic part of training (a tiny change of the curriculum moves every later step), so the random sets
show the noise floor: changes a method cannot be expected to predict.

Writes results/influence_check/<preset>/: table.md, scatter.png (predicted vs actual, one colour per
method), results.json (every number), args.json; work/ holds runs, checkpoints and re-made runs.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

log = logging.getLogger("influence_check")

PRESETS = {
    # a smoke test: tiny model, minutes on one CPU core
    "quick": dict(task="rte", model="tiny", runs=6, shot=40, sample=16, bs=4, epochs=2, n_test=20, lr=1e-3,
                  n_examples=3, k=3, n_random=2, max_epoch=15, patience=5, grad_steps="all", grad_dim=64,
                  valid_num=1),
    # the measured run: the local small model, <= ~15 minutes on one CPU core
    "default": dict(task="rte", model="small", runs=10, shot=100, sample=64, bs=4, epochs=2, n_test=60, lr=1e-4,
                    n_examples=4, k=5, n_random=3, max_epoch=40, patience=8, grad_steps="16", grad_dim=256,
                    valid_num=1),
}
METHODS = ("gptfluence", "simfluence", "tracin_cp")
SIMS = {"gptfluence": ("enc_sim", 1e-3), "simfluence": ("original", 1e-2)}
COLOURS = {"gptfluence": "tab:blue", "simfluence": "tab:orange", "tracin_cp": "tab:green"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--preset", type=str, default="default", choices=sorted(PRESETS), help="named sizes (flags below override)")
    a("--gpu", type=str, default="cpu", help="GPU index for making runs and training ('cpu' = no GPU)")
    a("--task", type=str, default=None, help="built-in task (rte, sst2, boolq; loss metric)")
    a("--model", type=str, default=None, help="run-maker model: tiny, small, a folder or an HF name")
    a("--runs", type=int, default=None, help="runs made (seeds 1..R); the last one is held out")
    a("--shot", type=int, default=None, help="training pool size")
    a("--sample", type=int, default=None, help="training examples per run")
    a("--bs", type=int, default=None, help="batch size of the runs")
    a("--epochs", type=int, default=None, help="epochs of each run")
    a("--n_test", type=int, default=None, help="test examples of the task")
    a("--lr", type=float, default=None, help="learning rate of the runs")
    a("--grad_steps", type=str, default=None, help="checkpoints with gradient features (make_runs --grad_steps)")
    a("--grad_dim", type=int, default=None, help="gradient feature size (make_runs --grad_dim)")
    a("--n_examples", type=int, default=None, help="test examples checked")
    a("--test_ids", type=str, default=None, help="test ids checked, e.g. '0,5,9' (default: a seeded choice)")
    a("--k", type=int, default=None, help="examples in each removal set (top-k helpful / harmful)")
    a("--n_random", type=int, default=None, help="random k-sets re-made as controls")
    a("--max_epoch", type=int, default=None, help="simulator training epochs (train.py --max_epoch)")
    a("--patience", type=int, default=None, help="simulator early-stopping patience")
    a("--valid_num", type=int, default=None, help="simulator validation runs")
    a("--seed", type=int, default=0, help="seed of the test-example choice and the random sets")
    a("--data_seed", type=int, default=0, help="seed of the built-in task generator")
    a("--out_dir", type=str, default=None, help="output folder (default results/influence_check/<preset>)")
    a("--model_cache", type=str, default=None, help="folder of the local preset models (make_runs --model_cache)")
    a("--embedding_cache", type=str, default=".cache/gptfluence/embeddings", help="encoder embedding cache")
    a("--threads", type=int, default=1, help="torch CPU threads")
    a("--no_progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


# ----------------------------------------------------------------------------------------------
# Calling the project's scripts in this process (no re-import of torch per call)
# ----------------------------------------------------------------------------------------------

def load_script(rel_path: str):
    """Import a script of the repo (e.g. 'utils/construct_runs-data.py') as a module."""
    from gptfluence.cli import load_script as load
    return load(rel_path)


def device_flag(gpu: str) -> str:
    return "cpu" if str(gpu).lower() in ("cpu", "", "none", "-1") else str(gpu)


def run_maker_argv(args, out_dir, seeds: str, train_p, eval_p, extra=()) -> list[str]:
    """make_runs.py flags for the settings of this experiment."""
    argv = ["--task", args.task, "--train_data_path", str(train_p), "--eval_data_path", str(eval_p),
            "--model", args.model, "--seeds", seeds, "--shot", str(args.shot), "--sample", str(args.sample),
            "--bs", str(args.bs), "--epochs", str(args.epochs), "--lr", str(args.lr), "--output_dir", str(out_dir),
            "--device", device_flag(args.gpu), "--threads", str(args.threads), "--no_summary", "--no_progress",
            *extra]
    if args.model_cache:
        argv += ["--model_cache", str(args.model_cache)]
    return argv


def call_make_runs(argv: list[str]) -> None:
    from gptfluence.io import DataError
    rc = load_script("utils/make_runs.py").main(argv)
    if rc:
        raise DataError(f"make_runs failed (exit {rc}) with: {' '.join(argv)}")


def preprocess(raw_root: Path, runs_root: Path, task: str) -> list[Path]:
    """construct_runs-data.py on every raw run; returns the processed dirs sorted by seed."""
    load_script("utils/construct_runs-data.py").main(["--raw_root", str(raw_root), "--output_root", str(runs_root),
                                                      "--task", task, "--no_progress"])
    return sorted((runs_root / task).glob("*_seed-*"), key=lambda d: int(d.name.rsplit("_seed-", 1)[1]))


def train_simulator(args, sim_name: str, lr: float, data_paths: Path, train_p, eval_p, out: Path) -> Path:
    """train.py for one simulator (kept when history.json exists); returns its checkpoint folder."""
    # GPTfluence with separate train/test projections (the paper's f != g; clearly better on our runs)
    extra = ["--separate_proj"] if sim_name == "enc_sim" else []
    folder = out / args.task / f"{sim_name}{'_fg' if extra else ''}_loss_seed42"
    if (folder / "history.json").is_file():
        log.info("%s: trained before, kept (%s)", sim_name, folder)
        return folder
    load_script("train.py").main([
        "--sim_name", sim_name, "--task", args.task, "--metric", "loss", "--data_paths_dict", str(data_paths),
        "--train_data_path", str(train_p), "--eval_data_path", str(eval_p), "--valid_num", str(args.valid_num),
        "--lr", str(lr), "--train_bs", "256", "--max_epoch", str(args.max_epoch), "--patience", str(args.patience),
        "--warmup_steps", "100", "--seed", "42", "--output_dir", str(out), "--device", device_flag(args.gpu),
        "--embedding_cache", str(args.embedding_cache), "--run_name", folder.name, "--resume", "--no_progress",
        *extra])
    return folder


def final_losses(run_dir: Path, task: str) -> dict[int, float]:
    """{test id: loss} at the last step of a finished raw run."""
    from gptfluence.formats import checkpoint_path
    from gptfluence.io import read_json, read_jsonl
    from gptfluence.dynamics import DONE_FILE
    steps = int(read_json(run_dir / DONE_FILE)["steps"])
    return {int(r["id"]): float(r["loss"]) for r in read_jsonl(checkpoint_path(run_dir, task, steps))}


def set_name(ids) -> str:
    """Short folder name of a removal set (stable, order-free)."""
    key = ",".join(str(i) for i in sorted(set(int(i) for i in ids)))
    return "none" if not key else "rm-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def remake(args, ids, seed: int, train_p, eval_p, work: Path) -> dict[int, float]:
    """Re-make run `seed` with `ids` removed from every batch (only the final step recorded);
    returns {test id: final loss}. Kept when made before."""
    out = work / "remake" / set_name(ids)
    extra = ["--record_interval", "1000000"]
    if ids:
        extra += ["--exclude_ids", ",".join(str(int(i)) for i in sorted(set(ids)))]
    call_make_runs(run_maker_argv(args, out, str(seed), train_p, eval_p, extra))
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    return final_losses(run_dir, args.task)


# ----------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------

def simulate_removal(sim, batches, init, test_rows, remove_ids):
    """Simulated change of the final value when `remove_ids` leave every batch: [R, N] (cf - baseline).

    batches [R, T, M]; init [R, N]; test_rows [N]. A changed batch keeps the mean of its factors (factors
    scaled by old / new batch size); a batch emptied by the removal makes no update (alpha_1 = 1, the other
    alphas and beta 0)."""
    import torch

    from gptfluence.influence import edit_curriculum, rollout_edited

    edited = batches
    for i in remove_ids:
        edited = edit_curriculum(edited, int(i), "remove")
    with torch.no_grad():
        init = init.float()
        return (rollout_edited(sim, batches, edited, init, test_rows)[..., -1]
                - rollout_edited(sim, batches, batches, init, test_rows)[..., -1])


def simulator_scores(ckpt_dir: Path, batches, init, rows):
    """(simulator, influence scores [P, N] of removing each example, used [P]) on the held-out curriculum."""
    from gptfluence.checkpoint import load_checkpoint, simulator_from_checkpoint
    from gptfluence.influence import influence
    sim = simulator_from_checkpoint(load_checkpoint(ckpt_dir)).eval()
    res = influence(sim, batches, init, rows, mode="remove")
    return sim, res.final[0].float(), res.used[0]


def choose_test_ids(args, test_ids: list[int]) -> list[int]:
    import random

    from gptfluence.io import DataError
    from gptfluence.runs import parse_id_ranges
    if args.test_ids:
        ids = parse_id_ranges(args.test_ids)
        bad = [i for i in ids if i not in test_ids]
        if bad:
            raise DataError(f"--test_ids {bad[:5]}: not test ids of the runs (0..{max(test_ids)})")
        return ids
    return sorted(random.Random(args.seed).sample(test_ids, min(args.n_examples, len(test_ids))))


# ----------------------------------------------------------------------------------------------
# Statistics, table, plot
# ----------------------------------------------------------------------------------------------

def correlations(pred, actual) -> dict:
    """Pearson, Spearman and sign agreement of two equal-length lists (nan where undefined)."""
    import numpy as np
    from scipy import stats
    x, y = np.asarray(pred, float), np.asarray(actual, float)
    out = {"n": int(len(x)), "pearson": float("nan"), "spearman": float("nan"),
           "sign_agreement": float(np.mean(np.sign(x) == np.sign(y))) if len(x) else float("nan")}
    if len(x) > 2 and x.std() > 0 and y.std() > 0:
        out["pearson"] = float(stats.pearsonr(x, y)[0])
        out["spearman"] = float(stats.spearmanr(x, y)[0])
    return out


def fmt(v, digits=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.{digits}f}"


def write_table(path: Path, res: dict) -> str:
    from gptfluence.io import atomic_open
    lines = [f"# Influence ground-truth check ({res['settings']['task']}, {res['settings']['model']} model, "
             f"held-out seed {res['heldout_seed']}, k = {res['settings']['k']})", "",
             f"{len(res['test_ids'])} test examples x {res['n_sets']} re-made removal sets = {res['n_pairs']} "
             "(test example, set) pairs per method. Change = final loss (nats) with the set removed minus without; "
             "> 0: the set helped.", "",
             "| method | Pearson | Spearman | sign agreement | Pearson (own top-k sets) | mean actual change: "
             "own helpful | own harmful | random |", "|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        s = res["methods"][m]
        lines.append(f"| {m} | {fmt(s['all']['pearson'])} | {fmt(s['all']['spearman'])} | "
                     f"{s['all']['sign_agreement']:.2f} | {fmt(s['own']['pearson'])} | "
                     f"{fmt(s['mean_actual']['helpful'], 4)} | {fmt(s['mean_actual']['harmful'], 4)} | "
                     f"{fmt(s['mean_actual']['random'], 4)} |")
    nf = res["noise_floor"]
    lines += ["", f"Noise floor: random {res['settings']['k']}-sets change the final loss by {nf['mean_abs']:.4f} "
              f"nats on average (|change|, {nf['n']} pairs); the identical re-run differs from the original run "
              f"by {res['rerun_max_abs_diff']:.2e} nats (max over test examples).", ""]
    text = "\n".join(lines)
    with atomic_open(path, "w") as f:
        f.write(text)
    return text


def plot_scatter(path: Path, pairs: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    marks = {"helpful": "^", "harmful": "v", "random": "o", "other": "."}
    lim = 1e-9
    for m in METHODS:
        for kind, mk in marks.items():
            pts = [(p["pred"][m], p["actual"]) for p in pairs if p["kind"].get(m, "other") == kind]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, s=18 if kind != "other" else 6, marker=mk, color=COLOURS[m], alpha=0.7,
                           label=f"{m}" if kind == "helpful" else None)
                lim = max(lim, max(abs(v) for v in xs + ys))
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("predicted change of final loss (nats)")
    ax.set_ylabel("actual change of final loss (nats)")
    ax.set_title("removing top-k helpful (^) / harmful (v) / random (o) sets")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def make_base(args, work: Path):
    """Task files, runs (with gradient features), processed runs, data_paths JSON."""
    from gptfluence import tasks
    from gptfluence.io import write_json
    train_p, eval_p = tasks.ensure_task_files(work / "data", args.task, args.shot, args.n_test, seed=args.data_seed)
    call_make_runs(run_maker_argv(args, work / "raw", f"1-{args.runs}", train_p, eval_p,
                                  ["--grad_features", "--grad_steps", args.grad_steps, "--grad_dim", str(args.grad_dim)]))
    dirs = preprocess(work / "raw", work / "runs", args.task)
    if len(dirs) < args.runs:
        from gptfluence.io import DataError
        raise DataError(f"{work / 'runs' / args.task}: {len(dirs)} processed runs, expected {args.runs}")
    dirs = [str(d) for d in dirs[:args.runs]]
    data_paths = work / "data_paths.json"
    write_json(data_paths, {args.task: {"train": dirs[:-1], "test": dirs[-1:]}})
    return train_p, eval_p, dirs, data_paths


def method_scores(args, work, dirs, ckpts, batches, init, rows, test_ids_t, heldout):
    """{method: (scores [P, N] positive = helps, used [P])}, the simulators and TracIn's scale."""
    import torch

    from gptfluence.baselines import example_influence, find_grads_dir, fit_and_predict, list_grad_steps
    from gptfluence.runs import load_run, load_runs
    scores, sims = {}, {}
    for m, ck in ckpts.items():
        sims[m], s, used = simulator_scores(ck, batches, init, rows)
        scores[m] = (s, used)
    k = len(list_grad_steps(find_grads_dir(heldout, work / "raw")))  # TracIn-CP(k): every recorded checkpoint
    fit = fit_and_predict(load_runs(dirs[:-1]), load_runs([heldout]), "tracin_cp", k, raw_root=work / "raw")
    run = load_run(heldout, "loss")
    S, _ = example_influence(heldout, run["opt_steps"], run["samples"], test_ids_t, k, raw_root=work / "raw")
    P = scores["gptfluence"][0].shape[0]
    full = torch.zeros(P, S.shape[1], dtype=torch.float64)
    full[:min(P, S.shape[0])] = S[:P]
    scores["tracin_cp"] = (fit["scale"] * full, scores["gptfluence"][1])
    return scores, sims, fit["scale"]


def main(argv=None) -> int:
    args = parse_args(argv)
    import random

    import torch

    from gptfluence.cli import setup_logging
    from gptfluence.influence import top_k
    from gptfluence.io import DataError, write_json
    from gptfluence.runs import load_runs
    from gptfluence.training import Dynamics

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out_dir or ROOT / "results" / "influence_check" / args.preset)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    setup_logging(out / "influence_check.log")
    write_json(out / "args.json", vars(args))
    t0 = time.time()
    try:
        train_p, eval_p, dirs, data_paths = make_base(args, work)
        ckpts = {m: train_simulator(args, name, lr, data_paths, train_p, eval_p, work / "output")
                 for m, (name, lr) in SIMS.items()}
        heldout, seed = dirs[-1], args.runs
        rs = load_runs([heldout])
        data = Dynamics.from_runset(rs)
        chosen = choose_test_ids(args, rs.test_ids.tolist())
        rows_t = torch.tensor(chosen)
        init = data.values[:, [rs.test_ids.tolist().index(i) for i in chosen], 0]       # [1, N]
        scores, sims, scale = method_scores(args, work, dirs, ckpts, data.batches, init, rows_t, rows_t, heldout)
        t_base = time.time() - t0

        # removal sets: each method's top-k helpful / harmful per test example, and random controls
        used = scores["gptfluence"][1]
        cand = torch.nonzero(used).flatten().tolist()
        sets, kinds = {}, {}                      # name -> ids; name -> {method: kind} per test example
        for m in METHODS:
            s, u = scores[m]
            hi, _, lo, _ = top_k(s, args.k, u)
            for n, z in enumerate(chosen):
                for kind, ids in (("helpful", hi[n].tolist()), ("harmful", lo[n].tolist())):
                    name = set_name(ids)
                    sets[name] = sorted(ids)
                    kinds.setdefault((name, z), {})[m] = kind
        rng = random.Random(args.seed + 1)
        for _ in range(args.n_random):
            ids = sorted(rng.sample(cand, min(args.k, len(cand))))
            sets[set_name(ids)] = ids
            for z in chosen:
                kinds.setdefault((set_name(ids), z), {}).update({m: "random" for m in METHODS})
        log.info("%d distinct removal sets to re-make (+1 identical re-run)", len(sets))

        t1 = time.time()
        base_final = remake(args, [], seed, train_p, eval_p, work)
        orig = {int(i): float(v) for i, v in zip(rs.test_ids.tolist(), data.values[0, :, -1].tolist())}
        rerun_diff = max(abs(base_final[i] - orig[i]) for i in chosen)
        actual = {}
        for j, (name, ids) in enumerate(sorted(sets.items())):
            log.info("re-making set %d/%d (%s: ids %s)", j + 1, len(sets), name, ids)
            fin = remake(args, ids, seed, train_p, eval_p, work)
            actual[name] = {z: fin[z] - base_final[z] for z in chosen}
        t_remake = time.time() - t1

        # predictions for every (test example, set) pair, by every method
        pairs = []
        for name, ids in sorted(sets.items()):
            pred = {m: simulate_removal(sims[m], data.batches, init, rows_t, ids)[0] for m in sims}
            tr = scores["tracin_cp"][0][ids].sum(0)
            for n, z in enumerate(chosen):
                p = {m: float(pred[m][n]) for m in sims}
                p["tracin_cp"] = float(tr[n])
                pairs.append({"set": name, "ids": ids, "test_id": z, "pred": p, "actual": actual[name][z],
                              "kind": kinds.get((name, z), {})})
        methods = {}
        for m in METHODS:
            own = [p for p in pairs if p["kind"].get(m) in ("helpful", "harmful")]
            mean = lambda kind: (sum(p["actual"] for p in pairs if p["kind"].get(m) == kind)  # noqa: E731
                                 / max(1, sum(1 for p in pairs if p["kind"].get(m) == kind)))
            methods[m] = {"all": correlations([p["pred"][m] for p in pairs], [p["actual"] for p in pairs]),
                          "own": correlations([p["pred"][m] for p in own], [p["actual"] for p in own]),
                          "mean_actual": {k: mean(k) for k in ("helpful", "harmful", "random")}}
        rnd = [abs(p["actual"]) for p in pairs if "random" in p["kind"].values()]
        res = {"settings": {k: getattr(args, k) for k in PRESETS["default"]}, "heldout_run": heldout,
               "heldout_seed": seed, "test_ids": chosen, "tracin_scale": scale, "n_sets": len(sets),
               "n_pairs": len(pairs), "methods": methods, "rerun_max_abs_diff": rerun_diff,
               "noise_floor": {"mean_abs": sum(rnd) / max(1, len(rnd)), "n": len(rnd)},
               "seconds": {"runs_and_simulators": round(t_base, 1), "remakes": round(t_remake, 1),
                           "total": round(time.time() - t0, 1)},
               "sign_convention": "change = final loss with the set removed - final loss with it (nats); "
                                  "> 0: the set helped the test example", "pairs": pairs}
        write_json(out / "results.json", res)
        plot_scatter(out / "scatter.png", pairs)
        print(write_table(out / "table.md", res))
        print(f"results: {out / 'table.md'}, {out / 'scatter.png'}, {out / 'results.json'} "
              f"({res['seconds']['total']:.0f} s)")
    except DataError as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
