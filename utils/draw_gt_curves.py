"""Draw the true (recorded) metric trajectories of chosen test examples over a set of processed runs.

    python utils/draw_gt_curves.py --help      # every flag (gptfluence/cli/draw_gt_curves.py)
"""


def main(argv=None):
    from gptfluence.cli import draw_gt_curves
    return draw_gt_curves.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
