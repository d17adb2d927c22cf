"""Turn metrics.json files into paper-style markdown tables (mean (std) over simulator seeds).

    python utils/make_tables.py --metrics_files "output/*/*/test/metrics.json" --out results/table.md
    python utils/make_tables.py --help      # every flag (gptfluence/cli/make_tables.py)
"""


def main(argv=None):
    from gptfluence.cli import make_tables
    return make_tables.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
