"""Rank training examples by their counterfactual influence on test examples, with a trained simulator.

    python influence.py --checkpoint output/rte/enc_sim_loss_seed42 --run_dir runs/rte/run_seed-28 --top_k 10
    python influence.py --checkpoint ... --curriculum my_batches.json --init_value 2.3 --test_ids 0-9
    python influence.py --checkpoint ... --run_dir ... --what_if edited.json --self_influence

For every training example i the simulator is rolled out along the curriculum with i removed
from every batch it is in (--mode remove) or added once more to them (--mode add; with
--insert_steps: inserted into those steps instead), for all examples and test examples at once.

Sign convention: influence > 0 means the training example HELPS the test example (its presence
lowers the loss, or raises BLEU / ROUGE). The "trajectory" score is the same difference averaged
over the simulated steps. Scores are in the metric's units, averaged over the given runs.

Writes <save_dir>/influence.json (sign convention, top-k helpful and harmful examples of every test
example with ids, scores and texts), influence.csv, args.json; with --what_if what_if.json and
what_if_<metric>.png; with --self_influence self_influence.csv; with --save_matrix influence_matrix.pt.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("gptfluence.influence")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--checkpoint", required=True, help="checkpoint file, or a run folder holding best-checkpoint.pt")
    a("--run_dir", nargs="+", default=None, help="processed run dir(s) whose curriculum (train_samples_id.json) "
      "and first recorded values are used; scores are averaged over the runs")
    a("--curriculum", default=None, help="curriculum JSON file instead of --run_dir: a list of "
      "{\"step\": s, \"samples_id\": [ids]} or of id lists (needs --init_value)")
    a("--init_value", type=float, default=None, help="initial value of every test example (the value after "
      "the first listed step); default: the run dir's first recorded values")
    a("--train_data_path", default=None, help="training pool sample file (default: the checkpoint's); must be "
      "the file the checkpoint was trained on")
    a("--eval_data_path", default=None, help="test set sample file (default: the checkpoint's); must be the "
      "file the checkpoint was trained on")
    a("--test_ids", default=None, help="test ids to score, e.g. '0-9,15' (default: all test ids of the run "
      "dir, or the whole test set with --curriculum)")
    a("--test_texts", default=None, help="file with one new test text per line, scored instead of test ids "
      "(feature simulators only; embedded with the checkpoint's encoder)")
    a("--top_k", type=int, default=10, help="helpful and harmful training examples listed per test example")
    a("--mode", default="remove", choices=["remove", "add"], help="counterfactual: remove the example from "
      "every batch it is in, or add it once more to them")
    a("--insert_steps", default=None, help="with --mode add: insert each example once into these steps "
      "(e.g. '10,20-30', steps of the curriculum) instead of duplicating it in its own batches")
    a("--renormalize", type=int, default=1, choices=[0, 1], help="1 (default): a changed batch keeps its mean "
      "factor (factors scaled by old / new batch size, as a mean-reduced training loss would); 0: plain sums, "
      "where removing an example also removes its share of the batch's alpha, an offset shared by all examples")
    a("--higher_is_better", default="auto", choices=["auto", "yes", "no"], help="whether a higher metric "
      "value is better (auto: no for loss, yes for BLEU / ROUGE)")
    a("--what_if", default=None, help="curriculum JSON file to simulate and compare with the baseline "
      "curriculum (same format as --curriculum)")
    a("--self_influence", action="store_true", help="also score every training example on itself as a test "
      "point (feature simulators only; initial value --init_value or the mean first value)")
    a("--save_matrix", action="store_true", help="also save the full [P, N] score matrices (influence_matrix.pt)")
    a("--chunk_size", type=int, default=256, help="training examples per recurrence pass (bounds memory)")
    a("--plot_examples", type=int, default=6, help="test examples plotted with --what_if (0: none)")
    a("--text_chars", type=int, default=60, help="characters of each text in the printed table")
    a("--save_dir", default=None, help="output folder (default <checkpoint folder>/influence)")
    a("--embedding_cache", default=".cache/gptfluence/embeddings", help="on-disk embedding cache folder")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or a GPU index")
    a("--allow_nonfinite", action="store_true", help="skip NaN/inf values in the runs instead of refusing them")
    a("--no_progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------

def check_task_files(ckpt: dict, train_path: str, eval_path: str, sim) -> tuple[list, list]:
    """Load the sample files and refuse any that differ from the checkpoint's (naming the setting)."""
    from gptfluence.io import DataError, file_fingerprint, load_samples
    data, where = ckpt.get("data", {}), ckpt.get("path", "checkpoint")
    out = []
    for flag, key, path, n_key, n_sim in (("--train_data_path", "train", train_path, "n_train", sim.n_train),
                                          ("--eval_data_path", "eval", eval_path, "n_test", sim.n_test)):
        samples = load_samples(path)
        want = data.get(f"{key}_file_fingerprint")
        if want is not None and file_fingerprint(path) != want:
            raise DataError(f"{where}: {flag} {path} differs from the file the checkpoint was trained on "
                            f"({data.get(f'{key}_file')}; size/sha256 differ); influence needs the same task files")
        n_ckpt = ckpt.get(n_key)
        if (n_ckpt is not None and len(samples) != n_ckpt) or len(samples) != n_sim:
            raise DataError(f"{where}: {n_key}: {flag} {path} holds {len(samples)} examples but the checkpoint "
                            f"was made with {n_ckpt if n_ckpt is not None else n_sim}")
        out.append(samples)
    return out[0], out[1]


def parse_steps(text: str, steps: list[int]) -> list[int]:
    """--insert_steps '10,20-30' (curriculum steps) -> slot indices 1..T-1."""
    from gptfluence.io import DataError
    from gptfluence.runs import parse_id_ranges
    slot = {s: t for t, s in enumerate(steps)}
    out = []
    for s in parse_id_ranges(text):
        if s not in slot or slot[s] == 0:
            raise DataError(f"--insert_steps: step {s} is not a simulated step of the curriculum "
                            f"(steps {steps[1] if len(steps) > 1 else '-'}..{steps[-1]})")
        out.append(slot[s])
    return out


def load_curriculum(args, cargs: dict, n_train: int, test_ids):
    """(batches [R, T, M], steps [T], init [R, N] or None, true values [R, N, T] or None, mask or None, source,
    the run's test ids or None)."""
    from gptfluence.influence import read_curriculum
    from gptfluence.io import DataError
    if bool(args.run_dir) == bool(args.curriculum):
        raise DataError("give exactly one of --run_dir (a processed run dir) and --curriculum (a JSON file)")
    if args.curriculum:
        batches, steps = read_curriculum(args.curriculum, n_train)
        return batches[None], steps, None, None, None, str(args.curriculum), None
    from gptfluence.runs import load_runs, validate_ids
    from gptfluence.training import Dynamics
    rs = load_runs(args.run_dir, metric=cargs["metric"], test_ids=test_ids, allow_nonfinite=args.allow_nonfinite)
    validate_ids(rs, n_train)
    data = Dynamics.from_runset(rs)
    if cargs.get("step_thres") is not None:
        data = data.up_to(cargs["step_thres"])
    data = data.every(cargs.get("cp_interval") or 1)
    if not bool(data.mask[..., 0].all()):
        r, n = (~data.mask[..., 0]).nonzero()[0].tolist()
        raise DataError(f"{rs.names[r]}: test id {int(rs.test_ids[n])} has no value at the first recorded step "
                        f"{int(data.steps[0])}; give --init_value")
    return (data.batches, data.steps.tolist(), data.values[..., 0], data.values, data.mask,
            ", ".join(str(d) for d in args.run_dir), rs.test_ids.tolist())


def test_examples(args, sim, ckpt, eval_samples, device):
    """(simulator, test_rows [N], ids list or None, texts list). New texts need a feature simulator."""
    import copy

    import torch
    from gptfluence.io import DataError
    from gptfluence.runs import parse_id_ranges
    if args.test_texts and args.test_ids:
        raise DataError("give --test_ids or --test_texts, not both")
    if args.test_texts:
        texts = read_texts(args.test_texts)
        if not sim.uses_features:
            raise DataError(f"{args.test_texts}: {sim.name} (Simfluence) has free factors per test id and cannot "
                            "embed or simulate new texts; use a feature simulator (enc_sim, norder_enc_sim, "
                            "gpt_sim) or --test_ids")
        from gptfluence.encoders import embed_texts
        enc = ckpt["encoder"]
        emb = embed_texts(texts, encoder=enc["encoder"], pooling=enc["pooling"], max_length=enc["max_length"],
                          cache_dir=args.embedding_cache, device=str(device), show_progress=not args.no_progress)
        sim = copy.deepcopy(sim)
        sim.set_examples(test_emb=emb)
        return sim, torch.arange(len(texts)), None, texts
    ids = parse_id_ranges(args.test_ids) if args.test_ids else None
    if ids is not None:
        bad = [i for i in ids if not 0 <= i < sim.n_test]
        if bad:
            raise DataError(f"--test_ids: test ids {bad[:10]} outside the test set "
                            f"(expected ids 0..{sim.n_test - 1})")
    return sim, ids, ids, None


def read_texts(path) -> list[str]:
    from gptfluence.io import DataError
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found (expected one test text per line)")
    texts = [line.rstrip("\n") for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise DataError(f"{p}: no texts (expected one test text per line)")
    return texts


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------

def ranked_rows(scores, traj, used, train_idx, k: int, train_samples) -> list[dict]:
    """Per test example: {"helpful": [...], "harmful": [...]} entries with ids, scores and texts."""
    from gptfluence.influence import top_k
    hi, hs, li, ls = top_k(scores, k, used)
    out = []
    for n in range(scores.shape[1]):
        row = {}
        for kind, rows, vals in (("helpful", hi, hs), ("harmful", li, ls)):
            row[kind] = [{"train_id": int(train_idx[r]), "score": float(v), "trajectory_score": float(traj[r, n]),
                          "text": train_samples[int(train_idx[r])]["input"]}
                         for r, v in zip(rows[n].tolist(), vals[n].tolist())]
        out.append(row)
    return out


def write_csv(path, results: list[dict]) -> None:
    import csv

    from gptfluence.io import atomic_open
    with atomic_open(path, "w") as f:
        w = csv.writer(f)
        w.writerow(["test_id", "test_text", "kind", "rank", "train_id", "score", "trajectory_score", "train_text"])
        for r in results:
            for kind in ("helpful", "harmful"):
                for rank, e in enumerate(r[kind], 1):
                    w.writerow([r["test_id"], r["test_text"], kind, rank, e["train_id"], f"{e['score']:.6g}",
                                f"{e['trajectory_score']:.6g}", e["text"]])


def clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:max(0, n - 3)] + "..."


def print_table(results: list[dict], convention: str, header: str, chars: int) -> None:
    print(header)
    print(f"sign convention: {convention}")
    for r in results:
        name = f"test id {r['test_id']}" if r["test_id"] is not None else f"test text {r['index']}"
        print(f"\n{name} (baseline final {r['baseline_final']:.4g}): {clip(r['test_text'], chars)}")
        print(f"  {'rank':>4}  {'helpful id':>10} {'score':>11}  {'harmful id':>10} {'score':>11}  helpful text")
        for k in range(max(len(r["helpful"]), len(r["harmful"]))):
            h = r["helpful"][k] if k < len(r["helpful"]) else None
            b = r["harmful"][k] if k < len(r["harmful"]) else None
            hid, hsc = (h["train_id"], f"{h['score']:+.4g}") if h else ("", "")
            bid, bsc = (b["train_id"], f"{b['score']:+.4g}") if b else ("", "")
            print(f"  {k + 1:>4}  {hid:>10} {hsc:>11}  {bid:>10} {bsc:>11}  {clip(h['text'], chars) if h else ''}")


def aligned(steps_a: list[int], steps_b: list[int]):
    """Union of two step lists and, for each, the positions of its steps in the union."""
    union = sorted(set(steps_a) | set(steps_b))
    pos = {s: i for i, s in enumerate(union)}
    return union, [pos[s] for s in steps_a], [pos[s] for s in steps_b]


def on_grid(values: list[float], where: list[int], size: int) -> list[float]:
    out = [float("nan")] * size
    for v, i in zip(values, where):
        out[i] = float(v)
    return out


def run_what_if(args, sim, batches, steps, init, test_rows, labels, hib, metric, truth, save_dir) -> dict:
    """Simulate --what_if against the baseline curriculum; write what_if.json and a plot."""
    from gptfluence.influence import compare_curricula, read_curriculum
    from gptfluence.io import write_json
    from gptfluence.plots import plot_trajectories
    wi, wsteps = read_curriculum(args.what_if, sim.n_train)
    cmp = compare_curricula(sim, batches, wi, init, test_rows, hib)
    gain_f, gain_m = cmp["gain_final"].mean(0), cmp["gain_mean"].mean(0)
    summary = {"file": str(args.what_if), "steps": len(wsteps),
               "convention": "gain > 0 = the what-if curriculum ends better than the baseline (final) or is "
                             "better on average over its simulated steps (mean); mean over runs",
               "mean_gain_final": float(gain_f.mean()), "mean_gain_mean": float(gain_m.mean()),
               "examples": [{"label": lab, "baseline_final": float(cmp["baseline"][:, n, -1].mean()),
                             "what_if_final": float(cmp["what_if"][:, n, -1].mean()),
                             "gain_final": float(gain_f[n]), "gain_mean": float(gain_m[n])}
                            for n, lab in enumerate(labels)]}
    write_json(save_dir / "what_if.json", summary)
    k = min(args.plot_examples, len(labels))
    if k > 0:
        union, pa, pb = aligned(steps, wsteps)
        curves = []
        for n in range(k):
            gt = None
            if truth is not None:
                vals, mask = truth
                gt = on_grid([v if m else float("nan") for v, m in zip(vals[0, n].tolist(), mask[0, n].tolist())],
                             pa, len(union))
            curves.append({"title": clip(labels[n], 40), "gt": gt or [],
                           "pred": {"baseline": on_grid(cmp["baseline"][0, n].tolist(), pa, len(union)),
                                    "what-if": on_grid(cmp["what_if"][0, n].tolist(), pb, len(union))}})
        plot_trajectories(save_dir / f"what_if_{metric}.png", union, curves, metric)
    print(f"\nwhat-if {args.what_if}: mean gain over test examples {summary['mean_gain_final']:+.4g} (final), "
          f"{summary['mean_gain_mean']:+.4g} (trajectory mean); positive = the what-if curriculum is better")
    return summary


def run_self_influence(args, sim, batches, init, hib, train_samples, save_dir, metric) -> dict:
    """Self-influence of every training example; writes self_influence.csv."""
    import csv

    from gptfluence.influence import self_influence, sign_convention
    from gptfluence.io import atomic_open
    start = args.init_value if args.init_value is not None else float(init.mean())
    res = self_influence(sim, batches, start, mode=args.mode, higher_is_better=hib, renormalize=bool(args.renormalize))
    score, traj = res.final.mean(0)[:, 0], res.trajectory.mean(0)[:, 0]
    used = res.used.any(0)
    order = sorted(range(len(score)), key=lambda i: (not bool(used[i]), -float(score[i])))
    with atomic_open(save_dir / "self_influence.csv", "w") as f:
        w = csv.writer(f)
        w.writerow(["rank", "train_id", "score", "trajectory_score", "in_curriculum", "train_text"])
        for rank, i in enumerate(order, 1):
            w.writerow([rank, i, f"{float(score[i]):.6g}", f"{float(traj[i]):.6g}", int(bool(used[i])),
                        train_samples[i]["input"]])
    top = [{"train_id": i, "score": float(score[i]), "trajectory_score": float(traj[i]),
            "text": train_samples[i]["input"]} for i in order[:args.top_k] if bool(used[i])]
    print(f"\nself-influence (initial value {start:.4g}); top {len(top)} of {int(used.sum())} examples in the "
          f"curriculum:")
    for e in top:
        print(f"  {e['train_id']:>6} {e['score']:+.4g}  {clip(e['text'], args.text_chars)}")
    return {"convention": sign_convention(args.mode, hib, metric) + " (the example as its own test point)",
            "initial_value": start, "top": top, "file": str(save_dir / "self_influence.csv")}


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    import torch
    from gptfluence.checkpoint import load_checkpoint, simulator_from_checkpoint
    from gptfluence.cli import pick_device, setup_logging
    from gptfluence.influence import as_own_test_points, influence, metric_higher_is_better, sign_convention
    from gptfluence.io import DataError, write_json

    ckpt = load_checkpoint(args.checkpoint)
    cargs = ckpt["args"]
    metric = cargs["metric"]
    save_dir = Path(args.save_dir or Path(ckpt["path"]).parent / "influence")
    save_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(save_dir / "influence.log")
    device = pick_device(args.device)
    sim = simulator_from_checkpoint(ckpt, device).eval()
    train_path = args.train_data_path or cargs["train_data_path"]
    eval_path = args.eval_data_path or cargs["eval_data_path"]
    train_samples, eval_samples = check_task_files(ckpt, train_path, eval_path, sim)
    hib = metric_higher_is_better(metric) if args.higher_is_better == "auto" else args.higher_is_better == "yes"
    if args.top_k < 1:
        raise DataError(f"--top_k must be >= 1, got {args.top_k}")
    if args.self_influence:
        as_own_test_points(sim)  # a Simfluence checkpoint is refused here, before any work

    sim, test_rows, test_ids, texts = test_examples(args, sim, ckpt, eval_samples, device)
    batches, steps, init, values, mask, source, run_ids = load_curriculum(args, cargs, sim.n_train, test_ids)
    if test_rows is None:  # default selection: the run's test ids, or the whole test set
        test_ids = run_ids if run_ids is not None else list(range(sim.n_test))
        test_rows = test_ids
    test_rows = torch.as_tensor(test_rows, dtype=torch.long)
    N, R = len(test_rows), batches.shape[0]
    if args.init_value is not None:
        init = torch.full((R, N), float(args.init_value))
    elif init is None:
        raise DataError("--curriculum gives no recorded values: give --init_value (the value after its first step)")
    elif texts is not None:  # new texts have no recorded value: start them at the run's mean first value
        init = init.mean(1, keepdim=True).expand(R, N)
        log.info("new test texts start at the run's mean first value %.4g (override with --init_value)",
                 float(init.mean()))
    labels = texts if texts is not None else [eval_samples[i]["input"] for i in test_ids]
    insert = parse_steps(args.insert_steps, steps) if args.insert_steps else None
    if insert is not None and args.mode != "add":
        raise DataError("--insert_steps needs --mode add")

    res = influence(sim, batches.to(device), init.to(device), test_rows.to(device), mode=args.mode,
                    higher_is_better=hib, insert_steps=insert, chunk_size=args.chunk_size,
                    renormalize=bool(args.renormalize))
    scores, traj, used = res.final.mean(0).cpu(), res.trajectory.mean(0).cpu(), res.used.any(0).cpu()
    convention = sign_convention(args.mode, hib, metric)
    ranked = ranked_rows(scores, traj, used, res.train_idx, args.top_k, train_samples)
    base_final = res.baseline[..., -1].mean(0).cpu()
    results = [{"index": n, "test_id": None if test_ids is None else int(test_ids[n]), "test_text": labels[n],
                "baseline_final": float(base_final[n]), **ranked[n]} for n in range(N)]
    out = {"sign_convention": convention, "mode": args.mode, "metric": metric, "higher_is_better": hib,
           "checkpoint": ckpt["path"], "sim_name": ckpt["sim_name"], "curriculum": source,
           "runs": R, "steps": len(steps), "first_step": steps[0], "last_step": steps[-1],
           "insert_steps": args.insert_steps, "renormalize": bool(args.renormalize), "train_in_curriculum": int(used.sum()), "top_k": args.top_k,
           "train_data_path": train_path, "eval_data_path": eval_path, "results": results}
    header = (f"influence of {int(used.sum())} training examples (of {sim.n_train}) on {N} test examples; "
              f"{ckpt['sim_name']}, metric {metric}, mode {args.mode}, {len(steps)} steps, {R} run(s)")
    print_table(results, convention, header, args.text_chars)
    if args.what_if:
        truth = None if values is None or texts is not None else (values, mask)
        out["what_if"] = run_what_if(args, sim, batches, steps, init, test_rows, labels, hib, metric, truth, save_dir)
    if args.self_influence:
        out["self_influence"] = run_self_influence(args, sim, batches, init, hib, train_samples, save_dir, metric)
    if args.save_matrix:
        from gptfluence.io import atomic_open
        with atomic_open(save_dir / "influence_matrix.pt", "wb") as f:
            torch.save({"final": scores, "trajectory": traj, "used": used, "train_ids": res.train_idx,
                        "test_ids": test_ids, "convention": convention}, f)
    write_json(save_dir / "influence.json", out)
    write_csv(save_dir / "influence.csv", results)
    write_json(save_dir / "args.json", vars(args))
    print(f"\ninfluence: {save_dir / 'influence.json'}")
    return out


if __name__ == "__main__":
    from gptfluence.cli import run_main
    run_main(main)
