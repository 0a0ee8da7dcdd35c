"""A learner's course in one Binder session: lessons 00, 01, 02 one after the other.

Played in JupyterLab and Chromium as a learner would: open 00 from the file browser, run
all cells, close its tab; the same with 01; then 02. After each step the test reads the
server's kernels (``/api/kernels``) and the memory of the server plus its kernels
(psutil), and asserts that one kernel at most is alive and that the total stays under
Binder's 2 GB; a sampler thread records the peak between the steps too. Without
``kernelShutdown`` (binder/overrides.json) three kernels were left alive and the total
reached 2.45 GB.

The JupyterLab server comes from the ``lab_url`` fixture, with the repository's
binder/overrides.json and binder/jupyter_server_config.json.
"""

from __future__ import annotations

import contextlib
import threading
import time

import psutil
import pytest
from servers import api, run_all_cells

pytestmark = pytest.mark.browser

LESSONS = ["00_start_here.ipynb", "01_cam_with_gap.ipynb", "02_gradcam_derivation.ipynb"]
LIMIT_BYTES = 2 * 1024**3  # mybinder.org's memory limit
RUN_TIMEOUT_MS = 600_000  # lesson 02 trains two small networks on a busy 2-core CPU
EVENT_TIMEOUT_MS = 60_000
SHUTDOWN_TIMEOUT_S = 30.0
GB = 1024**3


def _kernels(lab_url: str) -> list[dict]:
    return api(lab_url, "/api/kernels")


def _server_process(lab_url: str) -> psutil.Process:
    port = lab_url.rsplit(":", 1)[1]
    for process in psutil.process_iter(["cmdline"]):
        if f"--ServerApp.port={port}" in (process.info["cmdline"] or []):
            return process
    raise LookupError(f"no Jupyter server process with port {port}")


def _memory(server: psutil.Process) -> int:
    """Resident memory of the server and every process under it (its kernels), in bytes."""
    total = 0
    for process in [server, *server.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):  # a kernel that just shut down
            total += process.memory_info().rss
    return total


class PeakSampler(threading.Thread):
    """Samples the server's memory every 0.2 s until stopped; keeps the maximum."""

    def __init__(self, server: psutil.Process):
        super().__init__(daemon=True)
        self.server = server
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _memory(self.server))
            self._stop_event.wait(0.2)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak


def _shut_down_all(lab_url: str) -> None:
    """Start from a fresh session: no kernels left by other tests."""
    for session in api(lab_url, "/api/sessions"):
        api(lab_url, f"/api/sessions/{session['id']}", method="DELETE")
    for kernel in _kernels(lab_url):
        api(lab_url, f"/api/kernels/{kernel['id']}", method="DELETE")


def _wait_kernels(lab_url: str, count: int, timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        kernels = _kernels(lab_url)
        if len(kernels) == count or time.monotonic() > deadline:
            return kernels
        time.sleep(0.5)


def _open_from_file_browser(page, name: str) -> None:
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    notebook.first.wait_for(timeout=EVENT_TIMEOUT_MS)
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():  # "Select Kernel": keep the notebook's own, python3
        dialog.first.click()


def _run_all_and_wait(page, name: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    page.locator(f"{panel} .jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=EVENT_TIMEOUT_MS
    )
    done = (
        "(panel) => { const cells = [...document.querySelectorAll("
        "panel + ' .jp-CodeCell')].filter(c => c.querySelector('.cm-content')"
        ".innerText.trim() !== '');"
        " return cells.length > 0 && cells.every(c => /\\[\\d+\\]/.test("
        "c.querySelector('.jp-InputPrompt').innerText)); }"
    )
    started = (
        "(panel) => /\\[(\\*|\\d+)\\]/.test(document.querySelector("
        "panel + ' .jp-CodeCell .jp-InputPrompt').innerText)"
    )
    for attempt in range(2):
        run_all_cells(page)
        try:
            page.wait_for_function(started, arg=panel, timeout=20_000)
            break
        except PlaywrightTimeoutError:  # the click came before the kernel's channels
            if attempt:
                raise
    page.wait_for_function(done, arg=panel, timeout=RUN_TIMEOUT_MS, polling=1000)
    assert page.locator(f"{panel} .jp-OutputArea-output[data-mime-type*='error']").count() == 0, (
        f"{name} raised an error"
    )


def _close_tab(page, name: str) -> None:
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name)
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    dialog = page.locator(".jp-Dialog")
    try:  # "Save your work": a learner keeps the outputs
        dialog.wait_for(timeout=5_000)
        dialog.locator("button", has_text="Save").first.click()
    except Exception:  # no dialog: nothing to save
        pass
    tab.wait_for(state="detached", timeout=EVENT_TIMEOUT_MS)


def test_a_course_session_keeps_one_kernel_within_binders_memory(lab_url, browser, artifacts):
    _shut_down_all(lab_url)
    assert _wait_kernels(lab_url, 0, SHUTDOWN_TIMEOUT_S) == []
    server = _server_process(lab_url)
    sampler = PeakSampler(server)
    sampler.start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    steps: list[str] = []

    def record(step: str, expected_kernels: int) -> None:
        kernels = _wait_kernels(lab_url, expected_kernels, SHUTDOWN_TIMEOUT_S)
        memory = _memory(server)
        steps.append(f"{step:<28} kernels {len(kernels)}  server+kernels {memory / GB:.2f} GB")
        print(steps[-1])
        assert len(kernels) == expected_kernels, (step, kernels)
        assert memory < LIMIT_BYTES, steps

    try:
        page.goto(f"{lab_url}/lab/workspaces/course?reset", timeout=EVENT_TIMEOUT_MS)
        page.locator(".jp-DirListing-item").first.wait_for(timeout=EVENT_TIMEOUT_MS)
        for index, name in enumerate(LESSONS):
            _open_from_file_browser(page, name)
            _run_all_and_wait(page, name)
            record(f"{name[:2]} run", 1)
            if index < len(LESSONS) - 1:
                _close_tab(page, name)
                record(f"{name[:2]} closed", 0)
        page.screenshot(path=str(artifacts / "course_session.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "course_session_failure.png"))
        raise
    finally:
        peak = sampler.stop()
        page.close()
        _shut_down_all(lab_url)
    print(f"course session peak (server + kernels, RSS): {peak / GB:.2f} GB")
    assert peak < LIMIT_BYTES, steps
