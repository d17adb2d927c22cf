"""Mislabelled-data experiment of the paper on the built-in sentiment task (sst2), one command
(gptfluence/experiments/mislabelled.py explains it).

    python utils/mislabelled.py --preset quick
    python utils/mislabelled.py --help      # every flag (gptfluence/cli/mislabelled.py)
"""


def main(argv=None):
    from gptfluence.cli import mislabelled
    return mislabelled.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
