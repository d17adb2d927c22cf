"""Fidelity of every method against the honest baselines, one command (planted runs, a preset's runs, unseen test
examples; every method x 3 simulator seeds; and every block of the preset's runs held out in turn); prints and
writes a markdown table.

    python bench/bench_fidelity.py                  # the default preset (reuses results/default/work)
    python bench/bench_fidelity.py --help           # every flag (gptfluence/cli/fidelity.py)
"""


def main(argv=None):
    from gptfluence.cli import fidelity
    return fidelity.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
