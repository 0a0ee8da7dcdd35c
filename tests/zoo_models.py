"""Helpers shared by test_zoo.py and test_cli.py: each zoo model is loaded once per run.

The loads happen inside ``offline()``, so a load that tried the network would fail
even though session-scoped fixtures run before the per-test network guard.
"""

from __future__ import annotations

import contextlib
import functools
import socket

import numpy as np
from PIL import Image

from gradcam_widgets.zoo import load as _load  # the real one, even if a test patches it

CAT_CLASSES = (285, 282, 281)  # Egyptian cat, tiger cat, tabby
ESPRESSO = 967


@contextlib.contextmanager
def offline():
    """Make every socket connection attempt raise."""
    original = socket.socket.connect

    def refuse(self, address):
        raise RuntimeError(f"zoo code tried to reach the network: {address!r}")

    socket.socket.connect = refuse
    try:
        yield
    finally:
        socket.socket.connect = original


@functools.cache
def lite0(framework: str):
    """EfficientNet-Lite0 as ``zoo.load`` returns it, loaded once per test run."""
    with offline():
        return _load("efficientnet_lite0", framework=framework)


@functools.cache
def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo (read-only)."""
    from gradcam_widgets.data import sample_image

    image = sample_image(name)
    image.setflags(write=False)
    return image


def cat_and_coffee() -> np.ndarray:
    """Chelsea the cat (left) and the espresso cup (right) side by side, 300 px high."""
    cat, cup = photo("chelsea"), photo("coffee")
    height = cat.shape[0]
    width = round(cup.shape[1] * height / cup.shape[0])
    cup = np.asarray(Image.fromarray(cup).resize((width, height), Image.Resampling.BILINEAR))
    return np.concatenate([cat, cup], axis=1)
