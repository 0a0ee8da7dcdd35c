"""How fast does the Explorer answer? Side by side, in one run, on a ResNet-18 shape.

Run: ``.venv/bin/python benchmarks/explorer.py [--rounds N]``

Model: the ResNet-18 of ``benchmarks/_models.py`` (BasicBlock, [2, 2, 2, 2], 1000
classes, random weights, no torchvision, no download), one 224 x 224 image, CPU.

Every event kind runs once in each round, in turn, so the machine's noise (other
processes) spreads over all of them and the ratios printed stay meaningful; medians.

Reference calls:

* ``gradcam call, last layer``: one ``gw.gradcam`` call for the last layer;
* ``gradcam call, every slider layer``: one call for every layer on the slider;
* ``forward, batch of 32``: ``model(x32)`` under ``torch.no_grad`` (224 px).

Explorer events:

* ``first picture``: ``gw.Explorer(...)``, from the call to the drawn widget (one engine
  call gives the scores and every layer's maps; plus the CAM check, a forward);
* ``alpha change``, ``colormap change``: no model call (re-blend; recolour);
* ``pin``: ``explorer.pin()`` (the pinned picture from the caches);
* ``evidence toggle``: "for" -> "against" for a class whose "against" map was never
  drawn (ReLU of the negated signed map, resize, colour, PNG; no model call);
* ``layer change (first drawing)``, ``class change (new class)``,
  ``contrast change (new contrast)``: the last two run the model once, and run back to
  back in alternating order; their ratio is taken per round (the median is reported);
* ``faithfulness (32 steps)``: ``explorer.faithfulness()`` for a map not scored before
  (deletion and insertion, 2 x 33 images of 224 px, in batches of 33).

Targets (issue 12 and ../shared/design/quality.md): alpha, colormap, pin and evidence
<= 0.15x one gradcam call; contrast <= one class change; faithfulness <= 3x a forward of
a batch of 32; first picture <= 1.2x one every-layer call; layer change <= 0.35x one
gradcam call; class change <= 1.3x the every-layer call it makes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gradcam_widgets as gw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resnet18


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    torch.set_num_threads(2)
    model = resnet18(seed=0)
    picture = np.asarray(Image.fromarray(gw.data.sample_image("chelsea")).resize((224, 224)))
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    pixels = ((picture / 255.0 - mean) / std).transpose(2, 0, 1)[None]
    x = torch.from_numpy(pixels.astype(np.float32))
    x32 = x.repeat(32, 1, 1, 1)
    names = gw.data.imagenet_class_names()

    layers = gw.candidate_layers(model, x)
    last = layers[-1]
    gw.gradcam(model, x, layer=layers)  # warm up torch (its first calls allocate)
    with torch.no_grad():
        model(x32)

    samples: dict[str, list[float]] = {}
    paired: list[float] = []  # contrast change / class change, per round

    def timed(name: str, action: Callable[[], object]) -> object:
        begin = time.perf_counter()
        result = action()
        samples.setdefault(name, []).append(time.perf_counter() - begin)
        return result

    def forward32() -> None:
        with torch.no_grad():
            model(x32)

    explorer = gw.Explorer(model, x, image=picture, class_names=names)
    fresh_classes = iter(c for c in range(1000) if c not in explorer.top_classes)
    fresh_layers = iter(layers[:-1][::-1] * rounds)
    alphas = [round(a, 2) for a in np.linspace(0.05, 0.95, 19)]
    for r in range(rounds):
        timed("gradcam call, last layer", lambda: gw.gradcam(model, x, target=7, layer=last))
        timed("gradcam call, every slider layer", lambda: gw.gradcam(model, x, 7, layers))
        timed("forward, batch of 32", forward32)
        built = timed(
            "first picture (Explorer built)",
            lambda: gw.Explorer(model, x, image=picture, class_names=names),
        )
        del built
        for i in range(3):
            value = alphas[(3 * r + i) % len(alphas)]
            timed("alpha change", lambda v=value: setattr(explorer.alpha, "value", v))
        for cmap in ("jet", "viridis"):
            timed("colormap change", lambda c=cmap: setattr(explorer.colormap, "value", c))
        timed("pin", explorer.pin)
        explorer.unpin()
        name = next(fresh_layers)
        timed("layer change (first drawing)", lambda n=name: setattr(explorer.layer, "value", n))
        explorer.layer.value = last
        explorer.evidence.value = "for"
        explorer.contrast.value = None
        # A class change and a contrast change back to back, in alternating order, so
        # that their ratio (taken per round) sees the same machine load.
        cls, other = next(fresh_classes), next(fresh_classes)
        if r % 2:
            explorer.target.value = cls  # (untimed) the class the contrast is taken against
            timed(
                "contrast change (new contrast)",
                lambda c=other: setattr(explorer.contrast, "value", c),
            )
            explorer.contrast.value = None
            cls = next(fresh_classes)
            timed("class change (new class)", lambda c=cls: setattr(explorer.target, "value", c))
        else:
            timed("class change (new class)", lambda c=cls: setattr(explorer.target, "value", c))
            timed(
                "contrast change (new contrast)",
                lambda c=other: setattr(explorer.contrast, "value", c),
            )
            explorer.contrast.value = None
        paired.append(
            samples["contrast change (new contrast)"][-1] / samples["class change (new class)"][-1]
        )
        timed("evidence toggle (new map)", lambda: setattr(explorer.evidence, "value", "against"))
        explorer.evidence.value = "for"
        if not explorer.current_map.any():  # an empty map has nothing to rank: the other
            explorer.evidence.value = "against"  # evidence of the same class has
        explorer.state._faithfulness.clear()  # score it again: no cached answer
        timed("faithfulness (32 steps)", lambda: explorer.faithfulness(steps=32))
    median = {name: statistics.median(values) * 1000.0 for name, values in samples.items()}

    one = median["gradcam call, last layer"]
    every = median["gradcam call, every slider layer"]
    forward = median["forward, batch of 32"]
    print(
        f"ResNet-18 shape (benchmarks/_models.py), random weights, 224 px, batch 1, "
        f"{torch.get_num_threads()} threads, {rounds} interleaved rounds, medians.\n"
        f"Slider: every candidate layer ({len(layers)}), last = {last!r}.\n"
    )
    print(f"{'':40s} {'ms':>9s} {'/ gradcam last':>15s} {'/ gradcam all':>14s}")
    for name, value in median.items():
        print(f"{name:40s} {value:9.1f} {value / one:14.3f}x {value / every:13.3f}x")

    def ratio(name: str, reference: float) -> float:
        return median[name] / reference

    checks = [
        ("alpha change / one gradcam call", ratio("alpha change", one), 0.15),
        ("colormap change / one gradcam call", ratio("colormap change", one), 0.15),
        ("pin / one gradcam call", ratio("pin", one), 0.15),
        ("evidence toggle / one gradcam call", ratio("evidence toggle (new map)", one), 0.15),
        ("contrast change / class change (per round)", statistics.median(paired), 1.0),
        ("faithfulness / forward of 32", ratio("faithfulness (32 steps)", forward), 3.0),
        ("first picture / every-layer call", ratio("first picture (Explorer built)", every), 1.2),
        ("layer change / one gradcam call", ratio("layer change (first drawing)", one), 0.35),
        ("class change / every-layer call", ratio("class change (new class)", every), 1.3),
    ]
    print(f"\ncontrast / class change, each round: {', '.join(f'{p:.2f}' for p in paired)}")
    print("\nratio (target):")
    for label, value, target in checks:
        verdict = "ok" if value <= target else "MISS"
        print(f"  [{verdict:>4s}] {label:40s} {value:6.3f}  (<= {target})")


if __name__ == "__main__":
    main()
