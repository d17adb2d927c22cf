"""How chaotic are the runs? Re-make held-out runs with two batches swapped (the same examples in another order)
and measure how far they drift (gptfluence/experiments/sensitivity.py explains it).

    python utils/sensitivity.py --preset quick
    python utils/sensitivity.py --help      # every flag (gptfluence/cli/sensitivity.py)
"""


def main(argv=None):
    from gptfluence.cli import sensitivity
    return sensitivity.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
