"""How fast does the Explorer answer? Side by side, in one run, on a ResNet-18 shape.

Run: ``.venv/bin/python benchmarks/explorer.py``

Model: the ResNet-18 of ``benchmarks/_models.py`` (BasicBlock, [2, 2, 2, 2], 1000
classes, random weights, no torchvision, no download), one 224 x 224 image, CPU.

What is timed (medians):

* ``gradcam (last layer)``: one ``gw.gradcam`` call for the last layer, and
  ``gradcam (all layers)``: one call for every layer on the Explorer's slider.
* ``alpha change``: setting ``explorer.alpha.value`` (no model call: re-blend + PNG).
* ``colormap change``: setting ``explorer.colormap.value`` (no model call).
* ``layer change``: setting ``explorer.layer.value`` to a layer not yet drawn, for a
  class already computed (lookup + resize + colour + PNG).
* ``class change``: setting ``explorer.target.value`` to a class not yet computed (one
  engine call for all layers + drawing).
* ``gradcam_multi, top-5``: preparing the top-5 classes in one pass (the eager design
  the Explorer does not use: compare with 5 class changes).
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
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets import render  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resnet18  # noqa: E402  (shared with benchmarks/engine.py)


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
    torch.set_num_threads(2)
    model = resnet18(seed=0)
    picture = np.asarray(Image.fromarray(gw.data.sample_image("chelsea")).resize((224, 224)))
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    pixels = ((picture / 255.0 - mean) / std).transpose(2, 0, 1)[None]
    x = torch.from_numpy(pixels.astype(np.float32))

    layers = gw.candidate_layers(model, x)
    last = layers[-1]
    gw.gradcam(model, x, layer=last)  # warm up torch

    start = time.perf_counter()
    explorer = gw.Explorer(model, x, image=picture, class_names=gw.data.imagenet_class_names())
    build = time.perf_counter() - start

    # Interleaved rounds: every kind of event runs in each round, so the machine's noise
    # (other processes) spreads over all of them and the ratios stay meaningful.
    alphas = [round(a, 2) for a in np.linspace(0.05, 0.95, 19)]
    fresh_layers = iter(layers[:-1][::-1])  # each drawn for the first time
    fresh_classes = iter(c for c in range(1000) if c not in explorer.top_classes)
    top5 = list(explorer.top_classes)
    gw.gradcam_multi(model, x, top5, layers)  # warm up: its first call allocates a lot
    samples: dict[str, list[float]] = {}

    def timed(name: str, action: Callable[[], object]) -> None:
        begin = time.perf_counter()
        action()
        samples.setdefault(name, []).append(time.perf_counter() - begin)

    rounds = 9
    for r in range(rounds):
        timed("gradcam call, last layer", lambda: gw.gradcam(model, x, target=7, layer=last))
        timed("gradcam call, every slider layer", lambda: gw.gradcam(model, x, 7, layers))
        for i in range(5):
            value = alphas[(5 * r + i) % len(alphas)]
            timed("alpha change", lambda v=value: setattr(explorer.alpha, "value", v))
        for cmap in ("viridis", "jet"):
            timed("colormap change", lambda c=cmap: setattr(explorer.colormap, "value", c))
        for _ in range(5):
            name = next(fresh_layers)
            timed(
                "layer change (first drawing)", lambda n=name: setattr(explorer.layer, "value", n)
            )
        for name in (last, layers[0], layers[len(layers) // 2]):
            timed("layer change (drawn before)", lambda n=name: setattr(explorer.layer, "value", n))
        if r < 3:  # the eager alternative: the top-5 classes prepared in one pass
            timed(
                "gradcam_multi, top-5 x every layer",
                lambda: gw.gradcam_multi(model, x, top5, layers),
            )
        explorer.layer.value = last
        cls = next(fresh_classes)
        timed("class change (new class)", lambda c=cls: setattr(explorer.target, "value", c))
        timed(
            "naive event (gradcam + matplotlib)",
            lambda: naive_event(model, x, picture, 7, last, 0.5),
        )
    median = {name: statistics.median(values) * 1000.0 for name, values in samples.items()}

    one_call = median["gradcam call, last layer"]
    all_call = median["gradcam call, every slider layer"]
    print(
        f"ResNet-18 shape (benchmarks/_models.py), random weights, 224 px, batch 1, "
        f"{torch.get_num_threads()} threads, {rounds} interleaved rounds.\n"
        f"Slider: every candidate layer ({len(layers)}), last = {last!r}. "
        f"Explorer construction: {build * 1000:.0f} ms (predict, CAM check, top class's maps).\n"
    )
    print(f"{'median':38s} {'ms':>9s} {'/ gradcam last':>15s} {'/ gradcam all':>14s}")
    for name, value in median.items():
        print(f"{name:38s} {value:9.1f} {value / one_call:14.3f}x {value / all_call:13.3f}x")
    alpha_ms = median["alpha change"]
    layer_ms = median["layer change (first drawing)"]
    class_ms = median["class change (new class)"]
    naive_ms = median["naive event (gradcam + matplotlib)"]
    print(f"\nnaive event / alpha change = {naive_ms / alpha_ms:.0f}x")
    checks = [
        ("alpha change <= 0.25x one gradcam call (last layer)", alpha_ms <= 0.25 * one_call),
        ("layer change <= 0.35x one gradcam call (last layer)", layer_ms <= 0.35 * one_call),
        ("naive event >= 5x an alpha change", naive_ms >= 5 * alpha_ms),
        (
            "class change <= 1.3x the gradcam call it makes (every layer)",
            class_ms <= 1.3 * all_call,
        ),
        ("alpha change <= 20 ms", alpha_ms <= 20),
        ("layer change <= 30 ms", layer_ms <= 30),
    ]
    for name, ok in checks:
        print(f"  [{'ok' if ok else 'MISS'}] {name}")
    print(
        f"  (for reference: class change / one last-layer call = {class_ms / one_call:.2f}x; "
        "a class change computes every slider layer, so its backward pass runs to the first)"
    )


if __name__ == "__main__":
    main()
