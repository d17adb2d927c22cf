"""Results tables from metrics.json files (test.py, utils/run_tracin.py, the experiments).

    frame = load_metrics(files)          one row per metrics.json (pandas DataFrame)
    method_tables(frame)                 markdown: rows = methods, columns = tasks + average, one table per metric

A cell is "MSE / MAE / rho": all-steps MSE, all-steps MAE and final-step Spearman, each the mean over the
simulator seeds found (one metrics.json per seed) with the std over seeds in parentheses when there are
several seeds. Every value of one seed is itself the mean over the held-out runs' trajectories (MSE, MAE)
or over the held-out runs (rho). Counts of diverged trajectories and of out-of-range predictions are added
to the cell when non-zero.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

METHOD_NAMES = {"original": "Simfluence", "vec_sim": "Simfluence (vec_sim)", "enc_sim": "GPTfluence",
                "norder_enc_sim": "GPTfluence", "gpt_sim": "GPTfluence (gpt_sim)", "grad_dot": "Grad-Dot",
                "no_change": "No change", "mean_trajectory": "Mean trajectory", "anchor_sim": "anchor_sim",
                "anchor_lex_sim": "anchor_lex_sim (ours)"}
METHOD_ORDER = ["No change", "Mean trajectory", "TracIn-CP(10)", "TracIn-CP(all)", "Grad-Dot", "Simfluence",
                "GPTfluence", "anchor_sim", "anchor_lex_sim"]
TASK_ORDER = ["rte", "sst2", "boolq", "webnlg", "wmt16_de_en", "flan"]
VALUES = ("mse", "mae", "rho")


def method_label(m: dict) -> str:
    """Row label of a metrics.json: the method, with its variant (f != g, order n)."""
    name = m.get("sim_name", "?")
    if name.startswith("tracin_cp"):
        return "TracIn-CP" + name[len("tracin_cp"):]
    base = METHOD_NAMES.get(name, name)
    if m.get("separate_proj"):
        base += " (f!=g)"
    if (m.get("order_n") or 1) != 1:
        base += f" (n={m['order_n']})"
    return base


def load_metrics(files) -> pd.DataFrame:
    """One row per metrics.json: metric, task, method, seed, mse, mae, rho, diverged, invalid, file."""
    rows = []
    for f in files:
        m = json.loads(Path(f).read_text())
        rows.append({"metric": m.get("metric", "?"), "task": m.get("task", "?"), "method": method_label(m),
                     "seed": m.get("seed"), "mse": m.get("all_steps_mse_mean"), "mae": m.get("all_steps_mae_mean"),
                     "rho": m.get("final_step_spearman_mean"), "diverged": m.get("diverged_trajectories", 0),
                     "invalid": m.get("invalid_predictions", 0), "file": str(f)})
    frame = pd.DataFrame(rows, columns=["metric", "task", "method", "seed", *VALUES, "diverged", "invalid", "file"])
    return frame.astype({v: float for v in VALUES})


def _fmt(mean: float, std: float, n: int) -> str:
    if mean is None or not math.isfinite(mean):
        return "n/a"
    return f"{mean:.4f}" + (f" ({std:.4f})" if n > 1 and std is not None and math.isfinite(std) else "")


def _cell(group: pd.DataFrame) -> str:
    n = len(group)
    txt = " / ".join(_fmt(group[v].mean(), group[v].std(ddof=0), n) for v in VALUES)
    extra = []
    if group["diverged"].sum():
        extra.append(f"{int(group['diverged'].sum())} diverged")
    if group["invalid"].sum():
        extra.append(f"{int(group['invalid'].sum())} out of range")
    return txt + (f" ({', '.join(extra)})" if extra else "")


def _order(labels) -> list[str]:
    def key(r):
        head = r.split(" (")[0]
        return (METHOD_ORDER.index(head) if head in METHOD_ORDER else len(METHOD_ORDER), r)
    return sorted(labels, key=key)


def method_tables(frame: pd.DataFrame, title: str = "test {metric}") -> str:
    """Markdown: one table per metric, rows = methods, columns = tasks (+ average over tasks)."""
    out = []
    for metric, dm in frame.groupby("metric", sort=False):
        tasks = sorted(dm["task"].unique(), key=lambda t: (TASK_ORDER + [t]).index(t))
        seeds = dm.groupby(["method", "task"]).size()
        n_seeds = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
        out.append(f"#### {title.format(metric=metric)}: all-steps MSE / MAE / final-step Spearman, mean (std) over "
                   f"{n_seeds} simulator seed(s)\n")
        average = len(tasks) > 1
        out.append("| method | " + " | ".join(tasks) + (" | average |" if average else " |"))
        out.append("|---" * (len(tasks) + 1 + average) + "|")
        for method in _order(dm["method"].unique()):
            dmm = dm[dm["method"] == method]
            cells = [_cell(dmm[dmm["task"] == t]) if (dmm["task"] == t).any() else "-" for t in tasks]
            if average:
                per_seed = dmm.groupby("seed", dropna=False)
                full = [g for _, g in per_seed if set(g["task"]) == set(tasks)]
                if full:
                    avg = pd.DataFrame([{v: g[v].mean() for v in VALUES} | {"diverged": 0, "invalid": 0}
                                        for g in full])
                    cells.append(_cell(avg))
                else:
                    cells.append("-")
            out.append(f"| {method} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def cell_text(m: dict | str | None) -> str:
    """'MSE / MAE / rho' of one metrics dict (a string is shown as it is: e.g. a refusal)."""
    if isinstance(m, str):
        return m
    if m is None:
        return "-"
    frame = load_metrics_dicts([m])
    return _cell(frame)


def load_metrics_dicts(ms: list[dict]) -> pd.DataFrame:
    rows = [{"metric": m.get("metric"), "task": m.get("task"), "method": method_label(m), "seed": m.get("seed"),
             "mse": m.get("all_steps_mse_mean"), "mae": m.get("all_steps_mae_mean"),
             "rho": m.get("final_step_spearman_mean"), "diverged": m.get("diverged_trajectories", 0),
             "invalid": m.get("invalid_predictions", 0)} for m in ms]
    return pd.DataFrame(rows).astype({v: float for v in VALUES})


def grid_table(title: str, rows: list[str], cols: list[str], cells: dict) -> str:
    """Markdown: cells[(row, col)] is a list of metrics dicts (one per seed), a string, or missing."""
    lines = [f"#### {title}\n", "| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        txt = []
        for c in cols:
            v = cells.get((r, c))
            txt.append(v if isinstance(v, str) else ("-" if not v else _cell(load_metrics_dicts(v))))
        lines.append(f"| {r} | " + " | ".join(txt) + " |")
    return "\n".join(lines) + "\n"
