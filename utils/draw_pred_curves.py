"""Draw true and predicted trajectories from test.py outputs (PNG).

    python utils/draw_pred_curves.py --pred_files output/rte/enc_sim_loss_seed42/test/pred_and_gt_loss_trajectories.out \
        output/rte/original_loss_seed42/test/pred_and_gt_loss_trajectories.out --labels GPTfluence Simfluence \
        --test_ids 0-5 --out pred_rte.png

Each --pred_files entry is a pred_and_gt_<metric>_trajectories.out (JSON lines {"run", "id", "steps", "gt",
"pred"}); one panel per (run, test id), the true curve once and one dashed curve per file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pred_files", nargs="+", required=True, help="pred_and_gt_<metric>_trajectories.out files")
    p.add_argument("--labels", nargs="+", default=None, help="one label per file (default: the parent folder names)")
    p.add_argument("--test_ids", default=None, help="test ids to draw, e.g. 0-5,12 (default: the first 6)")
    p.add_argument("--run", default=None, help="run name to draw (default: the first run in the first file)")
    p.add_argument("--metric", default=None, help="y-axis label (default: from the file name)")
    p.add_argument("--cols", type=int, default=3, help="panels per row")
    p.add_argument("--out", default="pred_curves.png", help="output PNG")
    return p.parse_args(argv)


def read_predictions(path) -> dict:
    """{(run, id): row} of a pred_and_gt file."""
    from gptfluence.io import DataError, iter_jsonl
    rows = {}
    for lineno, r in iter_jsonl(path):
        if not isinstance(r, dict) or not {"run", "id", "steps", "gt", "pred"} <= set(r):
            raise DataError(f"{path}:{lineno}: expected a JSON object with run, id, steps, gt, pred")
        rows[(r["run"], int(r["id"]))] = r
    if not rows:
        raise DataError(f"{path}: no trajectories")
    return rows


def main(argv=None):
    args = parse_args(argv)
    from gptfluence.io import DataError
    from gptfluence.plots import plot_trajectories
    from gptfluence.runs import parse_id_ranges
    files = [Path(f) for f in args.pred_files]
    labels = args.labels or [f.parent.parent.name if f.parent.name == "test" else f.parent.name for f in files]
    if len(labels) != len(files):
        raise DataError(f"--labels has {len(labels)} entries for {len(files)} files")
    preds = [read_predictions(f) for f in files]
    run = args.run or next(iter(preds[0]))[0]
    ids = parse_id_ranges(args.test_ids) if args.test_ids else sorted(i for r, i in preds[0] if r == run)[:6]
    curves, steps = [], None
    for tid in ids:
        key = (run, tid)
        missing = [str(f) for f, p in zip(files, preds) if key not in p]
        if missing:
            raise DataError(f"run {run!r}, test id {tid}: not in {', '.join(missing)}")
        first = preds[0][key]
        steps = first["steps"]
        curves.append({"title": f"{run[-28:]} id {tid}", "gt": first["gt"],
                       "pred": {lab: p[key]["pred"] for lab, p in zip(labels, preds)}})
    metric = args.metric or files[0].name.removeprefix("pred_and_gt_").removesuffix("_trajectories.out")
    plot_trajectories(args.out, steps, curves, metric, args.cols)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from gptfluence.cli import run_main
    run_main(main)
