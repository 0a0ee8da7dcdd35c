"""Shared fixtures: the tests never touch the network, and TensorFlow stays quiet."""

from __future__ import annotations

import os
import socket

import pytest

# The shared helper modules' asserts explain their failures as the tests' own do.
pytest.register_assert_rewrite("helpers")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(autouse=True)
def no_network(monkeypatch, request):
    """Fail any test whose code tries to reach another host (loopback stays allowed)."""
    if request.node.get_closest_marker("browser"):
        return
    original = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
