"""Draw true and predicted trajectories from test.py outputs (PNG).

    python utils/draw_pred_curves.py --help      # every flag (gptfluence/cli/draw_pred_curves.py)
"""


def main(argv=None):
    from gptfluence.cli import draw_pred_curves
    return draw_pred_curves.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
