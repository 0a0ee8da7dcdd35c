"""How fast does the Explorer answer? Side by side, in one run, on a ResNet-18 shape.

Run: ``.venv/bin/python benchmarks/explorer.py``

Model: a ResNet-18 (BasicBlock, [2, 2, 2, 2], 1000 classes) written below with random
weights (no torchvision, no download), one 224 x 224 image, CPU.

What is timed (medians):

* ``gradcam (last layer)``: one ``gw.gradcam`` call for the last layer, and
  ``gradcam (all layers)``: one call for every layer on the Explorer's slider.
* ``alpha change``: setting ``explorer.alpha.value`` (no model call: re-blend + PNG).
* ``colormap change``: setting ``explorer.colormap.value`` (no model call).
* ``layer change``: setting ``explorer.layer.value`` to a layer not yet drawn, for a
  class already computed (lookup + resize + colour + PNG).
* ``class change``: setting ``explorer.target.value`` to a class not yet computed (one
  engine call for all layers + drawing).
* ``naive event``: what a widget without a cache does on each event: recompute Grad-CAM
  for the layer and redraw a matplotlib figure (picture + heatmap) to PNG.

Targets (../shared/design/quality.md): alpha <= 0.25x and layer <= 0.35x one gradcam
call; naive >= 5x an alpha change; class change <= 1.3x one gradcam call; alpha <= 20 ms
and layer <= 30 ms median.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets import render  # noqa: E402


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 layout and module names, written out."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (cin, cout, stride) in enumerate(widths, start=1):
            setattr(
                self,
                f"layer{i}",
                nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout)),
            )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def median_ms(action: Callable[[int], object], runs: int, warmup: int = 1) -> float:
    """Median wall time of ``action(i)`` in milliseconds (``warmup`` calls discarded)."""
    for i in range(warmup):
        action(-1 - i)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def naive_event(
    model: nn.Module, x: torch.Tensor, picture: np.ndarray, cls: int, layer: str, alpha: float
) -> bytes:
    """No cache: Grad-CAM again, then a matplotlib figure saved as PNG."""
    heat = gw.gradcam(model, x, target=cls, layer=layer)[0]
    resized = render.resize_map(heat, picture.shape[:2])
    figure = Figure(figsize=(6, 3), dpi=100)
    left, right = figure.subplots(1, 2)
    left.imshow(picture)
    left.imshow(resized, cmap="jet", alpha=alpha)
    right.imshow(resized, cmap="jet")
    for axis in (left, right):
        axis.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = ResNet18().eval()
    picture = np.asarray(
        __import__("PIL.Image", fromlist=["Image"])
        .fromarray(gw.data.sample_image("chelsea"))
        .resize((224, 224))
    )
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    x = torch.from_numpy(
        ((picture / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    )

    layers = gw.candidate_layers(model, x)
    last = layers[-1]
    gw.gradcam(model, x, layer=last)  # warm up torch

    one_call = median_ms(lambda i: gw.gradcam(model, x, target=7, layer=last), runs=15)
    all_call = median_ms(lambda i: gw.gradcam(model, x, target=7, layer=layers), runs=9)
    multi_call = median_ms(lambda i: gw.gradcam_multi(model, x, [1, 2, 3, 4, 5], layers), runs=5)

    start = time.perf_counter()
    explorer = gw.Explorer(model, x, image=picture, class_names=gw.data.imagenet_class_names())
    build = (time.perf_counter() - start) * 1000.0

    alphas = [round(a, 2) for a in np.linspace(0.05, 0.95, 19)]
    alpha_ms = median_ms(lambda i: setattr(explorer.alpha, "value", alphas[i % len(alphas)]), 60)
    cmaps = ["viridis", "jet"]
    cmap_ms = median_ms(lambda i: setattr(explorer.colormap, "value", cmaps[i % 2]), 20)
    # Every layer once, each drawn for the first time (class already computed).
    order = layers[:-1][::-1]
    layer_ms = median_ms(
        lambda i: setattr(explorer.layer, "value", order[i]), len(order) - 1, warmup=0
    )
    cached_layer_ms = median_ms(
        lambda i: setattr(explorer.layer, "value", order[i % len(order)]), 40
    )
    explorer.layer.value = last
    fresh = [c for c in range(1000) if c not in explorer.top_classes][:12]
    class_ms = median_ms(lambda i: setattr(explorer.target, "value", fresh[i + 1]), 10, warmup=1)
    naive_ms = median_ms(lambda i: naive_event(model, x, picture, 7, last, 0.5), 9)

    print(
        f"ResNet-18 shape, random weights, 224 px, batch 1, {torch.get_num_threads()} threads;"
        f" {len(layers)} layers on the slider (every candidate), last = {last!r}\n"
    )
    rows = [
        ("gradcam call, last layer", one_call),
        ("gradcam call, all slider layers", all_call),
        ("gradcam_multi, top-5 x all layers", multi_call),
        ("Explorer construction", build),
        ("alpha change", alpha_ms),
        ("colormap change", cmap_ms),
        ("layer change (first drawing)", layer_ms),
        ("layer change (drawn before)", cached_layer_ms),
        ("class change (new class)", class_ms),
        ("naive event (gradcam + matplotlib)", naive_ms),
    ]
    print(f"{'':38s} {'median ms':>10s} {'/ last-layer':>13s} {'/ all-layer':>12s}")
    for name, value in rows:
        print(f"{name:38s} {value:10.1f} {value / one_call:12.2f}x {value / all_call:11.2f}x")
    print()
    checks = [
        ("alpha <= 0.25x one gradcam call (last layer)", alpha_ms <= 0.25 * one_call),
        ("layer <= 0.35x one gradcam call (last layer)", layer_ms <= 0.35 * one_call),
        ("naive >= 5x an alpha change", naive_ms >= 5 * alpha_ms),
        ("class change <= 1.3x one gradcam call (all slider layers)", class_ms <= 1.3 * all_call),
        ("class change <= 1.3x one gradcam call (last layer)", class_ms <= 1.3 * one_call),
        ("alpha <= 20 ms", alpha_ms <= 20),
        ("layer <= 30 ms", layer_ms <= 30),
    ]
    print(f"naive event / alpha change = {naive_ms / alpha_ms:.1f}x")
    for name, ok in checks:
        print(f"  [{'ok' if ok else 'MISS'}] {name}")


if __name__ == "__main__":
    main()
