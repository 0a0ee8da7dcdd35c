"""Lesson 00's Binder link and the lesson times agree with the README and the headers."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[0-9]_*.ipynb"))


def _markdown(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_lesson_00_opens_the_readme_badge_link():
    readme = (ROOT / "README.md").read_text()
    badges = re.findall(r"\[!\[Binder[^\]]*\]\([^)]*\)\]\((https://mybinder\.org/[^)]+)\)", readme)
    lessons = [url for url in badges if url.endswith("notebooks/00_start_here.ipynb")]
    badge = lessons[0] if len(lessons) == 1 else None
    assert badge, "the README has no Binder badge"
    lesson = _markdown(ROOT / "notebooks" / "00_start_here.ipynb")
    links = re.findall(r"\((https://mybinder\.org/v2/[^)]+)\)", lesson)
    assert links == [badge]
    assert "OWNER" not in lesson
    assert "REPO" not in lesson
    assert badge.endswith("?urlpath=lab/tree/notebooks/00_start_here.ipynb")


def _header_time(path: Path) -> str:
    header = "".join(json.loads(path.read_text())["cells"][0]["source"])
    found = re.search(r"\*\*Time needed\.\*\* About (\d+(?: to \d+)?) minutes", header)
    assert found, f"{path.name}: no 'Time needed. About N minutes' in the header"
    return found.group(1)


def test_lesson_times_agree_everywhere():
    """Each header's time is the one in lesson 00's map, the README and the teaching guide.

    Lessons 00-06 must have a row everywhere; a later lesson is checked once lesson 00's
    map lists it.
    """
    assert len(NOTEBOOKS) >= 7
    lesson_map = _markdown(ROOT / "notebooks" / "00_start_here.ipynb")
    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "teaching_guide.md").read_text()
    for path in NOTEBOOKS:
        time = _header_time(path)
        name = path.stem
        in_map = re.search(rf"^\| \*\*{name}\*\* \|.*\| ([^|]+) min \|$", lesson_map, re.M)
        in_readme = re.search(
            rf"^\| \[[^]]+\]\(notebooks/{name}\.ipynb\) \|[^|]+\| ([^|]+) min \|", readme, re.M
        )
        in_guide = re.search(rf"^\| `{name}` \|.*\| ([^|]+) min \|$", guide, re.M)
        for where, row in (
            ("lesson 00", in_map),
            ("README", in_readme),
            ("teaching guide", in_guide),
        ):
            assert row, f"{name} has no row with a time in the {where}"
            assert row.group(1).strip() == time, (
                f"{name}: {time} min in its header, {row.group(1)} in the {where}"
            )
