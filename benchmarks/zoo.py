"""Grad-CAM's cost on real architectures, side by side with the model's own passes.

Run: ``.venv/bin/python benchmarks/zoo.py [torch] [--models resnet18,vit_tiny_patch16_224]``.

Torch section (timm models with random weights, one image at the model's input size,
2 threads; the in-repo tiny models of tests/archs.py when timm is missing). For each
architecture and its default layer, interleaved round by round (benchmarks/_timing.py):

- ``forward``: ``model(x)`` under ``torch.no_grad()``, what a prediction costs;
- ``by hand``: the same work as Grad-CAM written directly: a hook on the layer, one
  forward with autograd, ``torch.autograd.grad`` of the class score to the layer;
- ``gradcam``: ``gw.gradcam(model, x, target, layer)`` once the model is described.

Printed ratios: ``gradcam / by hand`` (target <= 1.5: the engine's own overhead) and
``gradcam / forward`` (no target: a backward pass costs about one to two forwards, so
this ratio is about 2 to 3 for any Grad-CAM). The first call's time (shape probes, the
default-layer search on ViTs) is printed as a multiple of one forward.

Each section is a function in ``SECTIONS``; the Keras section is added beside the torch
one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from _timing import measure  # noqa: E402

import gradcam_widgets as gw  # noqa: E402

TIMM_MODELS = (
    "resnet18",
    "convnext_atto",
    "mobilevit_xxs",
    "efficientformer_l1",
    "edgenext_xx_small",
    "vit_tiny_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "swin_tiny_patch4_window7_224",
)
TARGET = 1.5


def _torch_models(names: list[str] | None):
    """``(name, model, one image)`` for timm's models, or the in-repo tiny ones."""
    import torch
    from archs import TinyMobileViT, TinySwin, TinyViT, import_timm

    timm = import_timm()
    if timm is None:
        print("timm is not installed (pip install --no-deps timm): in-repo tiny models only")
        tiny = {
            "tiny ViT": (TinyViT(), (3, 32, 32)),
            "tiny Swin": (TinySwin(), (3, 32, 48)),
            "tiny MobileViT": (TinyMobileViT(), (3, 32, 32)),
        }
        for name, (model, size) in tiny.items():
            yield name, model.eval(), torch.randn(1, *size)
        return
    for name in names or TIMM_MODELS:
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False).eval()
        yield name, model, torch.randn(1, *model.pretrained_cfg["input_size"])


def torch_section(names: list[str] | None = None) -> bool:
    """Print the torch table; return True when every ratio meets its target."""
    import torch

    torch.set_num_threads(2)
    print("\n== PyTorch: gradcam against a forward and against the same work by hand")
    header = (
        f"  {'architecture':<34}{'layer':<22}{'forward':>9}{'by hand':>9}{'gradcam':>9}"
        f"{'first':>9}   gradcam/hand  gradcam/forward  first/forward"
    )
    print(header)
    all_met = True
    for name, model, x in _torch_models(names):
        start = time.perf_counter()
        result = gw.explain(model, x)  # describes the model, picks the default layer
        first = time.perf_counter() - start
        (layer,) = result.layers
        target = int(result.targets[0][0])
        module = model.get_submodule(layer)

        def forward(model=model, x=x):
            with torch.no_grad():
                model(x)

        def by_hand(model=model, x=x, module=module, target=target):
            store = {}
            handle = module.register_forward_hook(lambda m, a, out: store.setdefault("a", out))
            try:
                logits = model(x)
            finally:
                handle.remove()
            torch.autograd.grad(logits[0, target], store["a"])

        def engine(model=model, x=x, layer=layer, target=target):
            gw.gradcam(model, x, target, layer)

        medians = measure({"forward": forward, "hand": by_hand, "gradcam": engine}, rounds=5)
        versus_hand = medians["gradcam"] / medians["hand"]
        met = versus_hand <= TARGET
        all_met &= met
        print(
            f"  {name:<34}{layer[-21:]:<22}"
            f"{medians['forward'] * 1000:9.0f}{medians['hand'] * 1000:9.0f}"
            f"{medians['gradcam'] * 1000:9.0f}{first * 1000:9.0f}"
            f"   {versus_hand:5.2f} {'OK' if met else 'MISSED':<6}"
            f"  {medians['gradcam'] / medians['forward']:9.2f}"
            f"  {first / medians['forward']:13.1f}"
        )
    print(f"  (median times in ms; target gradcam/hand <= {TARGET})")
    return all_met


SECTIONS = {"torch": torch_section}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--models", help="comma-separated model names (default: all)")
    args = parser.parse_args()
    names = args.models.split(",") if args.models else None
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    ok = all([SECTIONS[section](names) for section in args.sections or SECTIONS])
    print("\nall targets met" if ok else "\nsome targets missed")


if __name__ == "__main__":
    main()
