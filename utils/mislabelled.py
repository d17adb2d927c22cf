"""Mislabelled-data experiment of the paper on the built-in sentiment task (sst2), one command.

    python utils/mislabelled.py --preset quick            # tiny model, a few minutes on 1 CPU core
    python utils/mislabelled.py --preset default --gpu 0  # small model, ~10-15 minutes on 1 CPU core

  1. a noisy training pool: --label_noise (default 40%) of the sst2 training labels flipped (the clean
     label is kept in "clean_label", "flipped" marks them); the test set keeps its true labels;
  2. simulator-training runs on the noisy pool (make_runs, --sample of the pool per run), GPTfluence
     (enc_sim) trained on them with train.py;
  3. the TARGET run: the whole noisy pool (sample = shot), seed --target_seed, with gradient features;
  4. every training example is ranked, most suspicious first, by
       GPTfluence self-influence (gptfluence.influence.self_influence along the target run's curriculum),
       TracIn-CP self-influence (sum over recorded checkpoints of lr_k <g_i, g_i>, the target run's grads),
       random order (--n_shuffles shuffles);
  5. for each fraction f (0.1, 0.2, ... 1.0) the labels of the top f of the ranking are restored to the
     clean labels (a new training file), the target run is re-made on it (same seed, same curriculum),
     and its test accuracy is measured by label-word scoring (the label word with the lowest loss after
     the prompt is the prediction), with its mean final test loss (nats, the true label) beside it.

Sign convention of the ranking (both scores: larger = more suspicious). Self-influence > 0 means the
example's presence lowers its OWN loss. A mislabelled example contradicts what the other examples teach,
so its own (noisy) label is predicted only by learning from the example itself: removing it raises its
own loss much more than removing a correctly labelled example, whose label the rest of the data also
supports. TracIn-CP's self-influence lr <g_i, g_i> is large for the same reason (a large, persistent
gradient). So both rankings are in DESCENDING score order.

Random order: the fraction of mislabels found is the mean over --n_shuffles shuffles; its accuracy is
the mean over the first --random_runs shuffles only (each point needs a re-made run), as the table says.

Writes results/mislabelled/<preset>/: table.md, mislabelled.png, results.json, args.json; work/ holds the
task files, runs, checkpoint and re-made runs (every stage resumes when interrupted).
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "utils"))

from influence_check import (call_make_runs, device_flag, load_script, preprocess, run_maker_argv,  # noqa: E402
                             set_name)

log = logging.getLogger("mislabelled")

TASK = "sst2"
PRESETS = {
    "quick": dict(model="tiny", shot=40, sample=20, runs=4, n_test=30, bs=4, epochs=2, lr=1e-3, max_epoch=15,
                  patience=5, grad_steps="all", grad_dim=64, random_runs=1),
    "default": dict(model="small", shot=100, sample=50, runs=6, n_test=100, bs=4, epochs=2, lr=5e-4, max_epoch=40,
                    patience=8, grad_steps="10", grad_dim=256, random_runs=2),
}
METHODS = ("gptfluence", "tracin_cp", "random")
COLOURS = {"gptfluence": "tab:blue", "tracin_cp": "tab:green", "random": "tab:grey"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--preset", type=str, default="default", choices=sorted(PRESETS), help="named sizes (flags below override)")
    a("--gpu", type=str, default="cpu", help="GPU index for making runs and training ('cpu' = no GPU)")
    a("--model", type=str, default=None, help="run-maker model: tiny, small, a folder or an HF name")
    a("--shot", type=int, default=None, help="training pool size (all of it is in the target run)")
    a("--sample", type=int, default=None, help="training examples per simulator-training run")
    a("--runs", type=int, default=None, help="simulator-training runs (seeds 1..R)")
    a("--n_test", type=int, default=None, help="test examples (true labels)")
    a("--bs", type=int, default=None, help="batch size")
    a("--epochs", type=int, default=None, help="epochs of every run")
    a("--lr", type=float, default=None, help="learning rate of the runs")
    a("--label_noise", type=float, default=0.4, help="fraction of training labels flipped")
    a("--fractions", type=str, default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0",
      help="fractions of the ranking whose labels are fixed (comma list)")
    a("--n_shuffles", type=int, default=10, help="random orders averaged for the fraction of mislabels found")
    a("--random_runs", type=int, default=None, help="of them, shuffles whose accuracy is measured by re-made runs")
    a("--target_seed", type=int, default=100, help="seed of the target run (whole pool) and its re-makes")
    a("--grad_steps", type=str, default=None, help="checkpoints with gradient features in the target run")
    a("--grad_dim", type=int, default=None, help="gradient feature size")
    a("--max_epoch", type=int, default=None, help="simulator training epochs")
    a("--patience", type=int, default=None, help="simulator early-stopping patience")
    a("--seed", type=int, default=0, help="seed of the random orders")
    a("--data_seed", type=int, default=0, help="seed of the task generator and of the label noise")
    a("--out_dir", type=str, default=None, help="output folder (default results/mislabelled/<preset>)")
    a("--model_cache", type=str, default=None, help="folder of the local preset models (make_runs --model_cache)")
    a("--embedding_cache", type=str, default=".cache/gptfluence/embeddings", help="encoder embedding cache")
    a("--threads", type=int, default=1, help="torch CPU threads")
    a("--no_progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.task = TASK
    return args


def parse_fractions(text: str) -> list[float]:
    from gptfluence.io import DataError
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DataError(f"--fractions {text!r}: expected a comma list of numbers in (0, 1]") from None
    if not out or any(not 0 < f <= 1 for f in out):
        raise DataError(f"--fractions {text!r}: expected a comma list of numbers in (0, 1]")
    return out


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def relabel(samples: list[dict], ids, task: str = TASK) -> list[dict]:
    """Copies of `samples` with the examples `ids` given back their clean label ("clean_label"): label,
    output, target and input re-rendered, "flipped" False. Other samples are unchanged copies."""
    from gptfluence.io import DataError
    from gptfluence.tasks import LABEL_WORDS
    fix = set(int(i) for i in ids)
    out = []
    for s in samples:
        s = dict(s)
        if s["id"] in fix:
            if "clean_label" not in s:
                raise DataError(f"sample id {s['id']}: no 'clean_label' to restore")
            s["label"] = int(s["clean_label"])
            s["output"] = LABEL_WORDS[task][s["label"]]
            s["target"] = " " + s["output"]
            s["input"] = s["context"] + s["target"]
            s["flipped"] = False
        out.append(s)
    return out


def make_data(args, work: Path):
    """(noisy train file, eval file, noisy samples): the built-in sst2 task with label noise."""
    from gptfluence import tasks
    from gptfluence.io import load_samples, write_jsonl
    d = work / "data"
    train_p, eval_p = d / f"sst2_train_0-{args.shot - 1}_mislabelled-{args.label_noise:g}.json", d / "sst2_eval.json"
    if not (train_p.is_file() and eval_p.is_file()):
        train, test = tasks.build_task(TASK, args.shot, args.n_test, seed=args.data_seed, label_noise=args.label_noise)
        write_jsonl(train_p, train)
        write_jsonl(eval_p, test)
    return train_p, eval_p, load_samples(train_p)


def flipped_ids(samples: list[dict]) -> set[int]:
    return {s["id"] for s in samples if s.get("flipped")}


# ----------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------

_BASE = {}


def base_model(args, device):
    """The run maker's base model, loaded once per process."""
    from gptfluence.basemodel import get_base_model
    key = (args.model, args.model_cache)
    if key not in _BASE:
        _BASE[key] = get_base_model(args.model, args.model_cache, seed=0, device=device, progress=False)
    return _BASE[key]


def target_run(args, train_p: Path, eval_p: Path, out: Path, grads: bool = False) -> dict:
    """Make the target run (whole pool, seed --target_seed) on a training file and score its final model:
    {"accuracy" (0-1), "loss" (mean final test loss, nats), "run_dir"}. Kept when made before."""
    import torch

    from gptfluence import dynamics
    from gptfluence.io import load_samples, read_json, write_json
    from gptfluence.tasks import LABEL_WORDS
    done = out / "accuracy.json"
    if done.is_file():
        return read_json(done)
    mr = load_script("utils/make_runs.py")
    extra = ["--record_interval", "1000000"]
    if grads:
        extra += ["--grad_features", "--grad_steps", args.grad_steps, "--grad_dim", str(args.grad_dim)]
    margs = mr.parse_args(run_maker_argv(args, out, str(args.target_seed), train_p, eval_p, extra)
                          + ["--sample", str(args.shot)])
    device = mr.resolve_device(margs.device)
    settings = mr.build_settings(margs, train_p, eval_p)
    model, tok = base_model(args, device)
    test = load_samples(eval_p)
    maker = dynamics.RunMaker(model, tok, load_samples(train_p), test, settings, device=device, progress=False)
    if out.exists():
        shutil.rmtree(out)  # the final model is needed: a kept run without its accuracy is made again
    (run_dir,) = dynamics.make_runs(maker, [args.target_seed], out)
    acc, _ = dynamics.label_word_accuracy(maker.model, tok, test, LABEL_WORDS[TASK], max_len=settings["max_len"],
                                          device=device)
    loss = float(torch.tensor(list(load_script("utils/influence_check.py").final_losses(run_dir, TASK).values()))
                 .mean())
    res = {"accuracy": acc, "loss": loss, "run_dir": str(run_dir)}
    write_json(done, res)
    return res


def train_gptfluence(args, work: Path, train_p: Path, eval_p: Path) -> tuple[Path, list[str]]:
    """Simulator-training runs on the noisy pool, preprocessed, and enc_sim trained on them."""
    from gptfluence.io import write_json
    call_make_runs(run_maker_argv(args, work / "raw", f"1-{args.runs}", train_p, eval_p))
    dirs = [str(d) for d in preprocess(work / "raw", work / "runs", TASK)[:args.runs]]
    paths = work / "data_paths.json"
    write_json(paths, {TASK: {"train": dirs, "test": []}})
    folder = work / "output" / TASK / "enc_sim_loss_seed42"
    if not (folder / "history.json").is_file():
        load_script("train.py").main([
            "--sim_name", "enc_sim", "--task", TASK, "--metric", "loss", "--data_paths_dict", str(paths),
            "--train_data_path", str(train_p), "--eval_data_path", str(eval_p), "--valid_num", "1", "--lr", "1e-3",
            "--train_bs", "256", "--max_epoch", str(args.max_epoch), "--patience", str(args.patience),
            "--warmup_steps", "100", "--seed", "42", "--output_dir", str(work / "output"),
            "--device", device_flag(args.gpu), "--embedding_cache", str(args.embedding_cache), "--resume",
            "--no_progress"])
    return folder, dirs


# ----------------------------------------------------------------------------------------------
# Rankings
# ----------------------------------------------------------------------------------------------

def target_curriculum(args):
    """The target run's batches [T+1, M] (LongTensor, -1 padded) with an empty step 0 in front, so every
    optimizer step is a simulated transition."""
    import torch

    from gptfluence.dynamics import make_curriculum
    batches = make_curriculum(args.shot, args.shot, args.bs, args.epochs, args.target_seed)
    out = torch.full((len(batches) + 1, max(len(b) for b in batches)), -1, dtype=torch.long)
    for t, b in enumerate(batches, 1):
        out[t, :len(b)] = torch.tensor(b)
    return out


def gptfluence_scores(args, ckpt_dir: Path, sim_dirs: list[str]):
    """GPTfluence self-influence [P] of every pool example along the target curriculum (remove mode,
    loss: > 0 = the example lowers its own loss). Starts from the mean first test loss of the runs."""
    import torch

    from gptfluence.checkpoint import load_checkpoint, simulator_from_checkpoint
    from gptfluence.influence import self_influence
    from gptfluence.runs import load_runs
    sim = simulator_from_checkpoint(load_checkpoint(ckpt_dir)).eval()
    rs = load_runs(sim_dirs)
    init = float(rs.values[..., 0][rs.mask[..., 0]].mean())
    res = self_influence(sim, target_curriculum(args), init)
    return torch.nan_to_num(res.final[0, :, 0].float(), nan=0.0), init


def rank(scores) -> list[int]:
    """Ids in descending score order (ties: lower id first)."""
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))


def found_fraction(order: list[int], n: int, flipped: set[int]) -> float:
    return len(set(order[:n]) & flipped) / max(1, len(flipped))


# ----------------------------------------------------------------------------------------------
# Table and plot
# ----------------------------------------------------------------------------------------------

def write_table(path: Path, res: dict) -> str:
    from gptfluence.io import atomic_open
    s = res["settings"]
    lines = [f"# Mislabelled-data detection (sst2 built-in, {s['model']} model, {s['shot']} training examples, "
             f"{res['n_flipped']} labels flipped = {s['label_noise']:.0%}, {s['n_test']} test examples)", "",
             f"Test accuracy (test loss) of the noisy target run: {res['noisy']['accuracy']:.3f} "
             f"({res['noisy']['loss']:.4f}); with every label fixed: {res['clean']['accuracy']:.3f} "
             f"({res['clean']['loss']:.4f}). Random: found = mean over {s['n_shuffles']} shuffles, accuracy = "
             f"mean over {s['random_runs']} of them (re-made runs).", "",
             "| fraction checked | found: GPTfluence | found: TracIn-CP | found: random | acc: GPTfluence | "
             "acc: TracIn-CP | acc: random | test loss: GPTfluence | TracIn-CP | random |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in res["rows"]:
        lines.append(f"| {row['fraction']:.1f} | {row['found']['gptfluence']:.3f} | {row['found']['tracin_cp']:.3f} "
                     f"| {row['found']['random']:.3f} | {row['accuracy']['gptfluence']:.3f} | "
                     f"{row['accuracy']['tracin_cp']:.3f} | {row['accuracy']['random']:.3f} | "
                     f"{row['test_loss']['gptfluence']:.4f} | {row['test_loss']['tracin_cp']:.4f} | "
                     f"{row['test_loss']['random']:.4f} |")
    text = "\n".join(lines) + "\n"
    with atomic_open(path, "w") as f:
        f.write(text)
    return text


def plot(path: Path, res: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [0.0] + [r["fraction"] for r in res["rows"]]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for m in METHODS:
        axes[2].plot(xs, [res["noisy"]["loss"]] + [r["test_loss"][m] for r in res["rows"]], "o-",
                     color=COLOURS[m], label=m, ms=4)
        axes[0].plot(xs, [0.0] + [r["found"][m] for r in res["rows"]], "o-", color=COLOURS[m], label=m, ms=4)
        axes[1].plot(xs, [res["noisy"]["accuracy"]] + [r["accuracy"][m] for r in res["rows"]], "o-",
                     color=COLOURS[m], label=m, ms=4)
    axes[0].set_ylabel("fraction of mislabelled examples found")
    axes[1].set_ylabel("test accuracy after fixing")
    axes[2].set_ylabel("mean test loss after fixing (nats)")
    for ax in axes:
        ax.set_xlabel("fraction of training data checked")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def accuracy_of_fix(args, work, samples, fixed: set[int], eval_p, cache: dict) -> dict:
    """{"accuracy", "loss"} of the target run re-made with the labels of `fixed` restored (cached per set)."""
    from gptfluence.io import write_jsonl
    name = set_name(fixed)
    if name not in cache:
        path = work / "fixed" / f"{name}.json"
        write_jsonl(path, relabel(samples, fixed))
        cache[name] = target_run(args, path, eval_p, work / "remake" / name)
    return cache[name]


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from gptfluence.baselines import parse_num_checkpoints, tracin_self_influence
    from gptfluence.cli import setup_logging
    from gptfluence.io import DataError, write_json

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out_dir or ROOT / "results" / "mislabelled" / args.preset)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    setup_logging(out / "mislabelled.log")
    write_json(out / "args.json", vars(args))
    t0 = time.time()
    try:
        fractions = parse_fractions(args.fractions)
        train_p, eval_p, samples = make_data(args, work)
        flipped = flipped_ids(samples)
        ckpt, sim_dirs = train_gptfluence(args, work, train_p, eval_p)
        noisy = target_run(args, train_p, eval_p, work / "target", grads=True)
        g_scores, init = gptfluence_scores(args, ckpt, sim_dirs)
        t_scores, ck_steps = tracin_self_influence(noisy["run_dir"], parse_num_checkpoints(None))
        orders = {"gptfluence": rank(g_scores), "tracin_cp": rank(t_scores[:args.shot])}
        shuffles = []
        for s in range(args.n_shuffles):
            o = list(range(args.shot))
            random.Random(args.seed * 1000 + s).shuffle(o)
            shuffles.append(o)
        t_base = time.time() - t0
        cache, rows = {}, []
        for f in fractions:
            n = round(f * args.shot)
            row = {"fraction": f, "n_checked": n, "found": {}, "accuracy": {}, "test_loss": {}}
            for m, o in orders.items():
                row["found"][m] = found_fraction(o, n, flipped)
                r = accuracy_of_fix(args, work, samples, set(o[:n]) & flipped, eval_p, cache)
                row["accuracy"][m], row["test_loss"][m] = r["accuracy"], r["loss"]
            row["found"]["random"] = sum(found_fraction(o, n, flipped) for o in shuffles) / len(shuffles)
            rs = [accuracy_of_fix(args, work, samples, set(o[:n]) & flipped, eval_p, cache)
                  for o in shuffles[:args.random_runs]]
            row["accuracy"]["random"] = sum(r["accuracy"] for r in rs) / max(1, len(rs))
            row["test_loss"]["random"] = sum(r["loss"] for r in rs) / max(1, len(rs))
            rows.append(row)
            log.info("fraction %.2f: found %s, accuracy %s", f,
                     {k: round(v, 3) for k, v in row["found"].items()},
                     {k: round(v, 3) for k, v in row["accuracy"].items()})
        clean = accuracy_of_fix(args, work, samples, flipped, eval_p, cache)
        res = {"settings": {k: getattr(args, k) for k in list(PRESETS["default"]) + ["label_noise", "n_shuffles",
                                                                                     "target_seed"]},
               "n_flipped": len(flipped), "noisy": noisy, "clean": clean, "rows": rows,
               "gptfluence_init": init, "tracin_checkpoints": ck_steps, "re_made_runs": len(cache),
               "ranking": "descending self-influence (most suspicious first); random: shuffles",
               "scores": {"gptfluence": g_scores.tolist(), "tracin_cp": t_scores[:args.shot].tolist()},
               "flipped_ids": sorted(flipped),
               "seconds": {"runs_simulator_scores": round(t_base, 1), "total": round(time.time() - t0, 1)}}
        write_json(out / "results.json", res)
        plot(out / "mislabelled.png", res)
        print(write_table(out / "table.md", res))
        print(f"results: {out / 'table.md'}, {out / 'mislabelled.png'} ({res['seconds']['total']:.0f} s, "
              f"{len(cache)} re-made runs)")
    except DataError as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
