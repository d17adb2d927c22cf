"""The whole method in one command, offline (what reproduce.sh runs).

    python utils/reproduce.py --preset quick
    python utils/reproduce.py --help      # every flag (gptfluence/cli/reproduce.py)
"""


def main(argv=None):
    from gptfluence.cli import reproduce
    return reproduce.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
