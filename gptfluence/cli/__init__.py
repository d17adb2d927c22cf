"""The command-line layer: one module per entry script (argument parsing, then one pipeline call).

The top-level scripts (train.py, test.py, influence.py, utils/*.py) import the module of the same name
from here and call its main(argv); keeping the parsers in the package lets the tests run them in-process.
Every main() checks its arguments before any work; gptfluence.runtime.run_main turns bad input into one
line "error: ..." with exit status 2.
"""

from __future__ import annotations

import argparse


def str2bool(text) -> bool:
    """True / False / 1 / 0 / yes / no (python-fire style values of the released scripts)."""
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off", "none"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def optional_int(text):
    """An int, or None for 'None' (the released scripts print and accept None)."""
    if str(text).strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or None, got {text!r}") from None


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump): "<prog>: error: <what> (see --help)"."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parser(doc: str, prog: str | None = None) -> argparse.ArgumentParser:
    return OneLineParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
