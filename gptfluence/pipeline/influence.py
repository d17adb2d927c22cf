"""Influence of training examples on test examples, read off a trained simulator, with its outputs.

    influence_report(InfluenceSpec(...)) -> dict (also written to <save_dir>/influence.json)

For every training example i the simulator is rolled out along the curriculum with i removed from every
batch it is in (mode "remove") or added once more to them (mode "add"; with insert_steps: inserted into
those steps instead), for all examples and test examples at once (gptfluence/influence.py).
Sign convention: influence > 0 means the training example HELPS the test example (its presence lowers the
loss, or raises BLEU / ROUGE). Scores are in the metric's units, averaged over the given runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..io import DataError, atomic_open, load_samples, write_json

log = logging.getLogger("gptfluence.pipeline")

OUTPUTS = ("influence.json", "influence.csv", "what_if.json", "self_influence.csv", "influence_matrix.pt",
           "args.json", "env.json")


@dataclass
class InfluenceSpec:
    checkpoint: str = ""
    run_dir: list | None = None
    curriculum: str | None = None
    init_value: float | None = None
    train_data_path: str | None = None
    eval_data_path: str | None = None
    test_ids: str | None = None
    test_texts: str | None = None
    top_k: int = 10
    mode: str = "remove"
    insert_steps: str | None = None
    renormalize: int = 1
    higher_is_better: str = "auto"
    what_if: str | None = None
    self_influence: bool = False
    save_matrix: bool = False
    chunk_size: int = 256
    plot_examples: int = 6
    text_chars: int = 60
    save_dir: str | None = None
    embedding_cache: str = "default"
    device: str = "cpu"
    allow_nonfinite: bool = False
    allow_unfinished: bool = False
    progress: bool = True


def check_influence_spec(s: InfluenceSpec) -> None:
    """Refuse bad settings before any work (one line naming the flag)."""
    if bool(s.run_dir) == bool(s.curriculum):
        raise DataError("give exactly one of --run_dir (a processed run dir) and --curriculum (a JSON file)")
    if s.top_k < 1:
        raise ValueError(f"--top_k must be >= 1, got {s.top_k}")
    if s.chunk_size < 1:
        raise ValueError(f"--chunk_size must be >= 1, got {s.chunk_size}")
    if s.init_value is not None and not math.isfinite(s.init_value):
        raise ValueError(f"--init_value must be a finite number, got {s.init_value}")
    if s.test_texts and s.test_ids:
        raise DataError("give --test_ids or --test_texts, not both")
    if s.insert_steps and s.mode != "add":
        raise DataError("--insert_steps needs --mode add")
    if s.curriculum and s.init_value is None:
        raise DataError("--curriculum gives no recorded values: give --init_value (the value after its first step)")


def default_save_dir(s: InfluenceSpec, ckpt_path: str) -> Path:
    """<checkpoint folder>/influence/<mode>-<hash of this call's settings>: one folder per distinct call."""
    keys = {k: v for k, v in asdict(s).items() if k not in ("save_dir", "device", "progress", "embedding_cache")}
    digest = hashlib.sha1(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(ckpt_path).parent / "influence" / f"{s.mode}-{digest}"


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------

def parse_steps(text: str, steps: list[int]) -> list[int]:
    """--insert_steps '10,20-30' (curriculum steps) -> slot indices 1..T-1."""
    from ..runs import parse_id_ranges
    slot = {s: t for t, s in enumerate(steps)}
    out = []
    for s in parse_id_ranges(text):
        if s not in slot or slot[s] == 0:
            raise DataError(f"--insert_steps: step {s} is not a simulated step of the curriculum "
                            f"(steps {steps[1] if len(steps) > 1 else '-'}..{steps[-1]})")
        out.append(slot[s])
    return out


def load_curriculum(spec: InfluenceSpec, cspec: dict, n_train: int, test_ids):
    """(batches [R, T, M], steps [T], init [R, N] or None, true values [R, N, T] or None, mask or None, source,
    the run's test ids or None)."""
    from ..influence import read_curriculum
    from ..runs import load_runs, validate_ids
    from ..training import Dynamics
    if spec.curriculum:
        batches, steps = read_curriculum(spec.curriculum, n_train)
        return batches[None], steps, None, None, None, str(spec.curriculum), None
    rs = load_runs(spec.run_dir, metric=cspec["metric"], test_ids=test_ids, allow_nonfinite=spec.allow_nonfinite)
    validate_ids(rs, n_train)
    data = Dynamics.from_runset(rs)
    if cspec.get("step_thres") is not None:
        data = data.up_to(cspec["step_thres"])
    data = data.every(cspec.get("cp_interval") or 1)
    if not bool(data.mask[..., 0].all()):
        r, n = (~data.mask[..., 0]).nonzero()[0].tolist()
        raise DataError(f"{rs.names[r]}: test id {int(rs.test_ids[n])} has no value at the first recorded step "
                        f"{int(data.steps[0])}; give --init_value")
    return (data.batches, data.steps.tolist(), data.values[..., 0], data.values, data.mask,
            ", ".join(str(d) for d in spec.run_dir), rs.test_ids.tolist())


def test_examples(spec: InfluenceSpec, sim, ckpt, device):
    """(simulator, test_rows [N] or None, ids list or None, texts list or None). New texts need a feature
    simulator."""
    import copy

    from ..encoders import embed_samples
    from ..runs import parse_id_ranges
    if spec.test_texts:
        texts = read_texts(spec.test_texts)
        if not sim.uses_features:
            raise DataError(f"{spec.test_texts}: {sim.name} has free factors per test id and cannot embed or "
                            "simulate new texts; use a feature simulator (enc_sim, norder_enc_sim, gpt_sim) or "
                            "--test_ids")
        # embedded as the checkpoint's examples were (a text is a sample's whole input, with no separate prompt:
        # simulators that embed the target too, anchor_sim's, take the whole text as the target)
        emb = embed_samples([{"input": t} for t in texts], ckpt["encoder"], spec.embedding_cache, device,
                            spec.progress)
        sim = copy.deepcopy(sim)
        sim.set_examples(test_emb=emb)
        return sim, torch.arange(len(texts)), None, texts
    ids = parse_id_ranges(spec.test_ids) if spec.test_ids else None
    if ids is not None:
        bad = [i for i in ids if not 0 <= i < sim.n_test]
        if bad:
            raise DataError(f"--test_ids: test ids {bad[:10]} outside the test set (expected ids 0..{sim.n_test - 1})")
    return sim, ids, ids, None


def read_texts(path) -> list[str]:
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
    """Per test example: {"helpful": [...], "harmful": [...]}: at most k each, helpful ones with a positive
    score (descending), harmful ones with a negative score (ascending); ids, scores and texts."""
    from ..influence import top_k
    hi, hs, li, ls = top_k(scores, k, used)
    out = []
    for n in range(scores.shape[1]):
        row = {}
        for kind, rows, vals, keep in (("helpful", hi, hs, lambda v: v > 0), ("harmful", li, ls, lambda v: v < 0)):
            row[kind] = [{"train_id": int(train_idx[r]), "score": float(v), "trajectory_score": float(traj[r, n]),
                          "text": train_samples[int(train_idx[r])]["input"]}
                         for r, v in zip(rows[n].tolist(), vals[n].tolist()) if keep(v)]
        out.append(row)
    return out


def write_csv(path, results: list[dict]) -> None:
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
    if results and not any(r["helpful"] or r["harmful"] for r in results):
        print("every influence is 0: the simulator predicts the same trajectories whatever the batches (the anchor "
              "sims do so when cross-validation, or the guard that judges the whole fit on runs it did not see, "
              "finds that the batches of their training runs explain nothing that holds on held-out runs; the "
              "train.log and the checkpoint's `chosen` and `guard` say which)")
    for r in results:
        name = f"test id {r['test_id']}" if r["test_id"] is not None else f"test text {r['index']}"
        print(f"\n{name} (baseline final {r['baseline_final']:.4g}): {clip(r['test_text'], chars)}")
        if not (r["helpful"] or r["harmful"]):
            print("  no training example changes this prediction")
            continue
        print(f"  {'rank':>4}  {'helpful id':>10} {'score':>11}  {'harmful id':>10} {'score':>11}  helpful text")
        for k in range(max(len(r["helpful"]), len(r["harmful"]))):
            h = r["helpful"][k] if k < len(r["helpful"]) else None
            b = r["harmful"][k] if k < len(r["harmful"]) else None
            hid, hsc = (h["train_id"], f"{h['score']:+.4g}") if h else ("", "")
            bid, bsc = (b["train_id"], f"{b['score']:+.4g}") if b else ("", "")
            print(f"  {k + 1:>4}  {hid:>10} {hsc:>11}  {bid:>10} {bsc:>11}  {clip(h['text'], chars) if h else ''}")


def _on_union(steps_a: list[int], steps_b: list[int]):
    """Union of two step lists and, for each, the positions of its steps in the union."""
    union = sorted(set(steps_a) | set(steps_b))
    pos = {s: i for i, s in enumerate(union)}
    return union, [pos[s] for s in steps_a], [pos[s] for s in steps_b]


def _on_grid(values: list[float], where: list[int], size: int) -> list[float]:
    out = [float("nan")] * size
    for v, i in zip(values, where):
        out[i] = float(v)
    return out


def run_what_if(spec, sim, batches, steps, init, test_rows, labels, hib, metric, truth, save_dir) -> dict:
    """Simulate spec.what_if against the baseline curriculum; write what_if.json and a plot."""
    from ..influence import compare_curricula, read_curriculum
    from ..plots import plot_trajectories
    wi, wsteps = read_curriculum(spec.what_if, sim.n_train)
    cmp = compare_curricula(sim, batches, wi, init, test_rows, hib)
    gain_f, gain_m = cmp["gain_final"].mean(0), cmp["gain_mean"].mean(0)
    summary = {"file": str(spec.what_if), "steps": len(wsteps),
               "convention": "gain > 0 = the what-if curriculum ends better than the baseline (final) or is "
                             "better on average over its simulated steps (mean); mean over runs",
               "mean_gain_final": float(gain_f.mean()), "mean_gain_mean": float(gain_m.mean()),
               "examples": [{"label": lab, "baseline_final": float(cmp["baseline"][:, n, -1].mean()),
                             "what_if_final": float(cmp["what_if"][:, n, -1].mean()),
                             "gain_final": float(gain_f[n]), "gain_mean": float(gain_m[n])}
                            for n, lab in enumerate(labels)]}
    write_json(save_dir / "what_if.json", summary)
    k = min(spec.plot_examples, len(labels))
    if k > 0:
        union, pa, pb = _on_union(steps, wsteps)
        curves = []
        for n in range(k):
            gt = None
            if truth is not None:
                vals, mask = truth
                gt = _on_grid([v if m else float("nan") for v, m in zip(vals[0, n].tolist(), mask[0, n].tolist())],
                              pa, len(union))
            curves.append({"title": clip(labels[n], 40), "gt": gt or [],
                           "pred": {"baseline": _on_grid(cmp["baseline"][0, n].tolist(), pa, len(union)),
                                    "what-if": _on_grid(cmp["what_if"][0, n].tolist(), pb, len(union))}})
        plot_trajectories(save_dir / f"what_if_{metric}.png", union, curves, metric)
    print(f"\nwhat-if {spec.what_if}: mean gain over test examples {summary['mean_gain_final']:+.4g} (final), "
          f"{summary['mean_gain_mean']:+.4g} (trajectory mean); positive = the what-if curriculum is better")
    return summary


def run_self_influence(spec, sim, batches, init, hib, train_samples, save_dir, metric) -> dict:
    """Self-influence of every training example; writes self_influence.csv."""
    from ..influence import self_influence, sign_convention
    start = spec.init_value if spec.init_value is not None else float(init.mean())
    res = self_influence(sim, batches, start, mode=spec.mode, higher_is_better=hib, renormalize=bool(spec.renormalize))
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
            "text": train_samples[i]["input"]} for i in order[:spec.top_k] if bool(used[i])]
    print(f"\nself-influence (initial value {start:.4g}); top {len(top)} of {int(used.sum())} examples in the "
          "curriculum:")
    for e in top:
        print(f"  {e['train_id']:>6} {e['score']:+.4g}  {clip(e['text'], spec.text_chars)}")
    return {"convention": sign_convention(spec.mode, hib, metric) + " (the example as its own test point)",
            "initial_value": start, "top": top, "file": str(save_dir / "self_influence.csv")}


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------

def _initial_values(spec, init, R, N, texts):
    if spec.init_value is not None:
        return torch.full((R, N), float(spec.init_value))
    if texts is not None:  # new texts have no recorded value: start them at the run's mean first value
        log.info("new test texts start at the run's mean first value %.4g (override with --init_value)",
                 float(init.mean()))
        return init.mean(1, keepdim=True).expand(R, N)
    return init


def influence_report(spec: InfluenceSpec) -> dict:
    """Scores, top-k lists (and optionally what-if, self-influence, the full matrix); writes them to the call's
    own folder (default <checkpoint folder>/influence/<mode>-<hash>). Returns the influence.json dict."""
    from .. import checkpoint as C
    from ..influence import as_own_test_points, influence, metric_higher_is_better, sign_convention
    from ..runtime import relative, resolve_device
    check_influence_spec(spec)
    ckpt = _checked_checkpoint(spec)
    cspec = ckpt["spec"]
    metric = cspec["metric"]
    device = resolve_device(spec.device)
    train_path = spec.train_data_path or cspec["train_file"]
    eval_path = spec.eval_data_path or cspec["eval_file"]
    sim = C.simulator_for_files(ckpt, train_path, eval_path, spec.embedding_cache, device, spec.progress).eval()
    train_samples, eval_samples = load_samples(train_path), load_samples(eval_path)
    hib = metric_higher_is_better(metric) if spec.higher_is_better == "auto" else spec.higher_is_better == "yes"
    if spec.self_influence:
        as_own_test_points(sim)  # a Simfluence checkpoint is refused here, before any work
    save_dir = Path(spec.save_dir) if spec.save_dir else default_save_dir(spec, ckpt["path"])
    sim, test_rows, test_ids, texts = test_examples(spec, sim, ckpt, device)
    batches, steps, init, values, mask, source, run_ids = load_curriculum(spec, cspec, sim.n_train, test_ids)
    if test_rows is None:  # default selection: the run's test ids, or the whole test set
        test_ids = run_ids if run_ids is not None else list(range(sim.n_test))
        test_rows = test_ids
    unseen_train = _unseen_train_ids(ckpt, sim, batches, test_rows)
    test_rows = torch.as_tensor(test_rows, dtype=torch.long)
    N, R = len(test_rows), batches.shape[0]
    init = _initial_values(spec, init, R, N, texts)
    labels = texts if texts is not None else [eval_samples[i]["input"] for i in test_ids]
    insert = parse_steps(spec.insert_steps, steps) if spec.insert_steps else None
    _clear_outputs(save_dir)

    res = influence(sim, batches.to(device), init.to(device), test_rows.to(device), mode=spec.mode,
                    higher_is_better=hib, insert_steps=insert, chunk_size=spec.chunk_size,
                    renormalize=bool(spec.renormalize))
    scores, traj, used = res.final.mean(0).cpu(), res.trajectory.mean(0).cpu(), res.used.any(0).cpu()
    used[[i for i in unseen_train if i < len(used)]] = False
    convention = sign_convention(spec.mode, hib, metric)
    ranked = ranked_rows(scores, traj, used, res.train_idx, spec.top_k, train_samples)
    base_final = res.baseline[..., -1].mean(0).cpu()
    results = [{"index": n, "test_id": None if test_ids is None else int(test_ids[n]), "test_text": labels[n],
                "baseline_final": float(base_final[n]), **ranked[n]} for n in range(N)]
    out = {"sign_convention": convention, "mode": spec.mode, "metric": metric, "higher_is_better": hib,
           "checkpoint": relative(ckpt["path"]), "sim_name": ckpt["sim_name"], "curriculum": source,
           "runs": R, "steps": len(steps), "first_step": steps[0], "last_step": steps[-1],
           "insert_steps": spec.insert_steps, "renormalize": bool(spec.renormalize),
           "train_in_curriculum": int(used.sum()), "unranked_unseen_train_ids": unseen_train, "top_k": spec.top_k,
           "train_data_path": relative(train_path), "eval_data_path": relative(eval_path),
           "save_dir": relative(save_dir), "results": results}
    header = (f"influence of {int(used.sum())} training examples (of {sim.n_train}) on {N} test examples; "
              f"{ckpt['sim_name']}, metric {metric}, mode {spec.mode}, {len(steps)} steps, {R} run(s)")
    print_table(results, convention, header, spec.text_chars)
    if spec.what_if:
        truth = None if values is None or texts is not None else (values, mask)
        out["what_if"] = run_what_if(spec, sim, batches, steps, init, test_rows, labels, hib, metric, truth, save_dir)
    if spec.self_influence:
        out["self_influence"] = run_self_influence(spec, sim, batches, init, hib, train_samples, save_dir, metric)
    if spec.save_matrix:
        with atomic_open(save_dir / "influence_matrix.pt", "wb") as f:
            torch.save({"final": scores, "trajectory": traj, "used": used, "train_ids": res.train_idx,
                        "test_ids": test_ids, "convention": convention}, f)
    _write_outputs(spec, save_dir, out, results, ckpt["path"])
    return out


def _checked_checkpoint(spec: InfluenceSpec) -> dict:
    """The checkpoint, refused when its training did not finish (unless allowed) or when it is a baseline that
    ignores the batches (every influence would be zero)."""
    from .. import checkpoint as C
    ckpt = C.load_checkpoint(spec.checkpoint)
    C.check_finished(ckpt, spec.allow_unfinished)
    if not getattr(C.simulator_class(ckpt["sim_name"]), "uses_batches", True):
        raise DataError(f"{ckpt['path']}: {ckpt['sim_name']} ignores the batches (a baseline), so every training "
                        "example has zero influence; use a simulator checkpoint")
    return ckpt


def _unseen_train_ids(ckpt: dict, sim, batches: torch.Tensor, test_rows) -> list[int]:
    """Training ids of the curriculum that a simulator with free factors per id never trained on (left out of
    the rankings, with a warning); such a simulator refuses unseen test ids. [] for feature simulators."""
    from .. import checkpoint as C
    if sim.handles_unseen_ids:
        return []
    C.refuse_unseen_ids(ckpt, list(test_rows), [])
    seen = set(ckpt["data"].get("seen_train_ids") or range(sim.n_train))
    unseen = sorted(set(torch.unique(batches[:, 1:][batches[:, 1:] >= 0]).tolist()) - seen)
    if unseen:
        log.warning("%s has free factors per id and never trained on %d training ids of this curriculum (%s): "
                    "they are left out of the rankings", ckpt["sim_name"], len(unseen), unseen[:8])
    return unseen


def _clear_outputs(save_dir: Path) -> None:
    """Remove an earlier call's outputs from the call's folder (none of them may survive beside new ones)."""
    for name in OUTPUTS:
        (save_dir / name).unlink(missing_ok=True)
    for old in save_dir.glob("what_if_*.png") if save_dir.is_dir() else []:
        old.unlink()
    save_dir.mkdir(parents=True, exist_ok=True)


def _write_outputs(spec: InfluenceSpec, save_dir: Path, out: dict, results: list, checkpoint_path) -> None:
    from ..runtime import relative, write_env_json
    write_json(save_dir / "influence.json", out)
    write_csv(save_dir / "influence.csv", results)
    write_json(save_dir / "args.json", asdict(spec))
    write_env_json(save_dir, checkpoint=relative(checkpoint_path))
    print(f"\ninfluence: {save_dir / 'influence.json'}")
