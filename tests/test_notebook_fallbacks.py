"""Saved lessons show the Explorer's picture where widgets do not render.

GitHub and nbviewer do not run widgets (and saved widget state cannot be relied on:
ipywidgets #3888, jupyterlab #15361), so each saved Explorer output must carry the
``image/png`` fallback that ``Explorer._repr_mimebundle_`` adds. Re-execute a lesson
(``jupyter nbconvert --execute --inplace``) after changing the Explorer to refresh it.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").rglob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def explorer_outputs(path: Path) -> list[tuple[int, dict]]:
    """``(cell number, output data)`` of every saved Explorer in a notebook."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for number, cell in enumerate(notebook["cells"], start=1):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            data = output.get("data", {})
            plain = "".join(data.get("text/plain", ""))
            if WIDGET in data and plain.startswith("Explorer("):
                found.append((number, data))
    return found


def test_the_lessons_show_explorers():
    # Without any Explorer output the checks below would pass vacuously.
    assert sum(len(explorer_outputs(path)) for path in NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_every_saved_explorer_carries_a_png(path: Path):
    for number, data in explorer_outputs(path):
        assert "image/png" in data, (
            f"{path.name}, cell {number}: the saved Explorer has no image/png fallback; "
            "re-execute the notebook with the current gradcam_widgets."
        )
        png = base64.b64decode("".join(data["image/png"]))
        picture = Image.open(io.BytesIO(png))
        assert picture.format == "PNG"
        assert min(picture.size) >= 28
