"""The models the tests share: small hand-sized networks, and the zoo's, loaded once.

Also the inputs they are run on, captum's Grad-CAM as the independent reference, and a
zoo-like bundle for the app and the upload box.

Small networks are built with their initial weights drawn inside ``torch.random.fork_rng``
after seeding it: the same seed gives the same network, and no test's global random
state changes by building one.

Zoo loads happen inside ``offline()``, so a load that tried the network would fail
even though session-scoped fixtures run before the per-test network guard.
"""

from __future__ import annotations

import contextlib
import functools
import socket
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from gradcam_widgets.zoo import load as _load  # the real one, even if a test patches it

if TYPE_CHECKING:
    import torch
    from torch import nn

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


# --------------------------------------------------------------------------- small torch nets


def gap_net(
    in_channels: int = 3, classes: int = 6, width: int = 8, *, stride: int = 2, seed: int = 0
) -> nn.Module:
    """conv-relu-conv-relu-GAP-linear: CAM works at its last conv layer (``"2"``/``"3"``)."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(in_channels, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, width, 3, padding=1, stride=stride),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, classes),
        ).eval()


def flatten_net(side: int = 16, classes: int = 6, *, seed: int = 1) -> nn.Module:
    """conv-relu-conv-relu-Flatten-linear: Grad-CAM works, CAM does not."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * side * side, classes),
        ).eval()


def small_cnn(seed: int = 0) -> nn.Sequential:
    """conv-relu-conv(valid)-relu-GAP-linear to 5 classes, in training mode; layers 0-3."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 6, 3),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6, 5),
        )


def torch_images(n: int = 2, size: int = 8, seed: int = 1) -> torch.Tensor:
    """A batch ``(n, 3, size, size)`` of standard normal pixels, from a local generator."""
    import torch

    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(n, 3, size, size)).astype(np.float32))


def captum_gradcam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target) -> np.ndarray:
    """captum's ``LayerGradCam`` (with its ReLU): the independent reference map ``(N, h, w)``."""
    from captum.attr import LayerGradCam

    attribution = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    return attribution.detach().numpy()[:, 0]


# --------------------------------------------------------------------------- zoo-like bundles


def preprocess_16(channels_first: bool):
    """A bundle's ``preprocess``: the photo resized to 16 x 16, in [0, 1], a batch of one."""

    def preprocess(image: np.ndarray) -> np.ndarray:
        resized = np.asarray(Image.fromarray(image).resize((16, 16)), dtype=np.float32) / 255.0
        return (resized.transpose(2, 0, 1) if channels_first else resized)[None]

    return preprocess


def torch_bundle() -> SimpleNamespace:
    """What the app and the upload box take from the zoo, around a tiny torch GAP net."""
    pytest.importorskip("torch")
    return SimpleNamespace(
        model=gap_net(3, classes=3, width=4, seed=0),
        preprocess=preprocess_16(channels_first=True),
        class_names=["a", "b", "c"],
        layers=["1", "3"],
    )
