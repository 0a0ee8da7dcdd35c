"""Self-checks for lesson 04 (Grad-CAM on ImageNet photos).

Each check computes the right value itself from the model and the picture and compares;
a wrong answer gets a hint about the likely slip, never the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import metrics
from . import TODO, Feedback, as_number, feedback, is_todo

__all__ = ["TODO", "half_box", "check_half_share", "check_earliest_layer"]


def half_box(image_size: int, half: str) -> tuple[int, int, int, int]:
    """The ``"left"`` or ``"right"`` half of a square image, as ``(top, left, bottom, right)``."""
    if half not in ("left", "right"):
        raise ValueError(f"half must be 'left' or 'right', got {half!r}.")
    middle = image_size // 2
    return (0, 0, image_size, middle) if half == "left" else (0, middle, image_size, image_size)


def _share(model: Any, inputs: Any, target: int, layer: str | None, half: str, size: int) -> float:
    from ..engine import gradcam

    heat = gradcam(model, inputs, target=int(target), layer=layer)
    return float(metrics.region_share(heat, half_box(size, half), size)[0])


def _input_size(inputs: Any) -> int:
    shape = tuple(int(s) for s in np.shape(inputs))
    # a square image: the spatial side is the size that occurs twice
    sides = [s for s in shape[1:] if shape[1:].count(s) >= 2]
    if not sides:
        raise ValueError(f"expected a batch of one square image, got shape {shape}.")
    return sides[0]


def check_half_share(
    answer: Any,
    model: Any,
    inputs: Any,
    target: int,
    *,
    half: str = "right",
    layer: str | None = None,
) -> Feedback:
    """Exercise 1: the share of one class's map in one half of the picture.

    Args:
        answer: the learner's share, between 0 and 1.
        model: the classifier.
        inputs: the preprocessed picture, a batch of one square image.
        target: the class the exercise asks about.
        half: ``"left"`` or ``"right"``.
        layer: the layer the exercise names (``None``: the last candidate layer).
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the share you computed, then run this cell.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    size = _input_size(inputs)
    expected = _share(model, inputs, target, layer, half, size)
    if np.isclose(value, expected, atol=0.01):
        return feedback(True, f"that is the share of the class's map in the {half} half.")
    other = "left" if half == "right" else "right"
    if np.isclose(value, 1.0 - expected, atol=0.01):
        return feedback(False, f"this is the share in the {other} half.")
    if not 0.0 <= value <= 1.0:
        return feedback(False, "a share lies between 0 and 1.")
    from ..engine import predict

    top = int(predict(model, inputs)[0].argmax())
    if top != int(target) and np.isclose(
        value, _share(model, inputs, top, layer, half, size), atol=0.01
    ):
        return feedback(
            False,
            "this is the map of the network's top class. Pass the class the exercise asks "
            "about as target=...",
        )
    return feedback(
        False,
        f"not the share the check finds. Compute the map of class {target} at the layer the "
        f"exercise names, then metrics.region_share(map, lesson04.half_box({size}, "
        f"{half!r}), {size}).",
    )


def check_earliest_layer(
    answer: Any,
    model: Any,
    inputs: Any,
    target: int,
    layers: Sequence[str],
    *,
    half: str = "left",
    threshold: float = 0.8,
) -> Feedback:
    """Exercise 2: the earliest layer whose map puts most of its mass on the object's half.

    Args:
        answer: a layer name.
        model: the classifier.
        inputs: the preprocessed picture, a batch of one square image.
        target: the class whose maps are compared.
        layers: the layers to consider, earliest first.
        half: the half of the picture that holds the object.
        threshold: the share a layer's map must reach.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a layer name, then run this cell.")
    layers = list(layers)
    if not isinstance(answer, str) or answer not in layers:
        return feedback(
            False,
            f"the answer should be one of the layer names: {', '.join(map(repr, layers))}.",
        )
    from ..engine import gradcam

    size = _input_size(inputs)
    maps = gradcam(model, inputs, target=int(target), layer=layers)
    box = half_box(size, half)
    shares = {name: float(metrics.region_share(maps[name], box, size)[0]) for name in layers}
    passing = [name for name in layers if shares[name] >= threshold]
    percent = f"{threshold:.0%}"
    if not passing:
        return feedback(
            False, f"no layer reaches {percent} for this class and picture; check the class."
        )
    earliest = passing[0]
    if answer == earliest:
        return feedback(
            True,
            "this is where the map first concentrates on the object: class-specific "
            "evidence appears late in the network.",
        )
    if shares[answer] < threshold:
        return feedback(
            False,
            f"at {answer!r} the map puts less than {percent} of its mass on the {half} half. "
            "Compute the share for every layer.",
        )
    return feedback(
        False,
        f"{answer!r} reaches {percent}, but an earlier layer does too. Go through the layers "
        "from the first.",
    )
