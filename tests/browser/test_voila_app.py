"""notebooks/explorer_app.ipynb as an app: Voila in Chromium, no code on the page.

Two ways to open it, one test each:

* ``voila`` started on 127.0.0.1, as a teacher runs it on a laptop in a lecture hall;
* ``/voila/render/explorer_app.ipynb`` on the JupyterLab server, the path that the
  README's second Binder badge opens (Voila's server extension).

Each waits for the app, checks that no code is shown, moves the layer slider and sees
the picture change, then uploads a photo and sees it explained.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from servers import free_port, listens, running

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
APP = "explorer_app.ipynb"
APP_TIMEOUT_MS = 180_000  # Voila runs the notebook when the page is asked for
EVENT_TIMEOUT_MS = 60_000
OVERLAY = ".gradcam-explorer img.gradcam-overlay"


@pytest.fixture(scope="module")
def voila_url(chromium_path, tmp_path_factory) -> Iterator[str]:
    """``voila notebooks/explorer_app.ipynb`` on 127.0.0.1 (a copy, in a temporary folder)."""
    root = tmp_path_factory.mktemp("voila")
    shutil.copy(REPO / "notebooks" / APP, root / APP)
    port = free_port()
    with running(
        [sys.executable, "-m", "voila", str(root / APP), "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1"],
        name="voila",
        # The port answers; the page itself runs the notebook, so it is not asked for here.
        ready=listens(port),
        log=root / "voila.log",
        cwd=root,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", JUPYTER_RUNTIME_DIR=str(root / "rt")),
    ):
        yield f"http://127.0.0.1:{port}"


def _src(page) -> str:
    return page.locator(OVERLAY).get_attribute("src") or ""


def _wait_src_change(page, old: str) -> str:
    page.wait_for_function(
        "([selector, old]) => { const img = document.querySelector(selector);"
        " return img !== null && img.src !== old && img.complete && img.naturalWidth > 0; }",
        arg=[OVERLAY, old],
        timeout=EVENT_TIMEOUT_MS,
    )
    return _src(page)


def _photo_file(folder: Path) -> tuple[Path, tuple[int, int]]:
    """A photo to upload: scikit-image's cup of coffee as a PNG file."""
    import skimage.data

    photo = np.ascontiguousarray(skimage.data.coffee()[..., :3])
    path = folder / "my_coffee.png"
    Image.fromarray(photo).save(path)
    return path, (photo.shape[1], photo.shape[0])


def _exercise_the_app(page, url: str, artifacts: Path, tag: str, tmp_path: Path) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(url, timeout=APP_TIMEOUT_MS)
        page.locator(OVERLAY).wait_for(timeout=APP_TIMEOUT_MS)
        assert "Egyptian cat" in page.locator(".gradcam-explorer .gradcam-caption").inner_text()
        # No code for people who do not code: Voila strips the inputs.
        assert page.locator(".jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor").count() == 0
        assert "ExplorerApp" not in page.locator("body").inner_text()
        assert page.get_by_text("Traceback").count() == 0

        before = _wait_src_change(page, "")
        handle = page.locator(".gradcam-explorer .gradcam-layer .noUi-handle")
        handle.focus()
        page.keyboard.press("ArrowLeft")  # from the last layer to the one before
        after = _wait_src_change(page, before)
        assert after != before
        page.wait_for_function(
            "() => document.querySelector('.gradcam-explorer .gradcam-caption')"
            ".innerText.includes('blocks.15')",
            timeout=EVENT_TIMEOUT_MS,
        )

        photo, (width, height) = _photo_file(tmp_path)
        with page.expect_file_chooser(timeout=EVENT_TIMEOUT_MS) as chooser:
            page.locator(".gradcam-app-upload").click()  # the upload button opens a chooser
        chooser.value.set_files(str(photo))
        page.wait_for_function(
            "(text) => document.querySelector('.gradcam-app-message').innerText.includes(text)",
            arg=f"{width} x {height} pixels",
            timeout=EVENT_TIMEOUT_MS,
        )
        _wait_src_change(page, after)
        chosen = page.locator(".gradcam-app-photo select").evaluate(
            "select => select.options[select.selectedIndex].text"
        )
        assert chosen.replace("\xa0", " ") == "your photo: my_coffee.png"
        page.screenshot(path=str(artifacts / f"voila_{tag}.png"), full_page=True)
        assert not errors, errors
    except Exception:
        page.screenshot(path=str(artifacts / f"voila_{tag}_failure.png"))
        raise


def test_voila_serves_the_explorer_app(voila_url, browser, artifacts, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        _exercise_the_app(page, voila_url, artifacts, "standalone", tmp_path)
    finally:
        page.close()


def test_the_binder_badges_voila_path_serves_the_app(lab_url, browser, artifacts, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        _exercise_the_app(page, f"{lab_url}/voila/render/{APP}", artifacts, "render", tmp_path)
    finally:
        page.close()
