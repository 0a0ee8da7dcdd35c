"""Lesson 00 in a real JupyterLab and Chromium: run all cells, use the keyboard, see it change.

Sliders move with the arrow keys; the pin button and the evidence toggle answer Enter and
Space on the focused control, as any keyboard user would use them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import accept_kernel_and_wait_idle, run_all_cells

pytestmark = pytest.mark.browser

NOTEBOOK = "00_start_here.ipynb"
RUN_TIMEOUT_MS = 90_000  # loading the ImageNet model and the first maps on a busy 2-core CPU
EVENT_TIMEOUT_MS = 60_000


def _src(page, selector: str) -> str:
    return page.locator(selector).get_attribute("src") or ""


def _wait_src_change(page, selector: str, old: str) -> str:
    page.wait_for_function(
        "([selector, old]) => { const img = document.querySelector(selector);"
        " return img !== null && img.src !== old && img.complete && img.naturalWidth > 0; }",
        arg=[selector, old],
        timeout=EVENT_TIMEOUT_MS,
    )
    return _src(page, selector)


def _wait_caption(page, text: str) -> None:
    page.wait_for_function(
        "(text) => document.querySelector('.gradcam-explorer .gradcam-caption')"
        ".innerText.includes(text)",
        arg=text,
        timeout=EVENT_TIMEOUT_MS,
    )


def _press_on_slider(page, slider: str, key: str) -> None:
    handle = page.locator(f"{slider} .noUi-handle")
    handle.focus()
    page.keyboard.press(key)


def test_lesson00_explorer_answers_the_keyboard(lab_url: str, browser, artifacts: Path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    messages: list[str] = []
    page.on("pageerror", lambda error: messages.append(str(error)))
    try:
        page.goto(f"{lab_url}/lab/tree/{NOTEBOOK}", timeout=EVENT_TIMEOUT_MS)
        page.locator(".jp-NotebookPanel").first.wait_for(timeout=EVENT_TIMEOUT_MS)
        accept_kernel_and_wait_idle(page, lab_url, NOTEBOOK, EVENT_TIMEOUT_MS)
        first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
        run_all_cells(page)
        try:  # the first cell starts ("[*]:") or is done ("[1]:")
            page.wait_for_function(
                "(el) => /\\[(\\*|\\d+)\\]/.test(el.innerText)",
                arg=first_prompt.element_handle(),
                timeout=20_000,
            )
        except PlaywrightTimeoutError:  # the click came before the kernel's channels: again
            run_all_cells(page)
        # Done when every code cell shows an execution count ("[12]:"), whatever the
        # lesson's last output says.
        page.wait_for_function(
            "() => { const prompts = [...document.querySelectorAll("
            "'.jp-CodeCell .jp-InputPrompt')];"
            " return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.innerText)); }",
            timeout=RUN_TIMEOUT_MS,
        )

        overlay = ".gradcam-explorer img.gradcam-overlay"
        caption = page.locator(".gradcam-explorer .gradcam-caption")
        page.locator(overlay).wait_for(timeout=EVENT_TIMEOUT_MS)
        assert "Egyptian cat" in caption.inner_text()
        assert "head (7x7)" in caption.inner_text()
        assert page.get_by_text("Traceback").count() == 0

        # The layer slider starts at the last layer: one step left is an earlier layer.
        before = _wait_src_change(page, overlay, "")
        _press_on_slider(page, ".gradcam-explorer .gradcam-layer", "ArrowLeft")
        after_layer = _wait_src_change(page, overlay, before)
        _wait_caption(page, "blocks.15 (7x7)")

        for _ in range(2):  # further left, to blocks.10 (14x14): a long slider read-out
            _press_on_slider(page, ".gradcam-explorer .gradcam-layer", "ArrowLeft")
            after_layer = _wait_src_change(page, overlay, after_layer)
        _wait_caption(page, "blocks.10 (14x14)")
        page.locator(".gradcam-explorer").screenshot(path=str(artifacts / "explorer_blocks10.png"))

        # The alpha slider starts at 0.5: one step right blends more heatmap in.
        _press_on_slider(page, ".gradcam-explorer .gradcam-alpha", "ArrowRight")
        after_alpha = _wait_src_change(page, overlay, after_layer)
        assert after_alpha != before

        # Pin this view with the keyboard: focus the button, press Enter.
        pinned = ".gradcam-explorer img.gradcam-pinned"
        page.locator(".gradcam-explorer .gradcam-pin").focus()
        page.keyboard.press("Enter")
        pinned_src = _wait_src_change(page, pinned, "")
        _wait_caption(page, "Pinned beside it")
        assert page.locator(pinned).is_visible()

        # Evidence against the class, with the keyboard: the live picture changes, the
        # pinned one does not.
        against = page.locator(
            ".gradcam-explorer .gradcam-evidence button", has_text="evidence against"
        )
        against.focus()
        page.keyboard.press("Space")
        after_evidence = _wait_src_change(page, overlay, after_alpha)
        _wait_caption(page, "evidence against")
        assert after_evidence != after_alpha
        assert _src(page, pinned) == pinned_src
        page.locator(".gradcam-explorer").screenshot(path=str(artifacts / "explorer_pinned.png"))

        # Back to "for", unpinned, with the keyboard too.
        page.locator(".gradcam-explorer .gradcam-evidence button", has_text="evidence for").focus()
        page.keyboard.press("Space")
        after_alpha = _wait_src_change(page, overlay, after_evidence)
        page.locator(".gradcam-explorer .gradcam-pin").focus()
        page.keyboard.press("Enter")
        page.locator(pinned).wait_for(state="hidden", timeout=EVENT_TIMEOUT_MS)

        # Back to the last layer for the screenshot a student would see first.
        for _ in range(3):
            _press_on_slider(page, ".gradcam-explorer .gradcam-layer", "ArrowRight")
            after_alpha = _wait_src_change(page, overlay, after_alpha)
        _wait_caption(page, "head (7x7)")
        assert page.locator(".gradcam-explorer .gradcam-message").inner_text().strip() == ""

        explorer = page.locator(".gradcam-explorer")
        explorer.scroll_into_view_if_needed()
        explorer.screenshot(path=str(artifacts / "explorer.png"))
        page.screenshot(path=str(artifacts / "lesson00.png"))
        assert not messages, messages
    except Exception:
        page.screenshot(path=str(artifacts / "failure.png"))
        # The cells' error output and prompts, to tell a stopped run from a slow one.
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr']")
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
        (artifacts / "failure.txt").write_text(
            "prompts: "
            + " ".join(prompts.all_inner_texts())
            + "\n\n"
            + "\n---\n".join(errors.all_inner_texts())
        )
        raise
    finally:
        page.close()
