"""Copy the committed results tables into the README, so that the README never drifts from results/.

In README.md a block

    <!-- results/default/table.md -->
    ...anything...
    <!-- /results -->

is replaced by the current content of that file (any path under the repo). With --check nothing is written and
the exit status is 1 when the README is out of date (the test suite runs this).

    python utils/update_readme.py            # rewrite the blocks
    python utils/update_readme.py --check    # fail if a block differs from its file
"""

from __future__ import annotations

import re
from pathlib import Path

from . import parser

BLOCK = re.compile(r"(<!-- (?P<path>[^ >]+\.md) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def render(readme: str, root: Path) -> str:
    """The README with every results block filled from its file (DataError naming a missing file)."""
    from ..io import DataError

    def fill(m):
        path = root / m.group("path")
        if not path.is_file():
            raise DataError(f"README.md: results block names {m.group('path')}, which does not exist")
        return m.group(1) + path.read_text().strip() + "\n" + m.group(4)
    return BLOCK.sub(fill, readme)


def build_parser():
    p = parser(__doc__, "update_readme.py")
    p.add_argument("--readme", default="README.md", help="the README to update")
    p.add_argument("--check", action="store_true", help="only check: exit 1 if a block differs from its file")
    return p


def main(argv=None) -> int:
    from ..io import atomic_open
    args = build_parser().parse_args(argv)
    path = Path(args.readme)
    text = path.read_text()
    new = render(text, path.resolve().parent)
    if args.check:
        if new != text:
            print(f"{path}: results blocks differ from their files; run python utils/update_readme.py")
            return 1
        print(f"{path}: {len(BLOCK.findall(text))} results blocks up to date")
        return 0
    if new != text:
        with atomic_open(path) as f:
            f.write(new)
    print(f"{path}: {len(BLOCK.findall(text))} results blocks written")
    return 0
