"""The paper's experiments, each one command: main, metrics, unseen, order, cp_interval, model_size.

    python utils/experiments.py unseen --preset quick
    python utils/experiments.py --help      # every flag (gptfluence/cli/experiments.py)
"""


def main(argv=None):
    from gptfluence.cli import experiments
    return experiments.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
