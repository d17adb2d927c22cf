"""The released rescale_tracincp.py rescaled TracIn-CP predictions by one global factor. Here utils/run_tracin.py
fits that rescaling on the training runs and writes the rescaled predictions itself; this script says so.

    python rescale_tracincp.py
"""


def main(argv=None):
    from gptfluence.cli.published import rescale_tracincp
    return rescale_tracincp(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
