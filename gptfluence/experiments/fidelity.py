"""Fidelity of every method against the honest baselines (bench/bench_fidelity.py is the command).

Three sections, every method trained with each simulator seed (the baselines and the closed-form anchor sims are
deterministic: one seed says it all) and scored on held-out runs:

  planted   runs with planted, text-driven dynamics (gptfluence.synthetic; or a folder of processed runs such as
            the shared planted fixture): the last 5 runs are held out, 2 validate, the rest train;
  preset    the runs of a reproduce.py preset, every task and metric (the same work folder as reproduce.py, so
            runs and simulators made there are reused), with TracIn-CP(10) on the test loss;
  unseen    the same runs, the test set split in halves: methods fitted on test half A are scored on half B,
            which they never saw (Simfluence cannot; the mean trajectory uses the seen examples' mean curve
            shifted to each example's first value);
  splits    the same runs, test loss, every held-out block in turn (runs 1-3, 4-6, ... held out, the rest
            trained on): the mean trajectory and the closed-form anchor sims on each split, so that a gain is
            not an accident of which runs the preset holds out (the published simulators are left out: 3 seeds
            x every split would multiply their training time).

The report states, with the measured numbers, whether the recommended simulator (RECOMMENDED) beats the mean
trajectory on every task and on average, Simfluence and TracIn-CP on average MSE and final-step Spearman, the
shifted seen-mean on unseen examples, and how many of its predictions were out of range.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from ..io import DataError, load_samples
from ..tables import grid_table
from .common import (
    ANCHOR,
    ANCHOR_PLAIN,
    GPTFLUENCE,
    MEAN_TRAJECTORY,
    NO_CHANGE,
    SIMFLUENCE,
    UNABLE,
    Method,
    Workspace,
    method_seeds,
)

log = logging.getLogger("gptfluence.experiments")

GPTFLUENCE_FG = Method("GPTfluence", "enc_sim")
METHODS = (NO_CHANGE, MEAN_TRAJECTORY, SIMFLUENCE, GPTFLUENCE_FG, GPTFLUENCE, ANCHOR_PLAIN, ANCHOR)
TRACIN = "TracIn-CP(10)"


def planted_runs(root: Path, n_runs: int, planted_dir: str | None) -> tuple[list[str], tuple[str, str]]:
    """(run dirs in seed order, (train file, eval file)) of the planted section: a folder of processed runs
    (runs/**/run_seed-*, with data/*_train.json + data/*_eval.json or tasks/train.json + tasks/eval.json), or
    runs made here by gptfluence.synthetic.make_planted."""
    if planted_dir is None:
        from ..synthetic import make_planted
        task = make_planted(root / "planted", n_train=48, n_test=40, n_runs=n_runs, sample=32, epochs=2, seed=0)
        return [str(d) for d in task.run_dirs], (str(task.train_path), str(task.eval_path))
    d = Path(planted_dir)
    runs = sorted(d.glob("runs/**/run_seed-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    files = [sorted(d.glob("data/*_train.json")) + sorted(d.glob("tasks/train.json")),
             sorted(d.glob("data/*_eval.json")) + sorted(d.glob("tasks/eval.json"))]
    if len(runs) < 8 or not all(len(f) == 1 for f in files):
        raise DataError(f"--planted_dir {d}: expected >= 8 processed runs under runs/ (run_seed-<n>) and one train "
                        "and one eval sample file (data/*_train.json, data/*_eval.json or tasks/train.json, "
                        "tasks/eval.json)")
    return [str(r) for r in runs], (str(files[0][0]), str(files[1][0]))


def score_all(ws: Workspace, key: str, task: str, metric: str, train: list, test: list, files: tuple,
              seeds: list[int], valid_num: int, fit_ids=None, score_ids=None, suffix: str = "heldout") -> dict:
    """{method label: [metrics per seed] or UNABLE}: each method fitted on `train` (test ids fit_ids) and scored
    on `test` (test ids score_ids)."""
    ws.train_methods(key, METHODS, task, metric, train, files, seeds, valid_num, test_ids=fit_ids)
    cells = {}
    for method in METHODS:
        got = []
        for seed in method_seeds(method, seeds):
            ckpt = ws.simulator(key, method, task, metric, train, files, seed, valid_num, test_ids=fit_ids)
            m = ws.score(ckpt, ckpt / suffix, test, score_ids)
            if isinstance(m, str):
                got = UNABLE
                break
            got.append(m)
        cells[method.label] = got
    return cells


SPLIT_METHODS = (MEAN_TRAJECTORY, ANCHOR_PLAIN, ANCHOR)


def split_blocks(runs: list, block: int) -> list[tuple[list, list]]:
    """(training runs, held-out runs) with each consecutive block of `block` runs held out in turn (a last partial
    block is left out)."""
    return [([r for j, r in enumerate(runs) if not i <= j < i + block], runs[i:i + block])
            for i in range(0, len(runs) - block + 1, block)]


def splits_table(res: dict) -> tuple[str, list[str]]:
    """Markdown of the splits section and its check lines; res: {task: [{label: mse} per split]}."""
    tasks = list(res)
    n = len(next(iter(res.values())))
    ours, mean, plain = ANCHOR.label, MEAN_TRAJECTORY.label, ANCHOR_PLAIN.label
    head = ["held out", *tasks, "average"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    avg_gains, wins = [], {t: [0, 0, 0] for t in tasks}
    for k in range(n):
        row, a_sum, b_sum = [], 0.0, 0.0
        for t in tasks:
            a, b = res[t][k][ours], res[t][k][mean]
            a_sum, b_sum = a_sum + a, b_sum + b
            g, g_plain = (1 - a / b, 1 - res[t][k][plain] / b) if b > 0 else (0.0, 0.0)  # b = 0: runs identical
            wins[t][0 if g > 0.005 else 2 if g < -0.005 else 1] += 1
            row.append(f"{a:.4f} vs {b:.4f} ({g:+.0%}; {plain} {g_plain:+.0%})")
        avg_gains.append(1 - a_sum / b_sum if b_sum > 0 else 0.0)
        row.append(f"{a_sum / len(tasks):.4f} vs {b_sum / len(tasks):.4f} ({avg_gains[-1]:+.0%})")
        lines.append(f"| block {k + 1} | " + " | ".join(row) + " |")
    text = (f"#### every held-out block in turn, test loss: all-steps MSE of {ours} vs the mean trajectory "
            f"(gain; {plain}'s gain)\n\n" + "\n".join(lines) + "\n")
    checks = [f"- {_ok(min(avg_gains) >= 0.10)} on every held-out block, on average by >= 10%: "
              + ", ".join(f"{g:+.0%}" for g in avg_gains),
              "- wins / ties (within 0.5%) / losses against the mean trajectory over the blocks: "
              + ", ".join(f"{t} {w[0]}/{w[1]}/{w[2]}" for t, w in wins.items())]
    return text, checks


def mean_of(cell, key: str) -> float:
    if isinstance(cell, str) or not cell:
        return math.nan
    vals = [m[key] for m in cell if m.get(key) is not None]
    return sum(vals) / len(vals) if vals else math.nan


def invalid_of(cell) -> int:
    return 0 if isinstance(cell, str) or not cell else sum(int(m.get("invalid_predictions", 0)) for m in cell)


def verdicts(cols: dict, unseen: dict, planted: dict | None) -> list[str]:
    """The done-when checks of the recommended simulator, each with its numbers; cols: {(task, metric): cells}."""
    ours, mean = ANCHOR.label, MEAN_TRAJECTORY.label
    lines = []
    loss_cols = [c for c in cols if c[1] == "loss"]
    if loss_cols:
        gains = {c[0]: 1 - mean_of(cols[c][ours], "all_steps_mse_mean") / mean_of(cols[c][mean], "all_steps_mse_mean")
                 for c in loss_cols}
        avg = {m: sum(mean_of(cols[c][m], "all_steps_mse_mean") for c in loss_cols) / len(loss_cols)
               for m in (ours, mean, SIMFLUENCE.label, TRACIN)}
        rho = {m: sum(mean_of(cols[c][m], "final_step_spearman_mean") for c in loss_cols) / len(loss_cols)
               for m in (ours, SIMFLUENCE.label, TRACIN)}
        avg_gain = 1 - avg[ours] / avg[mean]
        lines.append(f"- {_ok(all(g > 0 for g in gains.values()))} beats the mean trajectory on the test loss of "
                     "every task: MSE " + ", ".join(f"{t} {g:+.0%}" for t, g in gains.items()))
        lines.append(f"- {_ok(avg_gain >= 0.10)} on average by >= 10%: {avg[ours]:.4f} vs {avg[mean]:.4f} "
                     f"({avg_gain:+.0%})")
        for other in (SIMFLUENCE.label, TRACIN):
            lines.append(f"- {_ok(avg[ours] < avg[other] and rho[ours] > rho[other])} beats {other} on average MSE "
                         f"and final-step Spearman: {avg[ours]:.4f} vs {avg[other]:.4f}, rho {rho[ours]:.3f} vs "
                         f"{rho[other]:.3f}")
    other_cols = [c for c in cols if c[1] != "loss"]
    for c in other_cols:
        a, b = mean_of(cols[c][ours], "all_steps_mse_mean"), mean_of(cols[c][mean], "all_steps_mse_mean")
        lines.append(f"- {_ok(a < b)} {c[0]} {c[1]}: MSE {a:.4g} vs the mean trajectory's {b:.4g} ({1 - a / b:+.0%})")
    if unseen:
        pairs = {t: (mean_of(c[ours], "all_steps_mse_mean"), mean_of(c[mean], "all_steps_mse_mean"))
                 for t, c in unseen.items()}
        a, b = (sum(p[i] for p in pairs.values()) / len(pairs) for i in (0, 1))
        lines.append(f"- {_ok(a < b)} on unseen test examples beats the shifted seen-mean: {a:.4f} vs {b:.4f} on "
                     "average (" + ", ".join(f"{t} {x:.4f} vs {y:.4f}" for t, (x, y) in pairs.items()) + ")")
    if planted:
        m = planted[ours]
        mse = [x["all_steps_mse_mean"] for x in m] if not isinstance(m, str) else []
        rho = [x["final_step_spearman_mean"] for x in m] if not isinstance(m, str) else []
        ok = bool(mse) and max(mse) <= 1e-3 and min(rho) >= 0.9
        lines.append(f"- {_ok(ok)} planted runs: MSE {', '.join(f'{x:.5f}' for x in mse)} (<= 0.001), final-step "
                     f"Spearman {', '.join(f'{x:.3f}' for x in rho)} (>= 0.9)"
                     + (" (closed form: the same fit for every seed)" if ANCHOR.deterministic else ""))
    n_invalid = sum(invalid_of(c[ours]) for c in [*cols.values(), *unseen.values(), *([planted] if planted else [])])
    lines.append(f"- {_ok(n_invalid == 0)} out-of-range predictions of {ours}: {n_invalid}")
    return lines


def _ok(flag: bool) -> str:
    return "yes:" if flag else "NO:"


def run(ws: Workspace, args, out: Path) -> tuple[str, dict]:
    """All sections asked for; returns (markdown, summary) and writes nothing itself (the caller does)."""
    from .reproduce import metrics_of, task_runs
    seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    text, summary = [], {"sections": sections}
    planted = None
    if "planted" in sections:
        runs, files = planted_runs(ws.root, args.planted_runs, args.planted_dir)
        train, test = runs[:-5], runs[-5:]
        key = f"planted/{Path(args.planted_dir).name if args.planted_dir else 'synthetic'}-{len(runs)}"
        log.info("planted: %d training + validation runs, %d held out", len(train), len(test))
        planted = score_all(ws, key, "planted", "loss", train, test, files, seeds, 2)
        text.append(grid_table(f"planted runs ({len(train) - 2} train, 2 validate, 5 held out): all-steps MSE / MAE / "
                               "final-step Spearman, mean (std) over simulator seeds", [m.label for m in METHODS],
                               ["planted"], {(k, "planted"): v for k, v in planted.items()}))
        summary["planted"] = planted
    cols, unseen, splits = {}, {}, {}
    tasks = ([t.strip() for t in args.tasks.split(",") if t.strip()] if {"preset", "unseen", "splits"} & set(sections)
             else [])
    for task in tasks:
        train, test, files, key = task_runs(ws, args, task)
        if "preset" in sections:
            for metric in metrics_of(task):
                log.info("preset %s: %s/%s", args.preset, task, metric)
                cols[(task, metric)] = score_all(ws, key, task, metric, train, test, files, seeds, args.valid_num)
            raw = ws.root / "raw" / key
            cols[(task, "loss")][TRACIN] = [ws.baseline_scores(key, "tracin_cp", 10, task, train, test, raw)]
        if "unseen" in sections:
            n = len(load_samples(files[1]))
            half_a, half_b = list(range(n // 2)), list(range(n // 2, n))
            log.info("unseen %s: fitted on test ids 0-%d, scored on %d-%d", task, n // 2 - 1, n // 2, n - 1)
            unseen[task] = score_all(ws, key, task, "loss", train, test, files, seeds, args.valid_num,
                                     fit_ids=half_a, score_ids=half_b, suffix="unseen_half_b")
        if "splits" in sections:
            splits[task] = []
            for k, (tr, held) in enumerate(split_blocks(train + test, len(test))):
                log.info("splits %s: block %d held out", task, k + 1)
                row = {}
                for method in SPLIT_METHODS:
                    ckpt = ws.simulator(key, method, task, "loss", tr, files, seeds[0], args.valid_num)
                    row[method.label] = ws.score(ckpt, ckpt / "heldout", held)["all_steps_mse_mean"]
                splits[task].append(row)
    rows = [m.label for m in METHODS]
    if cols:
        names = [f"{t} {m}" for t, m in cols]
        cells = {(r, f"{t} {m}"): c.get(r, "-") for (t, m), c in cols.items() for r in [*rows, TRACIN]}
        text.append(grid_table(f"{args.preset} preset runs, held-out runs: all-steps MSE / MAE / final-step "
                               "Spearman, mean (std) over simulator seeds", [*rows, TRACIN], names, cells))
        summary["preset"] = {f"{t} {m}": c for (t, m), c in cols.items()}
    if unseen:
        text.append(grid_table("unseen test examples (fitted on test half A, scored on half B), test loss: all-steps "
                               "MSE / MAE / final-step Spearman", rows, list(unseen),
                               {(r, t): c.get(r, "-") for t, c in unseen.items() for r in rows}))
        summary["unseen"] = unseen
    checks = verdicts(cols, unseen, planted)
    if splits:
        split_text, split_checks = splits_table(splits)
        text.append(split_text)
        checks += split_checks
        summary["splits"] = splits
    text.append(f"#### {ANCHOR.label} (RECOMMENDED) against the honest baselines\n\n" + "\n".join(checks) + "\n")
    summary["checks"] = checks
    return "\n".join(text), summary

