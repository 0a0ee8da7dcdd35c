"""The README's method table is the registry's: every method, with its label and paper."""

from __future__ import annotations

import re
from pathlib import Path

import gradcam_widgets as gw

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_registered_method():
    rows = re.findall(r"^\| `\"([^\"]+)\"` \| ([^|]+) \| ([^|]+) \|$", README.read_text(), re.M)
    listed = {name: (label.strip(), paper.strip()) for name, label, paper in rows}
    assert set(listed) == set(gw.METHODS)
    for name, method in gw.METHODS.items():
        label, paper = listed[name]
        assert label.startswith(method.label)
        assert paper == method.paper


def test_readme_layout_names_every_module():
    # the README's "Layout" section is the map of the package: every module is on it
    text = README.read_text()
    section = text[text.index("## Layout") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    package = README.parent / "gradcam_widgets"
    missing = []
    for path in sorted(package.rglob("*.py")):
        name = path.name
        if name == "__init__.py" and path.parent != package:
            name = f"{path.parent.name}/"
        lesson = name.startswith("lesson") and "lesson00.py .. lesson06.py" in section
        if name not in section and not lesson:
            missing.append(str(path.relative_to(package)))
    assert missing == [], f"add these modules to the README's Layout section: {missing}"
