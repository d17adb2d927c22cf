"""Turn metrics.json files (from test.py or utils/run_tracin.py) into paper-style markdown tables.

One table per metric: rows are methods, columns are tasks plus their average, each cell
"MSE / MAE / rho" (mean over held-out runs; --stds adds the stds in parentheses).

    python utils/make_tables.py --metrics_files output/*/*/test/metrics.json --out results/table.md
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHOD_NAMES = {"original": "Simfluence", "enc_sim": "GPTfluence", "norder_enc_sim": "GPTfluence",
                "gpt_sim": "GPTfluence (gpt_sim)", "grad_dot": "Grad-Dot"}
METHOD_ORDER = ["TracIn-CP(10)", "TracIn-CP(all)", "Grad-Dot", "Simfluence", "GPTfluence"]
TASK_ORDER = ["rte", "sst2", "boolq", "webnlg", "wmt16_de_en", "flan"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metrics_files", nargs="+", required=True, help="metrics.json files (globs are expanded)")
    p.add_argument("--metrics", nargs="+", default=None, help="only these metrics (default: all found)")
    p.add_argument("--stds", action="store_true", help="show stds in parentheses")
    p.add_argument("--label", choices=["method", "method+dir"], default="method",
                   help="row label: the method, or the method plus its run folder (for ablations)")
    p.add_argument("--out", default=None, help="write the markdown here too")
    return p.parse_args(argv)


def method_label(m: dict, path: Path, label: str) -> str:
    name = m.get("sim_name", "?")
    if name.startswith("tracin_cp"):
        base = "TracIn-CP" + name[len("tracin_cp"):]
    else:
        base = METHOD_NAMES.get(name, name)
    if m.get("separate_proj"):
        base += " (f!=g)"
    order = m.get("order_n")
    if order and order != 1:
        base += f" (n={order})"
    if label == "method+dir":
        base += f" [{path.parent.parent.name}]"
    return base


def cell(m: dict | None, stds: bool) -> str:
    if m is None:
        return "-"
    keys = [("all_steps_mse_mean", "all_steps_mse_std"), ("all_steps_mae_mean", "all_steps_mae_std"),
            ("final_step_spearman_mean", "final_step_spearman_std")]
    parts = []
    for k, s in keys:
        v = m.get(k)
        if v is None:
            parts.append("n/a")
        else:
            parts.append(f"{v:.3f}" + (f" ({m[s]:.3f})" if stds and m.get(s) is not None else ""))
    txt = " / ".join(parts)
    if m.get("diverged_trajectories"):
        txt += f" ({m['diverged_trajectories']} diverged)"
    return txt


def average(cells: list[dict]) -> dict | None:
    keys = ("all_steps_mse_mean", "all_steps_mae_mean", "final_step_spearman_mean")
    if not cells or any(c.get(k) is None for c in cells for k in keys):
        return None
    return {k: sum(c[k] for c in cells) / len(cells) for k in keys}


def build_tables(files: list[Path], metrics=None, stds=False, label="method") -> str:
    by_metric = defaultdict(lambda: defaultdict(dict))
    for f in files:
        m = json.loads(f.read_text())
        if metrics and m.get("metric") not in metrics:
            continue
        by_metric[m.get("metric", "?")][method_label(m, f, label)][m.get("task", "?")] = m
    out = []
    for metric, rows in by_metric.items():
        tasks = sorted({t for r in rows.values() for t in r}, key=lambda t: (TASK_ORDER + [t]).index(t))
        out.append(f"### test {metric}: all-steps MSE / MAE / final-step Spearman (mean over held-out runs)\n")
        out.append("| method | " + " | ".join(tasks) + (" | average |" if len(tasks) > 1 else " |"))
        out.append("|---" * (len(tasks) + 1 + (len(tasks) > 1)) + "|")
        order = sorted(rows, key=lambda r: (METHOD_ORDER.index(r.split(" ")[0]) if r.split(" ")[0] in METHOD_ORDER
                                            else len(METHOD_ORDER), r))
        for r in order:
            cells = [cell(rows[r].get(t), stds) for t in tasks]
            if len(tasks) > 1:
                have = [rows[r][t] for t in tasks if t in rows[r]]
                avg = average(have) if len(have) == len(tasks) else None
                cells.append(cell(avg, False))
            out.append(f"| {r} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv=None):
    args = parse_args(argv)
    files = []
    for pat in args.metrics_files:
        files.extend(Path(p) for p in sorted(glob.glob(pat)) if Path(p).is_file())
    if not files:
        raise SystemExit(f"no metrics.json files match {args.metrics_files}")
    text = build_tables(files, args.metrics, args.stds, args.label)
    print(text)
    if args.out:
        from gptfluence.io import atomic_open
        with atomic_open(args.out) as f:
            f.write(text + "\n")
    return text


if __name__ == "__main__":
    main()
