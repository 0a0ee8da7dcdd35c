"""Every "section N" a lesson's text mentions has a "## N." heading in the same notebook.

A rewrite once deleted a whole section of lesson 06 while the exercises, the quiz and the
summary still pointed at it; this keeps the numbering and the references together.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted(
    (Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")
)

# "section 5", "sections 3 and 5", "Section 7"; not "lesson 04's section 9" (another notebook)
MENTION = re.compile(
    r"(?<!lesson )(?<!lesson \d\d's )\b[Ss]ections? (\d+)(?:(?:,| and| or) (\d+))*"
)
NUMBER = re.compile(r"\d+")


def _text(path: Path) -> tuple[list[str], set[int]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    markdown = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]
    headings = {int(m) for text in markdown for m in re.findall(r"^## (\d+)\.", text, flags=re.M)}
    return markdown, headings


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_sections_are_numbered_without_gaps(path):
    _, headings = _text(path)
    if headings:
        assert sorted(headings) == list(range(min(headings), max(headings) + 1)), sorted(headings)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_mentioned_section_exists(path):
    markdown, headings = _text(path)
    for text in markdown:
        for match in MENTION.finditer(text):
            context = text[max(0, match.start() - 20) : match.start()]
            if re.search(r"lesson \d+(?:'s)?\s*$", context):
                continue
            for number in NUMBER.findall(match.group(0)):
                assert int(number) in headings, (
                    f"{path.name}: {match.group(0)!r} has no '## {number}.'"
                )
