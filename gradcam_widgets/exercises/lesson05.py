"""Self-checks for lesson 05 (debugging a shortcut).

Each check computes the right value itself from what the lesson defines and compares;
a wrong answer gets a hint about the likely slip, never the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import datasets
from . import TODO, Feedback, as_number, feedback, is_todo

__all__ = ["TODO", "check_fooled_rate", "check_corner_share"]


def _predict(model: Any, images: np.ndarray) -> np.ndarray:
    from ..zoo import digits

    return digits.predict_classes(model, images)


def check_fooled_rate(
    answer: Any,
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    victim: int = 0,
    mark_class: int = 5,
) -> Feedback:
    """Exercise 1: how often a mark alone turns a digit into the mark's class.

    The exercise stamps the mark of ``mark_class`` on the clean test images of digit
    ``victim`` and asks for the fraction the model then classifies as ``mark_class``.

    Args:
        answer: the learner's fraction, a number between 0 and 1.
        model: the network trained on the marked data.
        images: the clean test images, uint8 ``(N, 28, 28)``.
        labels: their labels.
        victim: the digit whose images get the mark.
        mark_class: the class whose mark is stamped.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the fraction you measured, then run this cell.")
    value = as_number(answer)
    if value is None or not np.isfinite(value):
        return feedback(False, f"expected one number (a fraction), got {type(answer).__name__}.")
    labels = np.asarray(labels)
    victims = np.asarray(images)[labels == victim]
    pattern = datasets.mark_pattern(datasets.DEFAULT_MARKS[mark_class])
    stamped = datasets.add_mark(victims, pattern)
    predicted = _predict(model, stamped)
    expected = float(np.mean(predicted == mark_class))
    if np.isclose(value, expected, atol=0.011):
        if expected > 0.5:
            verdict = f"turns most {victim}s into {mark_class}s: the digit hardly matters."
        else:
            verdict = f"turns only some {victim}s into {mark_class}s with this model."
        return feedback(True, f"the mark of {mark_class} alone {verdict}")
    if value > 1.0 and np.isclose(value, expected * len(victims), atol=1.1):
        return feedback(
            False,
            "that looks like a count of images. The exercise asks for a fraction between 0 "
            "and 1: divide by the number of images.",
        )
    if not 0.0 <= value <= 1.0:
        return feedback(False, "a fraction lies between 0 and 1.")
    plain = _predict(model, victims)
    if np.isclose(value, float(np.mean(plain == mark_class)), atol=0.011):
        return feedback(
            False,
            "this is what the model says about the images *without* the mark. Stamp the mark "
            "with datasets.add_mark first, then predict.",
        )
    if np.isclose(value, float(np.mean(predicted == victim)), atol=0.011):
        return feedback(
            False,
            f"this is the fraction still classified as {victim}. The question asks how many "
            f"became {mark_class}s.",
        )
    everyone = datasets.add_mark(np.asarray(images), pattern)
    if np.isclose(value, float(np.mean(_predict(model, everyone) == mark_class)), atol=0.011):
        return feedback(
            False,
            f"you stamped every test image. Keep only the images of digit {victim} "
            f"(labels == {victim}).",
        )
    return feedback(
        False,
        f"not the fraction the check measures. Did you stamp the mark of class {mark_class} "
        f"on the clean images of digit {victim}, predict with the shortcut model, and "
        f"average (predictions == {mark_class})?",
    )


def check_corner_share(answer: Any, heat: np.ndarray, box: tuple[int, int, int, int]) -> Feedback:
    """Exercise 2: the share of a map's mass inside a box, by hand.

    Args:
        answer: the learner's share, a number between 0 and 1.
        heat: the (already upsampled, non-negative) map, ``(H, W)``.
        box: ``(top, left, bottom, right)``, bottom and right exclusive.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your share, then run this cell.")
    value = as_number(answer)
    if value is None or not np.isfinite(value):
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    heat = np.maximum(np.asarray(heat, dtype=np.float64), 0.0)
    top, left, bottom, right = box
    inside = float(heat[top:bottom, left:right].sum())
    total = float(heat.sum())
    expected = inside / total if total > 0 else 0.0
    if np.isclose(value, expected, rtol=1e-3, atol=1e-4):
        return feedback(True, "that is the share of the map's mass inside the corner box.")
    if np.isclose(value, inside, rtol=1e-3):
        return feedback(
            False, "this is the mass inside the box. A share divides it by the whole map's mass."
        )
    area = (bottom - top) * (right - left) / heat.size
    if np.isclose(value, area, rtol=1e-3):
        return feedback(
            False,
            "this is the box's share of the image's area, the same for every map. Weigh the "
            "pixels by the map's values.",
        )
    if np.isclose(value, 1.0 - expected, rtol=1e-3, atol=1e-4):
        return feedback(False, "this is the share *outside* the box.")
    box_mean = float(heat[top:bottom, left:right].mean())
    if total > 0 and np.isclose(value, box_mean / heat.mean(), rtol=1e-3):
        return feedback(
            False,
            "you divided two averages. Sum the values inside the box and divide by the sum "
            "over the whole map.",
        )
    if value > 1.0 or value < 0.0:
        return feedback(False, "a share lies between 0 and 1.")
    return feedback(
        False,
        "not the share the check finds. Slice the box as heat[top:bottom, left:right] (rows "
        "first, ends excluded), sum it, and divide by heat.sum().",
    )
