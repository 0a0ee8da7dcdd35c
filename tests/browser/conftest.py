"""JupyterLab on 127.0.0.1 and Debian's headless Chromium, for the Explorer's browser test.

Chromium comes from Debian's ``chromium`` package (Playwright's own browser download does
not work offline). Without it the tests are skipped, with the reason, on a developer's
machine, and fail under CI (``CI=true``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import ROOT_FLAG, answers, free_port, running

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = (
        f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium) to run "
        "the browser tests; .ci/run installs it."
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _strip_outputs(notebook: Path) -> None:
    """Remove saved outputs and widget state, so only freshly run widgets are on the page."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, notebook)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, or a skip (fail under CI) saying how to get it."""
    _require_chromium()
    return CHROMIUM


@pytest.fixture(scope="session")
def lab_url(chromium_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab serving a temporary copy of ``notebooks/``, with no token."""
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    shutil.copytree(REPO / "notebooks", notebooks)
    # Lesson 00 reads ../binder/*.json (the settings it states): keep it beside notebooks/.
    shutil.copytree(REPO / "binder", root / "binder")
    for notebook in notebooks.rglob("*.ipynb"):
        _strip_outputs(notebook)
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No "would you like news?" toast over the page.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Start the notebook's own kernel (python3) on opening, as a learner's click on
    # "Select" in JupyterLab's kernel dialog would.
    tracker = root / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        # Every cell in the DOM, so the test can wait for any cell's output.
        json.dumps({"autoStartDefaultKernel": True, "windowingMode": "none"})
    )
    # The repository's own settings, as Binder and `make lab` install them: JupyterLab's
    # overrides (a closed tab shuts its kernel down) and the server's kernel culling.
    app_settings = root / "app-settings"
    app_settings.mkdir()
    shutil.copy(REPO / "binder" / "overrides.json", app_settings / "overrides.json")
    config = root / "config"
    config.mkdir()
    shutil.copy(REPO / "binder" / "jupyter_server_config.json", config)
    env = dict(os.environ)
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={notebooks}",
        f"--LabApp.app_settings_dir={app_settings}",
        *ROOT_FLAG,
    ]
    with running(
        command,
        name="JupyterLab",
        ready=answers(f"{url}/api/status"),
        log=root / "jupyter.log",
        cwd=notebooks,
        env=env,
    ):
        yield url


@pytest.fixture(scope="session")
def browser(chromium_path: Path):
    """Headless Chromium driven by Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
