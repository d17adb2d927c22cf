"""The README's results blocks equal their files (utils/update_readme.py --check), and the block filler itself."""

from pathlib import Path

import pytest

from gptfluence.cli import update_readme
from gptfluence.io import DataError

REPO = Path(__file__).resolve().parent.parent


def test_readme_results_blocks_are_current():
    assert update_readme.main(["--readme", str(REPO / "README.md"), "--check"]) == 0


def test_blocks_filled_from_their_files(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "t.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results/t.md -->\nold table\n<!-- /results -->\nend\n")
    assert update_readme.main(["--readme", str(readme), "--check"]) == 1
    assert update_readme.main(["--readme", str(readme)]) == 0
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    assert readme.read_text() == "intro\n<!-- results/t.md -->\n" + table + "<!-- /results -->\nend\n"
    assert update_readme.main(["--readme", str(readme), "--check"]) == 0
    readme.write_text("<!-- results/missing.md -->\n<!-- /results -->\n")
    with pytest.raises(DataError, match="missing.md, which does not exist"):
        update_readme.main(["--readme", str(readme)])
