"""Copy the committed results tables (results/**/table.md) into README.md; --check fails when they differ.

    python utils/update_readme.py [--check]
"""


def main(argv=None):
    from gptfluence.cli import update_readme
    return update_readme.main(argv)


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
