"""The best validation MSE of a simulator training (the released script's name).

    python utils/get_min_valid_loss.py rte output/rte/<run folder>/train.log
    python utils/get_min_valid_loss.py rte output/rte/<run folder>        # reads history.json
"""


def main(argv=None):
    from gptfluence.cli.published import get_min_valid_loss
    return get_min_valid_loss(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
