"""PyTorch engine speed, side by side with captum and pytorch-grad-cam in one run.

Model: ResNet-18 shape with random weights (benchmarks/_models.py), batch 8, 224 px, CPU.
Run: ``.venv/bin/python benchmarks/engine.py`` (needs captum; pytorch-grad-cam is used
when installed: ``pip install --no-deps grad-cam ttach``).

pytorch-grad-cam imports torchvision and OpenCV at import time, for features its Grad-CAM
path does not use. PyPI's torchvision does not import beside this CPU torch and OpenCV is
kept out of this project, so both are stubbed here: torchvision by an empty module, and
``cv2.resize`` (used once per call to upsample the map) by Pillow's bilinear resize.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resnet18
from _timing import measure, report

import gradcam_widgets as gw

BATCH, SIZE = 8, 224


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve any ``torchvision*`` import as a module whose attributes are mocks."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda name: mock.MagicMock(name=f"{spec.name}.{name}")
        return module

    def exec_module(self, module):
        pass


def _pillow_cv2() -> types.ModuleType:
    from PIL import Image

    cv2 = types.ModuleType("cv2")

    def resize(array, size, *args, **kwargs):
        image = Image.fromarray(np.asarray(array, dtype=np.float32), mode="F")
        return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)

    cv2.resize = resize
    cv2.__getattr__ = lambda name: mock.MagicMock(name=f"cv2.{name}")
    return cv2


def load_pytorch_grad_cam():
    if "cv2" not in sys.modules:
        try:
            import cv2  # noqa: F401
        except ImportError:
            sys.modules["cv2"] = _pillow_cv2()
    sys.meta_path.insert(0, _StubFinder())
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as error:
        print(f"pytorch-grad-cam not available ({error}); skipping it")
        return None
    return GradCAM, ClassifierOutputTarget


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = resnet18()
    x = torch.randn(BATCH, 3, SIZE, SIZE)
    targets = [int(t) for t in torch.randint(0, 1000, (BATCH,))]
    layers = gw.candidate_layers(model, x)
    earliest, last = layers[0], "layer4"

    def forward_only():
        with torch.no_grad():
            model(x)

    def floor_forward_partial_backward():
        # The physical floor: one forward with the graph, one backward to layer4 only.
        captured = {}
        handle = model.layer4.register_forward_hook(lambda m, i, o: captured.update(a=o))
        try:
            logits = model(x)
        finally:
            handle.remove()
        score = logits[torch.arange(BATCH), torch.tensor(targets)].sum()
        torch.autograd.grad(score, captured["a"])

    from captum.attr import LayerGradCam

    captum_cam = LayerGradCam(model, model.layer4)
    contenders = {
        "forward alone (no grad)": forward_only,
        "floor: forward + partial backward": floor_forward_partial_backward,
        "gradcam_widgets, layer4": lambda: gw.gradcam(model, x, targets, last),
        "captum LayerGradCam, layer4": lambda: captum_cam.attribute(
            x, target=targets, relu_attributions=True
        ),
    }
    grad_cam_classes = load_pytorch_grad_cam()
    if grad_cam_classes is not None:
        GradCAM, ClassifierOutputTarget = grad_cam_classes
        pgc = GradCAM(model=model, target_layers=[model.layer4])
        wanted = [ClassifierOutputTarget(t) for t in targets]
        contenders["pytorch-grad-cam GradCAM, layer4"] = lambda: pgc(x, targets=wanted)
    contenders[f"gradcam_widgets, earliest layer ({earliest})"] = lambda: gw.gradcam(
        model, x, targets, earliest
    )
    contenders[f"gradcam_widgets, all {len(layers)} layers"] = lambda: gw.gradcam(
        model, x, targets, layers
    )
    one = x[:1]
    contenders["one image, one class"] = lambda: gw.gradcam(model, one, None, last)
    contenders["one image, top-5 classes in one call"] = lambda: gw.gradcam_multi(
        model, one, [281, 282, 285, 0, 1], last
    )
    medians = measure(contenders, rounds=5)
    rows = [
        ("engine / floor", "gradcam_widgets, layer4", "floor: forward + partial backward", 1.3),
        ("engine / captum", "gradcam_widgets, layer4", "captum LayerGradCam, layer4", 1.1),
    ]
    if grad_cam_classes is not None:
        rows.append(
            (
                "engine / pytorch-grad-cam",
                "gradcam_widgets, layer4",
                "pytorch-grad-cam GradCAM, layer4",
                1 / 1.5,
            )
        )
    rows += [
        (
            "all layers / earliest layer",
            f"gradcam_widgets, all {len(layers)} layers",
            f"gradcam_widgets, earliest layer ({earliest})",
            1.3,
        ),
        ("top-5 / one class", "one image, top-5 classes in one call", "one image, one class", 2.0),
        ("engine / forward alone", "gradcam_widgets, layer4", "forward alone (no grad)", None),
    ]
    ok = report(f"PyTorch, ResNet-18 shape, batch {BATCH}, {SIZE} px, 2 threads", medians, rows)
    print("\nall targets met" if ok else "\nsome targets missed")


if __name__ == "__main__":
    main()
