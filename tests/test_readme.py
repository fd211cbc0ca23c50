"""Every Python block of the README and the docs runs as written; the README's results are generated."""
import os
import re
from pathlib import Path

import pytest

from benchmarks.readme import headline_results, readme_block

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [(page.relative_to(ROOT).as_posix(), block) for page in PAGES
          for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)]


def test_readme_has_examples():
    assert sum(page == "README.md" for page, _ in BLOCKS) >= 2


@pytest.mark.parametrize("page, block", BLOCKS, ids=[f"{page}:{i}" for i, (page, _) in enumerate(BLOCKS)])
def test_block_runs(page, block, tmp_path, monkeypatch):
    (tmp_path / "data").symlink_to(os.path.join(ROOT, "data"))
    monkeypatch.chdir(tmp_path)
    exec(compile(block, page, "exec"), {})


def test_readme_results_are_the_generated_table():
    assert readme_block() == headline_results(), "stale README results: run python -m benchmarks.readme"


def test_readme_stays_short():
    assert (ROOT / "README.md").stat().st_size <= 12 * 1024


def test_the_headline_is_the_table_and_the_verdicts_of_the_comparisons(tmp_path):
    results = tmp_path / "molecules.md"
    results.write_text("# Title\n\n## Test RMSE (mean)\n\n| model | a |\n|---|---|\n| GIN | 1.0 |\n\n"
                       "## Ablations\n\n| model | a |\n|---|---|\n| x | 2.0 |\n\n"
                       "## pLSTM (default) against the best rival\n\n| set | x |\n|---|---|\n| a | 1 |\n\n"
                       "Over these sets: 1 of 1.\n\nECFP: 2 of 2.\n\n## Commands\n\n- run\n")
    assert headline_results(results) == ("| model | a |\n|---|---|\n| GIN | 1.0 |\n\n"
                                         "**pLSTM (default) against the best rival.** Over these sets: 1 of 1. "
                                         "ECFP: 2 of 2.\n\n")
