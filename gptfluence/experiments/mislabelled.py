"""Mislabelled-data experiment of the paper on the built-in sentiment task (sst2).

  1. a noisy training pool: label_noise (default 40%) of the sst2 training labels flipped (the clean label is
     kept in "clean_label", "flipped" marks them); the test set keeps its true labels;
  2. simulator-training runs on the noisy pool (a sample of the pool per run, epochs * shot / sample epochs so that
     they have as many steps as the target run: the simulators roll out curricula of the length they were fitted
     on), the simulators trained on them. With own_test_points (the default) these runs record, beside the test
     set, every pool example's own loss on its (noisy) label: self-influence takes an example as its own test
     point, and so the simulators are fitted on such points, flipped ones included, not only on clean test data;
  3. the TARGET run: the whole noisy pool (sample = shot), seed target_seed, with gradient features;
  4. every training example is ranked, most suspicious first, by
       the simulator's self-influence along the target run's curriculum,
       TracIn-CP self-influence (sum over recorded checkpoints of lr_k <g_i, g_i>, the target run's grads),
       random order (n_shuffles shuffles);
  5. for each fraction f the labels of the top f of the ranking are restored to the clean labels (a new training
     file), the target run is re-made on it (eval_runs times: seeds target_seed, target_seed + 1, ..., each its own
     curriculum over the whole pool), and the final model's test accuracy (label-word scoring, recorded by the run
     maker) and mean test loss, averaged over the re-made runs, are measured on eval_n_test held-out test examples
     (true labels; a test set of its own, as large as wanted, since it is scored once per run). One re-made run on
     the 100 test examples of the simulator-training runs moved by up to 6 points of accuracy when a few labels were
     fixed (0.84 -> 0.78-0.81), more than what the rankings differ by;
  6. the table adds each order's accuracy and test loss averaged over the fractions (the area under its curve;
     random's per shuffle too) and, in a second table, which labels each order restored and the test loss per
     true test label: fixing mostly one label shifts the model's label prior. With order = "label_balanced"
     every order (random's shuffles included) is taken one example of each noisy label in turn. With
     flipped_controls = K, K random sets of flipped labels, as many as anchor_lex_sim's order fixed at each
     fraction, are re-made too: what the flipped labels it finds first are worth against others.

Sign convention of the ranking (both scores: larger = more suspicious). Self-influence > 0 means the example's
presence lowers its OWN loss. A mislabelled example contradicts what the other examples teach, so its own
(noisy) label is predicted only by learning from the example itself: removing it raises its own loss much more
than removing a correctly labelled example. TracIn-CP's self-influence lr <g_i, g_i> is large for the same
reason (a large, persistent gradient). Both rankings are in DESCENDING score order.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..io import DataError, atomic_open, load_samples, read_json, write_json, write_jsonl
from ..runtime import relative
from .common import ANCHOR, GPTFLUENCE, Workspace
from .influence_check import final_losses, set_name

log = logging.getLogger("gptfluence.experiments")

TASK = "sst2"
PRESETS = {
    "quick": dict(model="tiny", shot=40, sample=20, runs=4, n_test=30, bs=4, epochs=2, lr=1e-3, grad_steps="all",
                  grad_dim=64, random_runs=1, eval_n_test=None, eval_runs=1),
    # the target run (whole pool, 150 steps at lr 5e-4) learns sst2 through 40% flipped labels (test accuracy
    # about 0.8; 0.93 with every label fixed), so fixing labels has an effect to measure; at lr 1e-3 and 50 steps
    # it stayed at chance with and without the flips. 32 simulator-training runs: with 8, what leaving an example
    # out does to its own loss is too noisy to rank by (halves of 4 runs agree at 0.41; of 16 runs at 0.81), and
    # anchor_lex_sim found 0.275 of the flipped labels in its top 20% (0.40 with 32)
    # Accuracy after fixing: the mean of 3 re-made runs (3 curricula) on 1,000 held-out test examples; random order
    # over 5 shuffles (with 2, their means differed by up to 4.5 points at one fraction)
    "default": dict(model="small", shot=100, sample=40, runs=32, n_test=100, bs=4, epochs=6, lr=5e-4,
                    grad_steps="10", grad_dim=256, random_runs=5, eval_n_test=1000, eval_runs=3),
}
SIMULATORS = {"gptfluence": GPTFLUENCE, "anchor_lex_sim": ANCHOR}
METHODS = (*SIMULATORS, "tracin_cp", "random")
LABELS = {"gptfluence": "GPTfluence", "anchor_lex_sim": "anchor_lex_sim", "tracin_cp": "TracIn-CP", "random": "random"}


def parse_fractions(text: str) -> list[float]:
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DataError(f"--fractions {text!r}: expected a comma list of numbers in (0, 1]") from None
    if not out or any(not 0 < f <= 1 for f in out):
        raise DataError(f"--fractions {text!r}: expected a comma list of numbers in (0, 1]")
    return out


def relabel(samples: list[dict], ids) -> list[dict]:
    """Copies of `samples` with the examples `ids` given back their clean label ("clean_label"): label, output,
    target and input re-rendered, "flipped" False. Other samples are unchanged copies."""
    from ..tasks import LABEL_WORDS
    fix = set(int(i) for i in ids)
    out = []
    for s in samples:
        s = dict(s)
        if s["id"] in fix:
            if "clean_label" not in s:
                raise DataError(f"sample id {s['id']}: no 'clean_label' to restore")
            s["label"] = int(s["clean_label"])
            s["output"] = LABEL_WORDS[TASK][s["label"]]
            s["target"] = " " + s["output"]
            s["input"] = s["context"] + s["target"]
            s["flipped"] = False
        out.append(s)
    return out


def run_spec(args, train_file, eval_file):
    """The simulator-training runs: a sample of the pool each, with the target run's number of steps."""
    from ..pipeline import RunSpec
    return RunSpec(task=TASK, seeds=list(range(1, args.runs + 1)), train_file=str(train_file), eval_file=str(eval_file),
                   model=args.model, shot=args.shot, sample=args.sample, bs=args.bs,
                   epochs=args.epochs * args.shot // args.sample, lr=args.lr)


def target_run(ws: Workspace, args, train_file, eval_file, out: Path, grads: bool = False,
               seeds: list[int] | None = None) -> dict:
    """Make the target run (whole pool; seed target_seed, or each of `seeds`) on a training file: {"accuracy"
    (0-1, final model), "loss" (mean final test loss, nats): means over the seeds' runs, "run_dir" (the first
    seed's), "per_run" [{"seed", "accuracy", "loss"}], "loss_by_label" {test label: its examples' mean final
    loss, mean over the seeds}}. Kept when made before."""
    from ..pipeline import make_runs
    seeds = list(seeds or [args.target_seed])
    # a call makes a few short runs: in the open worker pool of the experiment when there is one (no start-up), else
    # in this process, where starting worker processes would cost as much as the runs (the files do not depend on
    # which process made them)
    spec = replace(run_spec(args, train_file, eval_file), seeds=seeds, sample=args.shot,
                   epochs=args.epochs, record_interval=10 ** 6, output_dir=str(out), device=ws.device,
                   threads=ws.threads, workers=0 if ws.pools is not None else 1, progress=False, summary=False,
                   model_cache=ws.model_cache)
    if grads:
        spec = replace(spec, grad_features=True, grad_steps=args.grad_steps, grad_dim=args.grad_dim)
    test_labels = {int(t["id"]): int(t["label"]) for t in load_samples(eval_file)}
    per_run, by_label = [], {}
    for seed, run_dir in zip(seeds, make_runs(spec, ws.pools)):
        done = read_json(run_dir / "run_done.json")
        if "label_accuracy_last" not in done:
            raise DataError(f"{run_dir}: no label accuracy recorded (the test samples need integer labels)")
        losses = final_losses(run_dir, TASK)
        for y in sorted(set(test_labels.values())):
            own = [v for i, v in losses.items() if test_labels[i] == y]
            by_label.setdefault(str(y), []).append(sum(own) / len(own))
        per_run.append({"seed": seed, "accuracy": done["label_accuracy_last"],
                        "loss": sum(losses.values()) / len(losses), "run_dir": str(run_dir)})
    return {"accuracy": sum(r["accuracy"] for r in per_run) / len(per_run),
            "loss": sum(r["loss"] for r in per_run) / len(per_run), "run_dir": per_run[0]["run_dir"],
            "per_run": [{k: v for k, v in r.items() if k != "run_dir"} for r in per_run],
            "loss_by_label": {y: sum(v) / len(v) for y, v in by_label.items()}}


def evaluation_file(ws: Workspace, args, samples: list[dict], eval_file) -> str:
    """The test set the re-made runs are scored on: the simulator-training runs' own (eval_file) when
    eval_n_test equals n_test, else a built-in sst2 test set of eval_n_test examples (true labels) generated with
    the same data seed, written once beside the task files. Its pool must be the noisy pool in use (checked),
    and no test input is a pool input (the generator keeps them apart; checked too)."""
    from ..tasks import build_task, task_file_paths
    if args.eval_n_test == args.n_test:
        return str(eval_file)
    pool, test = build_task(TASK, args.shot, args.eval_n_test, args.data_seed, label_noise=args.label_noise)
    if [(s["input"], s["label"]) for s in pool] != [(s["input"], s["label"]) for s in samples]:
        raise DataError(f"the built-in sst2 generator (data seed {args.data_seed}) no longer gives the noisy pool in "
                        "use: cannot make a held-out evaluation set for it; pass --eval_n_test "
                        f"{args.n_test} to score the re-made runs on the simulator-training runs' test set")
    inputs = {s["context"] for s in samples}
    clash = [s["id"] for s in test if s["context"] in inputs]
    if clash:
        raise DataError(f"evaluation set of {args.eval_n_test}: test ids {clash[:5]} are pool examples")
    path = task_file_paths(ws.root / "data" / "eval", TASK, args.shot, args.eval_n_test)[1]
    if not path.is_file():
        write_jsonl(path, test)
    return str(path)


def adopt_old_remake_folder(root: Path, eval_n_test: int) -> Path:
    """root / f"eval{eval_n_test}", the folder of the re-made runs scored on that evaluation set. A work folder
    from before it was one folder per set has eval<N>_runs<R>/ instead (the same runs, one per seed): the one
    with the most seeds is renamed to it, so its runs are kept rather than made again."""
    new = root / f"eval{eval_n_test}"
    runs = {p: p.name.rsplit("_runs", 1)[1] for p in root.glob(f"eval{eval_n_test}_runs*")}
    old = sorted((p for p, r in runs.items() if r.isdigit()), key=lambda p: int(runs[p]))
    if not new.exists() and old:
        log.info("re-made runs of %s moved to %s (one folder per evaluation set now)", old[-1], new)
        old[-1].rename(new)
    return new


def target_curriculum(args):
    """The target run's batches [T, M] (-1 padded), laid out as processed runs are: row t holds the batch of
    optimizer step t + 1, and row 0 (step 1) is not simulated, since the initial value (the simulator-training
    runs' mean first recorded loss) is the value after step 1."""
    from ..runmaker import make_curriculum
    batches = make_curriculum(args.shot, args.shot, args.bs, args.epochs, args.target_seed)
    out = torch.full((len(batches), max(len(b) for b in batches)), -1, dtype=torch.long)
    for t, b in enumerate(batches):
        out[t, :len(b)] = torch.tensor(b)
    return out


def own_test_points_file(ws: Workspace, key: str, samples: list[dict], eval_file) -> str:
    """The test file of the simulator-training runs with own test points: the test set (ids 0..n-1), then every
    pool example as a test point of its own (id n + pool id, its noisy label as the target). The pool rows carry
    no integer "label", so no label accuracy is computed over noisy labels."""
    test = load_samples(eval_file)
    rows = [*test, *({k: v for k, v in s.items() if k not in ("label", "clean_label", "flipped")}
                     | {"id": len(test) + s["id"]} for s in samples)]
    path = ws.root / "data" / "own_test_points" / f"{key.replace('/', '_')}.json"
    if not path.is_file():
        write_jsonl(path, rows)
    return str(path)


def simulator_scores(args, ckpt_dir: Path, sim_dirs: list[str]):
    """Self-influence [P] of every pool example along the target curriculum (remove mode, loss: > 0 = the
    example lowers its own loss). Starts from the mean first loss of the pool examples as test points when the
    runs recorded them (own test points), else of the test set, over the simulator-training runs."""
    from ..checkpoint import load_checkpoint, simulator_from_checkpoint
    from ..influence import self_influence
    from ..runs import load_runs
    sim = simulator_from_checkpoint(load_checkpoint(ckpt_dir)).eval()
    rs = load_runs(sim_dirs)
    first, seen = rs.values[..., 0], rs.mask[..., 0]
    own = rs.test_ids >= args.n_test
    if bool(own.any()):
        first, seen = first[:, own], seen[:, own]
    init = float(first[seen].mean())
    res = self_influence(sim, target_curriculum(args), init)
    return torch.nan_to_num(res.final[0, :, 0].float(), nan=0.0), init


def reference_scores(args, sim_dirs: list[str]) -> dict | None:
    """Two rankings of the pool read off the simulator-training runs (no simulator), for reference: how far the
    runs themselves separate the flipped labels. {"own_final_loss": [P] each pool example's own final loss (noisy
    label), averaged over the runs; "leave_out": [P] its mean own final loss in the runs whose sample left it out
    minus that in the runs that trained on it (> 0: training on it lowers its own loss, as self-influence > 0 says:
    the quantity the simulators' self-influence estimates; 0 for an example every run, or none, trained on)}, or None
    without own test points."""
    from ..runs import load_runs
    from ..simulators.base import batch_counts
    rs = load_runs(sim_dirs)
    own = rs.test_ids >= args.n_test
    if not bool(own.any()):
        return None
    pool = (rs.test_ids[own] - args.n_test).long()
    last, seen = rs.values[:, own, -1].double(), rs.mask[:, own, -1]
    trained = (batch_counts(rs.batches.reshape(rs.num_runs, -1), args.shot) > 0)[:, pool]   # [R, own points]
    with_it, without = seen & trained, seen & ~trained

    def mean(m):
        return (last * m).sum(0) / m.sum(0).clamp(min=1)

    both = (with_it.sum(0) > 0) & (without.sum(0) > 0)
    out = {name: torch.zeros(args.shot, dtype=torch.float64) for name in ("own_final_loss", "leave_out")}
    out["own_final_loss"][pool] = mean(seen)
    out["leave_out"][pool] = torch.where(both, mean(without) - mean(with_it), torch.zeros_like(last[0]))
    return out


def rank(scores) -> list[int]:
    """Ids in descending score order (ties: lower id first)."""
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))


def label_balanced(order: list[int], labels: dict[int, int]) -> list[int]:
    """The ids of `order` taken one of each label in turn (labels in the order their first id appears), each
    label's ids in their order; when a label runs out the others go on. Fixing the first n of a plain ranking can
    change the pool's label balance (anchor_lex_sim's 9 flipped labels among its top 10 on the default preset: 7
    restored to the negative label), which moves every test example of one label; taken in turn, the top n
    restore labels in both directions alike."""
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(labels[i], []).append(i)
    queues = [list(reversed(g)) for g in groups.values()]
    out = []
    while queues:
        for q in queues:
            out.append(q.pop())
        queues = [q for q in queues if q]
    return out


def found_fraction(order: list[int], n: int, flipped: set[int]) -> float:
    return len(set(order[:n]) & flipped) / max(1, len(flipped))


def write_table(path: Path, res: dict) -> str:
    s = res["settings"]
    n_eval, n_runs = s.get("eval_n_test", s["n_test"]), s.get("eval_runs", 1)
    if (n_eval, n_runs) == (s["n_test"], 1):
        title, runs_word = f"{s['n_test']} test examples", "the noisy target run"
    else:
        title = (f"{s['n_test']} test examples in the simulator-training runs; accuracy and test loss after fixing: "
                 f"the mean of {n_runs} re-made runs on {n_eval:,} held-out test examples")
        runs_word = f"the noisy target run (mean of {n_runs} seeds)"
    lines = [f"#### Mislabelled-data detection (sst2 built-in, {s['model']} model, {s['shot']} training examples, "
             f"{res['n_flipped']} labels flipped = {s['label_noise']:.0%}, {title}, "
             f"{s['runs']} simulator-training runs"
             + (", every order label-balanced" if s.get("order", "plain") != "plain" else "") + ")", "",
             f"Test accuracy (test loss) of {runs_word}: {res['noisy']['accuracy']:.3f} "
             f"({res['noisy']['loss']:.4f}); with every label fixed: {res['clean']['accuracy']:.3f} "
             f"({res['clean']['loss']:.4f}). Random: found = mean over {s['n_shuffles']} shuffles, accuracy = "
             f"mean over {s['random_runs']} of them (re-made runs)." + _balanced_line(s) + _own_loss_line(res), "",
             *[line for text in (_curve_line(res), _control_line(res)) if text for line in (text, "")],
             "| fraction checked | " + " | ".join(f"found: {LABELS[m]}" for m in METHODS) + " | "
             + " | ".join(f"acc: {LABELS[m]}" for m in METHODS) + " | "
             + " | ".join(f"test loss: {LABELS[m]}" for m in METHODS) + " |",
             "|---" * (1 + 3 * len(METHODS)) + "|"]
    for row in res["rows"]:
        cells = ([f"{row['found'][m]:.3f}" for m in METHODS] + [f"{row['accuracy'][m]:.3f}" for m in METHODS]
                 + [f"{row['test_loss'][m]:.4f}" for m in METHODS])
        lines.append(f"| {row['fraction']:.1f} | " + " | ".join(cells) + " |")
    lines += _by_label_lines(res)
    text = "\n".join(lines) + "\n"
    with atomic_open(path, "w") as f:
        f.write(text)
    return text


def curve_means(rows: list[dict]) -> dict:
    """How fast each ranking recovers: the accuracy and test loss after fixing, averaged over the fractions
    checked (with evenly spaced fractions, the area under each curve of the plot), per method; for random also
    per shuffle ("random_shuffles": [{"accuracy", "loss"}], the spread of the random order). Rows of a results
    file written before the shuffles were kept have no per-shuffle values: then that entry is missing."""
    out = {k: {m: sum(r[k][m] for r in rows) / len(rows) for m in METHODS} for k in ("accuracy", "test_loss")}
    if all("random_shuffles" in r for r in rows):
        n = min(len(r["random_shuffles"]) for r in rows)
        out["random_shuffles"] = [{k: sum(r["random_shuffles"][j][k] for r in rows) / len(rows)
                                   for k in ("accuracy", "loss")} for j in range(n)]
    return out


def _curve_line(res: dict) -> str:
    c = curve_means(res["rows"])
    fr = ", ".join(f"{r['fraction']:g}" for r in res["rows"])
    text = (f"How fast each order recovers, averaged over the fractions checked ({fr}; the area under the curves): "
            "accuracy " + ", ".join(f"{LABELS[m]} {c['accuracy'][m]:.3f}" for m in METHODS)
            + "; test loss " + ", ".join(f"{LABELS[m]} {c['test_loss'][m]:.4f}" for m in METHODS))
    if "random_shuffles" in c:
        text += ("; the random shuffles one by one: accuracy "
                 + ", ".join(f"{x['accuracy']:.3f}" for x in c["random_shuffles"]) + ", test loss "
                 + ", ".join(f"{x['loss']:.4f}" for x in c["random_shuffles"]))
    return text + "."


def _by_label_lines(res: dict) -> list[str]:
    """The labels each order restores and the test loss per test label after fixing (a second table), when the
    rows have them."""
    from ..tasks import LABEL_WORDS
    rows = res["rows"]
    if not all("restored" in r and "test_loss_by_label" in r for r in rows):
        return []
    ys = sorted(rows[0]["restored"]["random"], key=int)
    words = " / ".join(LABEL_WORDS[TASK][int(y)] for y in ys)
    noisy = res["noisy"].get("loss_by_label")
    head = (f"Which labels each order restores ({words}; random: the mean over its shuffles), and the mean test "
            f"loss of the test examples of each true label ({words}) after fixing"
            + (f"; noisy target run: {' / '.join(f'{noisy[y]:.4f}' for y in ys)}" if noisy else "") + ":")
    out = ["", head, "",
           "| fraction checked | " + " | ".join(f"restored: {LABELS[m]}" for m in METHODS) + " | "
           + " | ".join(f"test loss by label: {LABELS[m]}" for m in METHODS) + " |",
           "|---" * (1 + 2 * len(METHODS)) + "|"]
    for r in rows:
        cells = ([" / ".join(f"{r['restored'][m][y]:g}" for y in ys) for m in METHODS]
                 + [" / ".join(f"{r['test_loss_by_label'][m][y]:.4f}" for y in ys) for m in METHODS])
        out.append(f"| {r['fraction']:.1f} | " + " | ".join(cells) + " |")
    return out


def _balanced_line(settings: dict) -> str:
    if settings.get("order", "plain") == "plain":
        return ""
    return (" Every order (random's shuffles and the two reference rankings too) is taken one example of each noisy "
            "label in turn, each label's examples in their ranked order (--order label_balanced).")


def _own_loss_line(res: dict) -> str:
    found = [r.get("found_by_own_final_loss") for r in res["rows"]]
    if any(f is None for f in found):
        return ""
    text = (" No simulator, for reference: ranked by their own final loss in the simulator-training runs, the "
            "examples found would be " + ", ".join(f"{f:.3f}" for f in found) + " at the fractions below")
    left = [r.get("found_by_leave_out") for r in res["rows"]]
    if not any(f is None for f in left):
        text += ("; ranked by what leaving them out does to their own final loss in those runs (mean over the runs "
                 "without the example minus over the runs with it: what self-influence estimates), "
                 + ", ".join(f"{f:.3f}" for f in left))
    return text + "."


def plot(path: Path, res: dict) -> None:
    from ..plots import plot_lines
    xs = [0.0] + [r["fraction"] for r in res["rows"]]
    panels = {"fraction of mislabelled examples found": {m: [0.0] + [r["found"][m] for r in res["rows"]]
                                                         for m in METHODS},
              "test accuracy after fixing": {m: [res["noisy"]["accuracy"]] + [r["accuracy"][m] for r in res["rows"]]
                                             for m in METHODS},
              "mean test loss after fixing (nats)": {m: [res["noisy"]["loss"]] + [r["test_loss"][m]
                                                                                  for r in res["rows"]]
                                                     for m in METHODS}}
    plot_lines(path, xs, panels, "fraction of training data checked")


def shuffles_of(args) -> list[list[int]]:
    """The random orders of the pool (args.n_shuffles of them, seeded)."""
    out = []
    for s in range(args.n_shuffles):
        o = list(range(args.shot))
        random.Random(args.seed * 1000 + s).shuffle(o)
        out.append(o)
    return out


def restored(fixed: set[int], clean_labels: dict[int, int]) -> dict[str, int]:
    """How many of the fixed examples go back to each clean label: {clean label: count}, every label present."""
    out = {str(y): 0 for y in sorted(set(clean_labels.values()))}
    for i in fixed:
        out[str(clean_labels[i])] += 1
    return out


def flipped_control(args, n_checked: int, k: int, flipped: set[int], fixed_run) -> dict:
    """args.flipped_controls random sets of k flipped labels (k: how many anchor_lex_sim's order fixed among its
    first n_checked), each fixed and re-made like the orders' sets: what fixing k flipped labels is worth when
    they are not the ones self-influence ranks first. Seeded by (args.seed, n_checked, set number)."""
    pool = sorted(flipped)
    sets = [set(random.Random(7000 + 100000 * args.seed + 100 * n_checked + j).sample(pool, k))
            for j in range(args.flipped_controls)]
    rs = [fixed_run(x) for x in sets]
    return {"n_fixed": k, "accuracy": sum(r["accuracy"] for r in rs) / len(rs),
            "loss": sum(r["loss"] for r in rs) / len(rs),
            "per_set": [{"accuracy": r["accuracy"], "loss": r["loss"],
                         "runs_accuracy": [x["accuracy"] for x in r["per_run"]]} for r in rs]}


def _control_line(res: dict) -> str:
    rows = [r for r in res["rows"] if "flipped_control" in r]
    if not rows:
        return ""
    k = len(rows[0]["flipped_control"]["per_set"])
    parts = [f"{r['fraction']:g}: {r['flipped_control']['n_fixed']} labels {r['flipped_control']['accuracy']:.3f} "
             f"({r['flipped_control']['loss']:.4f}) against anchor_lex_sim's {r['accuracy']['anchor_lex_sim']:.3f} "
             f"({r['test_loss']['anchor_lex_sim']:.4f})" for r in rows]
    return (f"Control: random sets of flipped labels, as many as anchor_lex_sim's order fixed (mean of {k} sets), "
            "accuracy (test loss): " + "; ".join(parts) + ".")


def arrange(args, order: list[int], labels: dict[int, int]) -> list[int]:
    """An order as --order asks: as ranked (plain) or label_balanced."""
    return label_balanced(order, labels) if args.order == "label_balanced" else order


def fraction_row(args, f: float, orders: dict, flipped: set[int], fixed_run, labels: dict[int, int],
                 clean_labels: dict[int, int]) -> dict:
    """One row of the table: the first f of each ranking checked, the flipped labels among them fixed and the
    target run re-made (fixed_run); random = the mean over shuffles (found) and over random_runs re-made runs."""
    n = round(f * args.shot)
    row = {"fraction": f, "n_checked": n, "found": {}, "accuracy": {}, "test_loss": {}}
    runs_acc = {}   # every re-made run's accuracy (eval_runs seeds per set)
    row["restored"], row["test_loss_by_label"] = {}, {}
    fixed = {m: set(o[:n]) & flipped for m, o in orders.items()}
    for m, o in orders.items():
        row["found"][m] = found_fraction(o, n, flipped)
        r = fixed_run(fixed[m])
        row["accuracy"][m], row["test_loss"][m] = r["accuracy"], r["loss"]
        runs_acc[m] = [x["accuracy"] for x in r["per_run"]]
        row["restored"][m] = restored(fixed[m], clean_labels)
        row["test_loss_by_label"][m] = r["loss_by_label"]
    shuffles = [arrange(args, o, labels) for o in shuffles_of(args)]
    shuffle_fixed = [set(o[:n]) & flipped for o in shuffles]
    row["found"]["random"] = sum(found_fraction(o, n, flipped) for o in shuffles) / len(shuffles)
    rs = [fixed_run(x) for x in shuffle_fixed[:args.random_runs]]
    row["accuracy"]["random"] = sum(r["accuracy"] for r in rs) / max(1, len(rs))
    row["test_loss"]["random"] = sum(r["loss"] for r in rs) / max(1, len(rs))
    runs_acc["random"] = [x["accuracy"] for r in rs for x in r["per_run"]]
    row["runs_accuracy"] = runs_acc
    row["random_shuffles"] = [{"accuracy": r["accuracy"], "loss": r["loss"]} for r in rs]
    counts = [restored(x, clean_labels) for x in shuffle_fixed]
    row["restored"]["random"] = {y: sum(c[y] for c in counts) / len(counts) for y in counts[0]}
    row["test_loss_by_label"]["random"] = {y: sum(r["loss_by_label"][y] for r in rs) / len(rs)
                                           for y in rs[0]["loss_by_label"]}
    if args.flipped_controls:
        row["flipped_control"] = flipped_control(args, n, len(fixed["anchor_lex_sim"]), flipped, fixed_run)
    log.info("fraction %.2f: found %s, accuracy %s", f, {k: round(v, 3) for k, v in row["found"].items()},
             {k: round(v, 3) for k, v in row["accuracy"].items()})
    return row


def run(ws: Workspace, args, out: Path) -> dict:
    """The whole experiment; writes table.md, mislabelled.png, results.json into out; returns the results."""
    from ..baselines import parse_num_checkpoints, tracin_self_influence
    t0 = time.time()
    fractions = parse_fractions(args.fractions)
    train_p, eval_p = ws.task_files(TASK, args.shot, args.n_test, args.data_seed, label_noise=args.label_noise)
    samples = load_samples(train_p)
    flipped = {s["id"] for s in samples if s.get("flipped")}
    key = (f"{TASK}/mislabelled-{args.label_noise:g}_{Path(args.model).name}_shot{args.shot}_sample{args.sample}"
           f"_ep{args.epochs}_lr{args.lr:g}_nt{args.n_test}_ds{args.data_seed}")
    sim_key, sim_eval = key, eval_p
    if args.own_test_points == "on":
        sim_key, sim_eval = key + "_own", own_test_points_file(ws, key, samples, eval_p)
    sim_dirs = [d for _, d in sorted(ws.runs(sim_key, run_spec(args, train_p, sim_eval)).items())]
    tracin_run = target_run(ws, args, train_p, eval_p, ws.root / "target" / key, grads=True)
    sim_scores = {}
    ws.train_methods(sim_key, SIMULATORS.values(), TASK, "loss", sim_dirs, (train_p, sim_eval), [42], 1)
    for m, method in SIMULATORS.items():
        ckpt = ws.simulator(sim_key, method, TASK, "loss", sim_dirs, (train_p, sim_eval), 42, 1)
        sim_scores[m], init = simulator_scores(args, ckpt, sim_dirs)
    t_scores, ck_steps = tracin_self_influence(tracin_run["run_dir"], parse_num_checkpoints(None))
    labels = {s["id"]: int(s["label"]) for s in samples}  # the noisy labels: what a reviewer sees
    orders = {m: arrange(args, o, labels) for m, o in
              {**{m: rank(s) for m, s in sim_scores.items()}, "tracin_cp": rank(t_scores[:args.shot])}.items()}
    t_base = time.time() - t0
    cache: dict = {}
    # the re-made runs: scored on the evaluation set, eval_runs seeds each (with the simulator-training runs' test
    # set and one seed, the folders of the first version of this experiment, so its tables stay reproducible)
    eval_file = evaluation_file(ws, args, samples, eval_p)
    eval_seeds = [args.target_seed + k for k in range(args.eval_runs)]
    remake = ws.root / "remake" / key
    if (args.eval_n_test, args.eval_runs) != (args.n_test, 1):
        # one folder per evaluation set; every seed its own run in it, so more --eval_runs add seeds to the runs
        # made before instead of re-making them
        remake = adopt_old_remake_folder(remake, args.eval_n_test)

    def fixed_run(fixed: set[int]) -> dict:
        name = set_name(fixed)
        if name not in cache:
            path = ws.root / "fixed" / key / f"{name}.json"
            write_jsonl(path, relabel(samples, fixed))
            cache[name] = target_run(ws, args, path, eval_file, remake / name, seeds=eval_seeds)
        return cache[name]

    noisy = fixed_run(set())

    clean_labels = {s["id"]: int(s.get("clean_label", s["label"])) for s in samples}
    rows = [fraction_row(args, f, orders, flipped, fixed_run, labels, clean_labels) for f in fractions]
    for name, scores in (reference_scores(args, sim_dirs) or {}).items():
        order = arrange(args, rank(scores), labels)
        for row in rows:
            row[f"found_by_{name}"] = found_fraction(order, row["n_checked"], flipped)
    clean = fixed_run(flipped)
    res = {"settings": {k: getattr(args, k) for k in [*PRESETS["default"], "label_noise", "n_shuffles", "target_seed",
                                                      "own_test_points", "order", "flipped_controls"]},
           "n_flipped": len(flipped), "noisy": noisy, "clean": clean, "rows": rows,
           "curve_means": curve_means(rows), "simulator_init": init,
           "tracin_checkpoints": ck_steps, "re_made_runs": len(cache) * len(eval_seeds), "eval_seeds": eval_seeds,
           "ranking": "descending self-influence (most suspicious first); random: shuffles" + (
               "" if args.order == "plain" else "; every order taken one example of each noisy label in turn"),
           "scores": {**{m: v.tolist() for m, v in sim_scores.items()}, "tracin_cp": t_scores[:args.shot].tolist()},
           "flipped_ids": sorted(flipped),
           "seconds": {"runs_simulator_scores": round(t_base, 1), "total": round(time.time() - t0, 1)}}
    res["tracin_run"] = {**tracin_run, "run_dir": relative(tracin_run["run_dir"])}
    for part in ("noisy", "clean"):
        res[part] = {**res[part], "run_dir": relative(res[part]["run_dir"])}
    write_json(out / "results.json", res)
    plot(out / "mislabelled.png", res)
    print(write_table(out / "table.md", res))
    print(f"results: {out / 'table.md'}, {out / 'mislabelled.png'} ({res['seconds']['total']:.0f} s, "
          f"{len(cache) * len(eval_seeds)} re-made runs)")
    return res
