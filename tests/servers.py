"""Local Jupyter servers for the tests: start one, wait until it answers, stop it after.

One helper for the three servers the tests start: JupyterLab for the browser tests
(``lab_url`` in tests/browser/conftest.py), Voila (tests/browser/test_voila_app.py) and a
plain Jupyter server (tests/test_kernel_culling.py). Also the REST calls the browser
tests make to the JupyterLab server, and the steps on a notebook's page they share.

A plain module, not a conftest: test files import it, as they import tests/models.py (a
``conftest`` module cannot be imported reliably: two of them share the name).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

#: Jupyter refuses to run as root unless told; containers often are root.
ROOT_FLAG = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
START_TIMEOUT_S = 90.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, headers: Mapping[str, str] | None = None) -> Callable[[], bool]:
    """A readiness probe: ``url`` answers a GET with status 200."""

    def probe() -> bool:
        request = urllib.request.Request(url, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    return probe


def listens(port: int) -> Callable[[], bool]:
    """A readiness probe: something accepts connections on 127.0.0.1:``port``."""

    def probe() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return False
        return True

    return probe


@contextlib.contextmanager
def running(
    command: Sequence[str],
    *,
    name: str,
    ready: Callable[[], bool],
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[subprocess.Popen]:
    """Run a server for the ``with`` block, entered once ``ready()`` is true.

    The server's output goes to ``log``. The test fails, with the log, when the server
    exits before it is ready, or is not ready within ``timeout_s``. On leaving, SIGTERM
    (a Jupyter server shuts its kernels down on it), then SIGKILL after 30 s.
    """
    with log.open("w") as out:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not ready():
                if process.poll() is not None:
                    pytest.fail(f"{name} exited early:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} did not answer within {timeout_s} s")
                time.sleep(0.5)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# --------------------------------------------------------------------- the REST API


def api(url: str, path: str, method: str = "GET") -> Any:
    """A REST call; DELETE carries the server's XSRF cookie as a header, as a page would."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    headers = {}
    if method != "GET":
        opener.open(f"{url}/lab", timeout=30).read()  # sets the _xsrf cookie
        headers["X-XSRFToken"] = next(c.value for c in jar if c.name == "_xsrf")
    request = urllib.request.Request(f"{url}{path}", method=method, headers=headers)
    with opener.open(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def wait_kernel_connected(url: str, notebook: str, timeout_s: float) -> None:
    """Wait until ``notebook``'s kernel is idle with a page's websocket attached."""
    deadline = time.monotonic() + timeout_s
    while True:
        sessions = api(url, "/api/sessions")
        for session in sessions:
            kernel = session.get("kernel") or {}
            if (
                session.get("path", "").endswith(notebook)
                and kernel.get("execution_state") == "idle"
                and kernel.get("connections", 0) >= 1
            ):
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no connected idle kernel for {notebook}: {sessions}")
        time.sleep(0.5)


# --------------------------------------------------------------------- a notebook's page


def accept_kernel_and_wait_idle(page, url: str, notebook: str, timeout_ms: float) -> None:
    """Once a notebook's page is open: keep its own kernel, wait until the kernel is ready.

    Run only once the page's websocket is attached to an idle kernel: a run before that
    can leave the widget manager without the models ("model not found").
    """
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():  # "Select Kernel": keep the notebook's own, python3
        dialog.first.click()
    wait_kernel_connected(url, notebook, timeout_ms / 1000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=timeout_ms
    )


def run_all_cells(page) -> None:
    """Run > Run All Cells, from the menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
