"""Draw true and predicted trajectories from test.py outputs (PNG).

    python utils/draw_pred_curves.py --pred_files output/rte/<sim A>/test/pred_and_gt_loss_trajectories.out \
        output/rte/<sim B>/test/pred_and_gt_loss_trajectories.out --labels GPTfluence Simfluence --test_ids 0-5

Each --pred_files entry is a pred_and_gt_<metric>_trajectories.out (the released layout, or this repo's earlier
one); one panel per (run, test id), the true curve once and one dashed curve per file.
"""

from __future__ import annotations

from pathlib import Path

from . import parser


def build_parser():
    p = parser(__doc__, "draw_pred_curves.py")
    a = p.add_argument
    a("--pred_files", nargs="+", required=True, help="pred_and_gt_<metric>_trajectories.out files")
    a("--labels", nargs="+", default=None, help="one label per file (default: the parent folder names)")
    a("--test_ids", default=None, help="test ids to draw, e.g. 0-5,12 (default: the first 6)")
    a("--run", default=None, help="run name to draw (default: the first run in the first file)")
    a("--metric", default=None, help="y-axis label (default: from the file name)")
    a("--cols", type=int, default=3, help="panels per row")
    a("--out", default="pred_curves.png", help="output PNG")
    return p


def comparison_curves(files, labels, run=None, ids=None, k: int = 6) -> tuple[list, str]:
    """plot_trajectories curves of (run, id) keys present in every file: (curves, run)."""
    from ..formats import read_pred_and_gt
    from ..io import DataError
    preds = [read_pred_and_gt(f) for f in files]
    run = run or next(iter(preds[0]))[0]
    ids = ids or sorted(i for r, i in preds[0] if r == run)[:k]
    curves = []
    for tid in ids:
        key = (run, tid)
        missing = [str(f) for f, p in zip(files, preds) if key not in p]
        if missing:
            raise DataError(f"run {run!r}, test id {tid}: not in {', '.join(missing)}")
        first = preds[0][key]
        # a file recorded at other steps (e.g. every k-th step) keeps its own steps
        curves.append({"title": f"{run[-28:]} id {tid}", "steps": first["steps"], "gt": first["gt"],
                       "pred": {lab: p[key]["pred"] if p[key]["steps"] == first["steps"]
                                else (p[key]["steps"], p[key]["pred"]) for lab, p in zip(labels, preds)}})
    return curves, run


def main(argv=None) -> str:
    from ..io import DataError
    from ..plots import plot_trajectories
    from ..runs import parse_id_ranges
    args = build_parser().parse_args(argv)
    files = [Path(f) for f in args.pred_files]
    labels = args.labels or [f.parent.parent.name if f.parent.name == "test" else f.parent.name for f in files]
    if len(labels) != len(files):
        raise DataError(f"--labels has {len(labels)} entries for {len(files)} files")
    ids = parse_id_ranges(args.test_ids) if args.test_ids else None
    curves, _ = comparison_curves(files, labels, args.run, ids)
    metric = args.metric or files[0].name.removeprefix("pred_and_gt_").removesuffix("_trajectories.out")
    plot_trajectories(args.out, curves[0]["steps"], curves, metric, args.cols)
    print(f"wrote {args.out}")
    return args.out
