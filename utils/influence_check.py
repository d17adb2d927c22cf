"""Ground-truth check of influence: re-make a run without each method's top examples and compare the predicted
with the actual change of the final test loss (gptfluence/experiments/influence_check.py explains it).

    python utils/influence_check.py --preset quick
    python utils/influence_check.py --help      # every flag (gptfluence/cli/influence_check.py)
"""


def main(argv=None):
    from gptfluence.cli import influence_check
    return influence_check.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
