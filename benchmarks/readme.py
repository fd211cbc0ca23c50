"""Refresh the README's headline results from the tables the benchmark scripts wrote.

``python -m benchmarks.readme`` copies the test-RMSE table of ``benchmarks/results/molecules.md``
(written by ``python -m benchmarks.molecules``) and the verdicts of its comparisons of pLSTM with the best
rival (at the default learning rates and at the rates the search chose) between the README's
``<!-- results:molecules -->`` markers; ``--check`` exits 1 when the README's block differs instead of
writing it. Run it after every benchmark run that changes the table; ``tests/test_readme.py`` checks that
they agree.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MOLECULES = ROOT / "benchmarks" / "results" / "molecules.md"
SECTION = "## Test RMSE"
#: The comparison sections whose verdict (the text under their table) the README repeats.
COMPARISONS = ("## pLSTM (default) against", "## Every searched family at")
BEGIN, END = "<!-- results:molecules -->", "<!-- /results:molecules -->"
_BLOCK = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)


def _section(text: str, heading: str) -> tuple[str, str]:
    """The full heading line starting with ``heading`` and the text under it, up to the next section."""
    start = text.index(heading)
    title, _, rest = text[start:].partition("\n")
    return title, rest.split("\n## ", 1)[0]


def headline_results(results: Path = MOLECULES) -> str:
    """The first table under ``## Test RMSE`` in ``results``, then the verdict of each comparison section
    that ``results`` has (a bold lead from its heading, its text without the table), each followed by one
    empty line."""
    text = results.read_text()
    if SECTION not in text:
        raise ValueError(f"{results} has no section {SECTION!r}; was it written by benchmarks.molecules?")
    rows = [line for line in _section(text, SECTION)[1].splitlines() if line.startswith("|")]
    if not rows:
        raise ValueError(f"{results}: the section {SECTION!r} holds no table")
    parts = ["\n".join(rows)]
    for heading in COMPARISONS:
        if heading in text:
            title, body = _section(text, heading)
            verdict = " ".join(line for line in body.splitlines() if line and not line.startswith("|"))
            parts.append(f"**{title.removeprefix('## ')}.** {verdict}")
    return "\n\n".join(parts) + "\n\n"


def readme_block(readme: Path = README) -> str:
    """What stands between the README's results markers."""
    match = _BLOCK.search(readme.read_text())
    if match is None:
        raise ValueError(f"{readme} lacks the markers {BEGIN} ... {END}")
    return match.group(1)


def refresh(readme: Path = README, results: Path = MOLECULES) -> bool:
    """Write the headline table into ``readme``; whether the file changed."""
    text = readme.read_text()
    readme_block(readme)
    new = _BLOCK.sub(lambda _: f"{BEGIN}\n{headline_results(results)}{END}", text, count=1)
    if new != text:
        readme.write_text(new)
    return new != text


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's results are stale, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = readme_block() != headline_results()
        if stale:
            print("README.md: the headline results differ from benchmarks/results/molecules.md; "
                  "run python -m benchmarks.readme", file=sys.stderr)
        return int(stale)
    print("README.md " + ("updated" if refresh() else "already up to date"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
