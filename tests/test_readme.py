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
