"""binder/jupyter_server_config.json really culls: a real Jupyter server, two kernels.

The server reads the repository's file from its config folder, with the two times cut
to seconds (10 idle minutes would make a slow test): a kernel with no client attached
(a tab closed without shutting it down) is culled; a kernel with a client (an open tab)
is kept however idle it is, because the file says ``cull_connected: false``. This checks
that the server's kernel manager takes the file's section and keys, not only their
values (tests/test_environments.py checks those).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import ROOT_FLAG, answers, free_port, running

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "culling-test"
IDLE_S, INTERVAL_S = 10, 1  # long enough for a kernel to start on a busy machine


def _call(url: str, method: str = "GET"):
    request = urllib.request.Request(
        url, method=method, headers={"Authorization": f"token {TOKEN}"},
        data=b"{}" if method == "POST" else None,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture
def server(tmp_path):
    config = json.loads((ROOT / "binder" / "jupyter_server_config.json").read_text())
    config["MappingKernelManager"].update(cull_idle_timeout=IDLE_S, cull_interval=INTERVAL_S)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config_dir),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    url = f"http://127.0.0.1:{port}"
    with running(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}", *ROOT_FLAG],
        name="the Jupyter server",
        ready=answers(f"{url}/api/status", headers={"Authorization": f"token {TOKEN}"}),
        log=tmp_path / "server.log",
        env=env,
    ):
        yield url


def _kernel(url: str, kernel_id: str) -> dict | None:
    return next((k for k in _call(f"{url}/api/kernels") if k["id"] == kernel_id), None)


def test_an_idle_kernel_without_a_tab_is_culled_one_with_a_tab_is_kept(server):
    from tornado.websocket import websocket_connect

    watched = _call(f"{server}/api/kernels", method="POST")["id"]

    async def attach_and_watch() -> tuple[float, dict | None]:
        ws_url = server.replace("http", "ws") + f"/api/kernels/{watched}/channels?token={TOKEN}"
        connection = await websocket_connect(ws_url)  # the open tab
        try:
            deadline = time.monotonic() + 120
            while (_kernel(server, watched) or {}).get("connections", 0) < 1:
                assert time.monotonic() < deadline, "the client never counted as connected"
                await asyncio.sleep(0.2)
            posted = time.monotonic()  # the orphan's last activity is later than this
            orphan = _call(f"{server}/api/kernels", method="POST")["id"]
            while _kernel(server, orphan) is not None:
                assert time.monotonic() - posted < 180, "the orphan kernel was never culled"
                await asyncio.sleep(0.5)
            culled_after = time.monotonic() - posted
            # Idle for as long again, and longer: the watched kernel must still be there.
            await asyncio.sleep(IDLE_S + 3 * INTERVAL_S)
            return culled_after, _kernel(server, watched)
        finally:
            connection.close()

    # In a thread of its own: in the full suite, Playwright's loop runs in this thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        culled_after, kept = pool.submit(asyncio.run, attach_and_watch()).result()
    print(f"the kernel without a client was culled after {culled_after:.1f} s")
    assert culled_after >= IDLE_S  # not before its idle time
    assert kept is not None, "a kernel with a client attached was culled"
