"""Self-checks for lesson 06 (can we trust the map?).

Each check computes the right value itself and compares; a wrong answer gets a hint about
the likely slip, never the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics
from . import TODO, Feedback, as_number, feedback, is_todo

__all__ = ["TODO", "check_random_baseline", "check_rank_correlation", "check_occlusion"]


def _near(value: float, expected: float, tolerance: float = 1e-3) -> bool:
    return bool(np.isclose(value, expected, rtol=tolerance, atol=1e-6))


def check_random_baseline(answer: Any, boxes: np.ndarray, canvas_size: int) -> Feedback:
    """Exercise 1: the pointing-game score of a point drawn uniformly at random.

    Args:
        answer: the learner's expected hit rate, between 0 and 1.
        boxes: ``(N, 4)`` boxes ``(top, left, bottom, right)``, bottom and right exclusive.
        canvas_size: the side of the square canvas in pixels.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your expected hit rate, then run this cell.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    boxes = np.asarray(boxes, dtype=np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    expected = metrics.random_baseline(boxes, canvas_size)
    if _near(value, expected):
        return feedback(
            True,
            "a random point lands in a box as often as the box covers the canvas. Any method "
            "worth using must score clearly above this.",
        )
    if _near(value, float(areas.mean())):
        return feedback(
            False,
            "this is an area in pixels. A probability compares it with the canvas's area.",
        )
    if _near(value, float(areas.mean()) / canvas_size):
        return feedback(
            False, "you divided by the canvas's side; divide by its area (side times side)."
        )
    if _near(value, 1.0 - expected):
        return feedback(False, "this is the chance of *missing* the box.")
    if _near(value, 28.0 * 28.0 / canvas_size**2):
        return feedback(
            False,
            "this is the share of a whole 28 x 28 MNIST image. The game uses the tight box "
            "around the placed digit's ink: the rows of `boxes`.",
        )
    if not 0.0 <= value <= 1.0:
        return feedback(False, "a hit rate lies between 0 and 1.")
    return feedback(
        False,
        "not the value the check finds. For each box, height = bottom - top and width = "
        "right - left; the chance for one image is its box's area over the canvas's area; "
        "then average over the images.",
    )


def check_rank_correlation(answer: Any, first: np.ndarray, second: np.ndarray) -> Feedback:
    """Exercise 2: Spearman's rank correlation of two maps, by hand.

    Args:
        answer: the learner's correlation, between -1 and 1.
        first: a map.
        second: a map of the same shape.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your rank correlation, then run this cell.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    expected = metrics.rank_correlation(a, b)
    if _near(value, expected, 1e-4):
        return feedback(
            True,
            "this is Spearman's rank correlation: the Pearson correlation of the ranks. It "
            "ignores how large the values are and compares only their order.",
        )
    if _near(value, float(np.corrcoef(a, b)[0, 1]), 1e-4):
        return feedback(
            False,
            "this is the correlation of the values themselves (Pearson's). Replace each value "
            "by its rank first.",
        )
    if _near(value, 1.0 - expected, 1e-4):
        return feedback(False, "this is one minus the correlation.")
    if _near(value, expected**2, 1e-4):
        return feedback(False, "this is the square of the correlation; keep its sign.")
    if not -1.0 <= value <= 1.0:
        return feedback(False, "a correlation lies between -1 and 1.")
    return feedback(
        False,
        "not the value the check finds. Flatten both maps, rank each with "
        "scipy.stats.rankdata, and take np.corrcoef of the two rank arrays ([0, 1]).",
    )


def _score(model: Any, image: np.ndarray, target: int) -> float:
    from ..engine import predict

    return float(predict(model, image[np.newaxis, np.newaxis].astype(np.float32))[0, target])


def _erase(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, bottom, right = box
    erased = np.array(image, dtype=np.float32, copy=True)
    erased[top:bottom, left:right] = 0.0
    return erased


def check_occlusion(
    answer: Any,
    model: Any,
    image: np.ndarray,
    erased_box: tuple[int, int, int, int],
    other_box: tuple[int, int, int, int],
    target: int = 0,
) -> Feedback:
    """Exercise 3: how a class score changes when one region of the image is erased.

    Args:
        answer: the learner's change of the score, new minus old.
        model: a PyTorch model taking ``(N, 1, H, W)``.
        image: the ``(H, W)`` float image.
        erased_box: the region the exercise asks to erase (set to 0).
        other_box: the other highlighted region (a common slip is to erase it instead).
        target: the class whose score (before the softmax) is asked for.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the change of the score, then run this cell.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    image = np.asarray(image, dtype=np.float32)
    before = _score(model, image, target)
    after = _score(model, _erase(image, erased_box), target)
    expected = after - before
    if _near(value, expected):
        direction = "rises" if expected > 0 else "falls"
        return feedback(
            True,
            f"erasing that region, the score {direction}: the region counted "
            f"{'against' if expected > 0 else 'for'} the class, whatever the map's colour said.",
        )
    if _near(value, -expected):
        return feedback(False, "the sign is reversed: give the new score minus the old one.")
    if _near(value, after):
        return feedback(False, "this is the new score; the exercise asks for its change.")
    other = _score(model, _erase(image, other_box), target)
    if _near(value, other - before) or _near(value, before - other):
        return feedback(False, "this is what erasing the *other* blob does. Check the box.")
    return feedback(
        False,
        "not the change the check finds. Copy the image, set the box's pixels to 0, and "
        "compare gw.predict's scores (before the softmax) of the two images for the class.",
    )
