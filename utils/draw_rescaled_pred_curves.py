"""GT vs rescaled TracIn-CP predictions:
true and predicted trajectories (PNG) from pred_and_gt_<metric>_trajectories.out files.

    python utils/draw_rescaled_pred_curves.py --pred_files <file> ... [--test_ids 0-5] [--out cmp.png]

The released script's name; utils/draw_pred_curves.py does the work (default labels: TracIn-CP).
"""

WHAT = "GT vs rescaled TracIn-CP predictions"
LABELS = "TracIn-CP".split(",")


def main(argv=None):
    import sys

    from gptfluence.cli.published import draw_compare
    args = sys.argv[1:] if argv is None else argv
    return draw_compare(args, "draw_rescaled_pred_curves.py", LABELS, WHAT)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
