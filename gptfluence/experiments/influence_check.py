"""Ground-truth check of influence: re-make a run without each method's top examples and compare.

Pipeline (every stage is skipped when its outputs exist, so an interrupted call resumes):
  1. runs on the built-in task (seeds 1..R, gradient features for TracIn-CP), preprocessed; the simulators
     trained on runs 1..R-1; run R is held out;
  2. on the held-out run, for a few test examples z, each method names its top-k HELPFUL and top-k HARMFUL
     training examples (simulators: counterfactual removal rolled out along the run's curriculum; TracIn-CP:
     sum over the run's steps of lr_u <g_i, g_z> at the nearest recorded checkpoint), plus random k-sets;
  3. every removal set is re-made for real: the same seed, the same curriculum with those ids removed from every
     batch (RunSpec.exclude_ids); an identical re-run with nothing removed is the baseline;
  4. predicted vs actual change of z's FINAL loss, for every (test example, removal set) pair.

Predicted change of removing a set S (nats; > 0 = the loss rises, i.e. S helped z):
  simulators: the rollout along the curriculum with S removed, minus the rollout along the full curriculum (a batch
      keeps the mean of its factors; a batch emptied by the removal makes no update);
  TracIn-CP: a * sum_{i in S} TracIn(i, z), a = the rescaling fitted on the simulator-training runs.
Actual change: final loss in the re-made run minus final loss in the identical re-run. It includes the chaotic
part of training (a small change of the curriculum moves every later step), so the random sets show the noise
floor: changes a method cannot be expected to predict.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..io import DataError, atomic_open, read_json, read_jsonl, write_json
from .common import ANCHOR, GPTFLUENCE, SIMFLUENCE, Workspace

log = logging.getLogger("gptfluence.experiments")

PRESETS = {
    # a smoke test: tiny model, minutes on one CPU core
    "quick": dict(task="rte", model="tiny", runs=6, shot=40, sample=16, bs=4, epochs=2, n_test=20, lr=1e-3,
                  n_examples=3, k=3, n_random=2, grad_steps="all", grad_dim=64, valid_num=1),
    # the measured run: the local small model, in the smoother regime of lr 1e-4 (at lr 1e-3, 48 steps, a
    # 5-example removal moves the final loss by noise: results/influence_check/default_lr1e-3)
    "default": dict(task="rte", model="small", runs=10, shot=100, sample=64, bs=4, epochs=2, n_test=60, lr=1e-4,
                    n_examples=4, k=5, n_random=3, grad_steps="16", grad_dim=256, valid_num=1),
}
SIMULATORS = {"gptfluence": GPTFLUENCE, "simfluence": SIMFLUENCE, "anchor_lex_sim": ANCHOR}
METHODS = (*SIMULATORS, "tracin_cp")


def base_spec(args, files):
    from ..pipeline import RunSpec
    return RunSpec(task=args.task, seeds=list(range(1, args.runs + 1)), train_file=files[0], eval_file=files[1],
                   model=args.model, shot=args.shot, sample=args.sample, bs=args.bs, epochs=args.epochs, lr=args.lr)


def final_losses(run_dir: Path, task: str) -> dict[int, float]:
    """{test id: loss} at the last step of a finished raw run."""
    from ..formats import checkpoint_path
    steps = int(read_json(Path(run_dir) / "run_done.json")["steps"])
    return {int(r["id"]): float(r["loss"]) for r in read_jsonl(checkpoint_path(run_dir, task, steps))}


def set_name(ids) -> str:
    """Short folder name of a removal set (stable, order-free)."""
    key = ",".join(str(i) for i in sorted(set(int(i) for i in ids)))
    return "none" if not key else "rm-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def remake(ws: Workspace, args, files, ids, seed: int) -> dict[int, float]:
    """Re-make run `seed` with `ids` removed from every batch (only the final step recorded); returns
    {test id: final loss}. Kept when made before."""
    from ..pipeline import make_runs
    out = ws.root / "remake" / set_name(ids)
    spec = replace(base_spec(args, files), seeds=[seed], record_interval=10 ** 6, output_dir=str(out),
                   exclude_ids=sorted(set(int(i) for i in ids)) or None, device=ws.device, threads=ws.threads,
                   progress=False, summary=False, model_cache=ws.model_cache)
    (run_dir,) = make_runs(spec)
    return final_losses(run_dir, args.task)


def simulate_removal(sim, batches, init, test_rows, remove_ids):
    """Simulated change of the final value when `remove_ids` leave every batch: [R, N] (cf - baseline)."""
    from ..influence import edit_curriculum, rollout_edited
    edited = batches
    for i in remove_ids:
        edited = edit_curriculum(edited, int(i), "remove")
    with torch.no_grad():
        init = init.float()
        return (rollout_edited(sim, batches, edited, init, test_rows)[..., -1]
                - rollout_edited(sim, batches, batches, init, test_rows)[..., -1])


def simulator_scores(ckpt_dir: Path, batches, init, rows):
    """(simulator, influence scores [P, N] of removing each example, used [P]) on the held-out curriculum."""
    from ..checkpoint import load_checkpoint, simulator_from_checkpoint
    from ..influence import influence
    sim = simulator_from_checkpoint(load_checkpoint(ckpt_dir)).eval()
    res = influence(sim, batches, init, rows, mode="remove")
    return sim, res.final[0].float(), res.used[0]


def tracin_scores(ws, args, dirs, heldout, test_ids, P):
    """TracIn-CP scores [P, N] of every training example (rescaled as fitted on the training runs), and the scale."""
    from ..baselines import example_influence, find_grads_dir, fit_and_predict, list_grad_steps
    from ..runs import load_run, load_runs
    raw = ws.root / "raw" / run_key(args)
    k = len(list_grad_steps(find_grads_dir(heldout, raw)))  # TracIn-CP(k): every recorded checkpoint
    fit = fit_and_predict(load_runs(dirs[:-1]), load_runs([heldout]), "tracin_cp", k, raw_root=raw)
    run = load_run(heldout, "loss")
    S, _ = example_influence(heldout, run["opt_steps"], run["samples"], test_ids, k, raw_root=raw)
    full = torch.zeros(P, S.shape[1], dtype=torch.float64)
    full[:min(P, S.shape[0])] = S[:P]
    return fit["scale"] * full, fit["scale"]


def choose_test_ids(args, test_ids: list[int]) -> list[int]:
    from ..runs import parse_id_ranges
    if args.test_ids:
        ids = parse_id_ranges(args.test_ids)
        bad = [i for i in ids if i not in test_ids]
        if bad:
            raise DataError(f"--test_ids {bad[:5]}: not test ids of the runs (0..{max(test_ids)})")
        return ids
    return sorted(random.Random(args.seed).sample(test_ids, min(args.n_examples, len(test_ids))))


def correlations(pred, actual) -> dict:
    """Pearson, Spearman and sign agreement of two equal-length lists (nan where undefined)."""
    import numpy as np
    from scipy import stats
    x, y = np.asarray(pred, float), np.asarray(actual, float)
    out = {"n": int(len(x)), "pearson": float("nan"), "spearman": float("nan"),
           "sign_agreement": float(np.mean(np.sign(x) == np.sign(y))) if len(x) else float("nan")}
    if len(x) > 2 and x.std() > 0 and y.std() > 0:
        out["pearson"] = float(stats.pearsonr(x, y)[0])
        out["spearman"] = float(stats.spearmanr(x, y).statistic)
    return out


def fmt(v, digits=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.{digits}f}"


def write_table(path: Path, res: dict) -> str:
    s = res["settings"]
    lines = [f"#### Influence ground-truth check ({s['task']}, {s['model']} model, held-out seed "
             f"{res['heldout_seed']}, k = {s['k']})", "",
             f"{len(res['test_ids'])} test examples x {res['n_sets']} re-made removal sets = {res['n_pairs']} "
             "(test example, set) pairs per method. Change = final loss (nats) with the set removed minus without; "
             "> 0: the set helped.", "",
             "| method | Pearson | Spearman | sign agreement | Pearson (own top-k sets) | mean actual change: "
             "own helpful | own harmful | random |", "|---|---|---|---|---|---|---|---|"]
    for m in res["methods"]:
        r = res["methods"][m]
        lines.append(f"| {m} | {fmt(r['all']['pearson'])} | {fmt(r['all']['spearman'])} | "
                     f"{r['all']['sign_agreement']:.2f} | {fmt(r['own']['pearson'])} | "
                     f"{fmt(r['mean_actual']['helpful'], 4)} | {fmt(r['mean_actual']['harmful'], 4)} | "
                     f"{fmt(r['mean_actual']['random'], 4)} |")
    nf = res["noise_floor"]
    lines += ["", f"Noise floor: random {s['k']}-sets change the final loss by {nf['mean_abs']:.4f} nats on average "
              f"(|change|, {nf['n']} pairs); the identical re-run differs from the original run by "
              f"{res['rerun_max_abs_diff']:.2e} nats (max over test examples).", ""]
    text = "\n".join(lines)
    with atomic_open(path, "w") as f:
        f.write(text)
    return text


def plot(path: Path, pairs: list[dict]) -> None:
    from ..plots import plot_scatter
    points = {m: [(p["pred"][m], p["actual"], p["kind"].get(m, "other")) for p in pairs] for m in METHODS}
    plot_scatter(path, points, "predicted change of final loss (nats)", "actual change of final loss (nats)",
                 "removing top-k helpful (^) / harmful (v) / random (o) sets",
                 {"helpful": "^", "harmful": "v", "random": "o", "other": "."})


def run_key(args) -> str:
    return (f"{args.task}/{Path(args.model).name}_shot{args.shot}_sample{args.sample}_ep{args.epochs}_bs{args.bs}"
            f"_lr{args.lr:g}_nt{args.n_test}_ds{args.data_seed}_grads{args.grad_steps}-{args.grad_dim}")


def removal_sets(args, scores, chosen, cand):
    """{set name: ids} and {(set name, test id): {method: helpful | harmful | random}}."""
    from ..influence import top_k
    sets, kinds = {}, {}
    for m in METHODS:
        s, u = scores[m]
        hi, _, lo, _ = top_k(s, args.k, u)
        for n, z in enumerate(chosen):
            for kind, ids in (("helpful", hi[n].tolist()), ("harmful", lo[n].tolist())):
                sets[set_name(ids)] = sorted(ids)
                kinds.setdefault((set_name(ids), z), {})[m] = kind
    rng = random.Random(args.seed + 1)
    for _ in range(args.n_random):
        ids = sorted(rng.sample(cand, min(args.k, len(cand))))
        sets[set_name(ids)] = ids
        for z in chosen:
            kinds.setdefault((set_name(ids), z), {}).update({m: "random" for m in METHODS})
    return sets, kinds


def summarise(pairs: list[dict]) -> dict:
    methods = {}
    for m in METHODS:
        own = [p for p in pairs if p["kind"].get(m) in ("helpful", "harmful")]

        def mean(kind):
            xs = [p["actual"] for p in pairs if p["kind"].get(m) == kind]
            return sum(xs) / len(xs) if xs else float("nan")
        methods[m] = {"all": correlations([p["pred"][m] for p in pairs], [p["actual"] for p in pairs]),
                      "own": correlations([p["pred"][m] for p in own], [p["actual"] for p in own]),
                      "mean_actual": {k: mean(k) for k in ("helpful", "harmful", "random")}}
    return methods


def run(ws: Workspace, args, out: Path) -> dict:
    """The whole check; writes table.md, scatter.png, results.json into out; returns the results."""
    from ..runs import load_runs
    from ..training import Dynamics
    t0 = time.time()
    files = ws.task_files(args.task, args.shot, args.n_test, args.data_seed)
    spec = replace(base_spec(args, files), grad_features=True, grad_steps=args.grad_steps, grad_dim=args.grad_dim)
    dirs = [d for _, d in sorted(ws.runs(run_key(args), spec).items())]
    ws.train_methods(run_key(args), SIMULATORS.values(), args.task, "loss", dirs[:-1], files, [42], args.valid_num)
    ckpts = {m: ws.simulator(run_key(args), method, args.task, "loss", dirs[:-1], files, 42, args.valid_num)
             for m, method in SIMULATORS.items()}
    heldout, seed = dirs[-1], args.runs
    rs = load_runs([heldout])
    data = Dynamics.from_runset(rs)
    chosen = choose_test_ids(args, rs.test_ids.tolist())
    rows = torch.tensor(chosen)
    init = data.values[:, [rs.test_ids.tolist().index(i) for i in chosen], 0]       # [1, N]
    scores, sims = {}, {}
    for m, ck in ckpts.items():
        sims[m], s, used = simulator_scores(ck, data.batches, init, rows)
        scores[m] = (s, used)
    tr, scale = tracin_scores(ws, args, dirs, heldout, rows, scores["gptfluence"][0].shape[0])
    scores["tracin_cp"] = (tr, scores["gptfluence"][1])
    t_base = time.time() - t0
    sets, kinds = removal_sets(args, scores, chosen, torch.nonzero(scores["gptfluence"][1]).flatten().tolist())
    log.info("%d distinct removal sets to re-make (+1 identical re-run)", len(sets))
    t1 = time.time()
    base_final = remake(ws, args, files, [], seed)
    orig = {int(i): float(v) for i, v in zip(rs.test_ids.tolist(), data.values[0, :, -1].tolist())}
    actual = {}
    for j, (name, ids) in enumerate(sorted(sets.items())):
        log.info("re-making set %d/%d (%s: ids %s)", j + 1, len(sets), name, ids)
        fin = remake(ws, args, files, ids, seed)
        actual[name] = {z: fin[z] - base_final[z] for z in chosen}
    t_remake = time.time() - t1
    pairs = []
    for name, ids in sorted(sets.items()):
        pred = {m: simulate_removal(sims[m], data.batches, init, rows, ids)[0] for m in sims}
        trs = scores["tracin_cp"][0][ids].sum(0)
        for n, z in enumerate(chosen):
            p = {m: float(pred[m][n]) for m in sims}
            p["tracin_cp"] = float(trs[n])
            pairs.append({"set": name, "ids": ids, "test_id": z, "pred": p, "actual": actual[name][z],
                          "kind": kinds.get((name, z), {})})
    rnd = [abs(p["actual"]) for p in pairs if "random" in p["kind"].values()]
    res = {"settings": {k: getattr(args, k) for k in PRESETS["default"]}, "heldout_run": Path(heldout).name,
           "heldout_seed": seed, "test_ids": chosen, "tracin_scale": scale, "n_sets": len(sets),
           "n_pairs": len(pairs), "methods": summarise(pairs),
           "rerun_max_abs_diff": max(abs(base_final[i] - orig[i]) for i in chosen),
           "noise_floor": {"mean_abs": sum(rnd) / max(1, len(rnd)), "n": len(rnd)},
           "seconds": {"runs_and_simulators": round(t_base, 1), "remakes": round(t_remake, 1),
                       "total": round(time.time() - t0, 1)},
           "sign_convention": "change = final loss with the set removed - final loss with it (nats); "
                              "> 0: the set helped the test example", "pairs": pairs}
    write_json(out / "results.json", res)
    plot(out / "scatter.png", pairs)
    print(write_table(out / "table.md", res))
    print(f"results: {out / 'table.md'}, {out / 'scatter.png'}, {out / 'results.json'} "
          f"({res['seconds']['total']:.0f} s)")
    return res
