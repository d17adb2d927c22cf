"""Turn metrics.json files (test.py, utils/run_tracin.py, the experiments) into paper-style markdown tables.

One table per metric: rows are methods, columns are tasks plus their average, each cell "MSE / MAE / rho",
the mean over the simulator seeds found with the std over seeds in parentheses (gptfluence/tables.py).

    python utils/make_tables.py --metrics_files "output/*/*/test/metrics.json" --out results/table.md
"""

from __future__ import annotations

import glob
from pathlib import Path

from . import parser


def build_parser():
    p = parser(__doc__, "make_tables.py")
    p.add_argument("--metrics_files", nargs="+", required=True, help="metrics.json files (globs are expanded)")
    p.add_argument("--metrics", nargs="+", default=None, help="only these metrics (default: all found)")
    p.add_argument("--out", default=None, help="write the markdown here too")
    return p


def main(argv=None) -> str:
    from ..io import DataError, atomic_open
    from ..tables import load_metrics, method_tables
    args = build_parser().parse_args(argv)
    files = [Path(p) for pat in args.metrics_files for p in sorted(glob.glob(pat)) if Path(p).is_file()]
    if not files:
        raise DataError(f"no metrics.json files match {' '.join(args.metrics_files)}")
    frame = load_metrics(files)
    if args.metrics:
        frame = frame[frame["metric"].isin(args.metrics)]
        if frame.empty:
            raise DataError(f"none of the files holds the metrics {args.metrics}")
    text = method_tables(frame)
    print(text)
    if args.out:
        with atomic_open(args.out) as f:
            f.write(text + "\n")
    return text
