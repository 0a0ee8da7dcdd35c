"""The Explorer in Jupyter Notebook 7, the classic-looking front-end, in Chromium.

Notebook 7 is a JupyterLab-based front-end with the same widget manager. Its pages
(``/tree``, ``/notebooks/...``) come from the ``notebook`` package's server extension,
which the shared JupyterLab server of the ``lab_url`` fixture loads too: the page the
test opens is exactly what ``jupyter notebook`` serves, without a second server to start.
It opens notebooks/explorer_app.ipynb (the Explorer under its model and photo
choosers), runs all cells, and moves the layer slider until the picture changes.
"""

from __future__ import annotations

import pytest
from servers import accept_kernel_and_wait_idle, api, run_all_cells

pytestmark = pytest.mark.browser

APP = "explorer_app.ipynb"
RUN_TIMEOUT_MS = 120_000
EVENT_TIMEOUT_MS = 60_000
OVERLAY = ".gradcam-explorer img.gradcam-overlay"


def _shut_down_sessions(lab_url: str) -> None:
    for session in api(lab_url, "/api/sessions"):
        if session["path"].endswith(APP):
            api(lab_url, f"/api/sessions/{session['id']}", method="DELETE")


def test_the_explorer_runs_in_notebook7(lab_url, browser, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []

    def on_error(error) -> None:
        # Notebook 7's own start-up sometimes throws in this suite's server, and not the
        # same way twice ("Cannot read properties of undefined (reading 'schema')" from its
        # settings registry, "Command 'filebrowser:open-path' not registered."); not seen
        # in a plain `jupyter notebook`. Those are printed; an error from the widget code
        # (ipywidgets' manager and controls) fails the test.
        stack = error.stack or ""
        if "widgets" in stack or "widget" in str(error).lower():
            errors.append(f"{error}\n{stack}")
        else:
            print(f"Notebook 7 page error, not from the widgets: {error}")

    page.on("pageerror", on_error)
    try:
        page.goto(f"{lab_url}/notebooks/{APP}", timeout=EVENT_TIMEOUT_MS)
        page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=EVENT_TIMEOUT_MS)
        assert page.title().startswith(APP.removesuffix(".ipynb"))  # Notebook 7's own page
        assert page.locator("#main-panel, .jp-NotebookApp, #top-panel").count() > 0
        accept_kernel_and_wait_idle(page, lab_url, APP, EVENT_TIMEOUT_MS)
        for attempt in range(2):
            run_all_cells(page)
            try:  # the code cell starts ("[*]:") or is done ("[1]:")
                page.wait_for_function(
                    "() => /\\[(\\*|\\d+)\\]/.test("
                    "document.querySelector('.jp-CodeCell .jp-InputPrompt').innerText)",
                    timeout=20_000,
                )
                break
            except PlaywrightTimeoutError:  # the click came before the kernel's channels
                if attempt:
                    raise
        page.locator(OVERLAY).wait_for(timeout=RUN_TIMEOUT_MS)
        caption = page.locator(".gradcam-explorer .gradcam-caption")
        assert "Egyptian cat" in caption.inner_text()

        def src() -> str:
            return page.locator(OVERLAY).get_attribute("src") or ""

        before = src()
        # Drag the layer slider's handle from the last layer to the first, with the mouse.
        handle = page.locator(".gradcam-explorer .gradcam-layer .noUi-handle").bounding_box()
        track = page.locator(".gradcam-explorer .gradcam-layer .noUi-target").bounding_box()
        page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
        page.mouse.down()
        page.mouse.move(track["x"] + 2, handle["y"] + handle["height"] / 2, steps=10)
        page.mouse.up()
        page.wait_for_function(
            "([selector, old]) => { const img = document.querySelector(selector);"
            " return img.src !== old && img.complete && img.naturalWidth > 0; }",
            arg=[OVERLAY, before],
            timeout=EVENT_TIMEOUT_MS,
        )
        page.wait_for_function(
            "() => document.querySelector('.gradcam-explorer .gradcam-caption')"
            ".innerText.includes('stem')",
            timeout=EVENT_TIMEOUT_MS,
        )
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(artifacts / "notebook7.png"))
        assert not errors, errors
    except Exception:
        page.screenshot(path=str(artifacts / "notebook7_failure.png"))
        raise
    finally:
        page.close()
        _shut_down_sessions(lab_url)
