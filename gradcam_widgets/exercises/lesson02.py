"""Self-checks for lesson 02 (the Grad-CAM derivation).

The arrays come channels last, as a Keras ``GradientTape`` gives them: activations and
gradients of one image are ``(h, w, K)`` (a batch axis of one is allowed). Each check
says what looks wrong without printing the right answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import is_tensor, to_numpy
from . import TODO, Feedback, as_map, feedback, is_todo, maps_close

__all__ = ["TODO", "check_alpha", "check_gradcam_map", "check_z"]


def _one_image(array: Any) -> np.ndarray:
    values = np.asarray(to_numpy(array) if is_tensor(array) else array, dtype=np.float64)
    if values.ndim == 4:
        if values.shape[0] != 1:
            raise ValueError("the exercise is about one image: pass a batch of one.")
        values = values[0]
    return values


def _as_vector(answer: Any) -> np.ndarray | None:
    array = as_map(answer)
    if array is None:
        return None
    while array.ndim > 1 and array.shape[0] == 1:
        array = array[0]
    return array


def check_alpha(answer: Any, gradients: Any) -> Feedback:
    """Exercise 1: the channel weights ``alpha_k^c`` from the gradients of one image.

    Args:
        answer: the learner's weights, one number per channel (``(K,)`` or ``(1, K)``).
        gradients: ``dy^c / dA`` for one image, ``(h, w, K)`` or ``(1, h, w, K)``.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with one weight per channel, then run the cell.")
    grads = _one_image(gradients)
    height, width, channels = grads.shape
    mine = _as_vector(answer)
    if mine is None:
        return feedback(False, f"expected a numpy array, got {type(answer).__name__}.")
    expected = grads.mean(axis=(0, 1))
    if mine.shape != expected.shape:
        if mine.shape == (height, width):
            return feedback(
                False,
                f"your array is a ({height}, {width}) map: you averaged over the channels. "
                "alpha has one number per channel, so average over the other axes.",
            )
        if mine.shape == grads.shape:
            return feedback(
                False,
                f"your array still has shape {mine.shape}: nothing was averaged yet.",
            )
        if mine.size == 1:
            return feedback(
                False,
                f"a single number: you averaged over every axis. Keep the {channels} channels.",
            )
        return feedback(False, f"expected {channels} weights, got shape {mine.shape}.")
    if maps_close(mine, expected):
        return feedback(
            True,
            "one weight per channel: how much, on average over the map, the score rises when "
            "that channel's activations rise.",
        )
    if maps_close(mine, grads.sum(axis=(0, 1))):
        return feedback(
            False,
            "right direction, but every weight is too large by the same factor: the formula "
            "has a 1/Z in front of the sum.",
        )
    if maps_close(mine, np.abs(grads).mean(axis=(0, 1))):
        return feedback(False, "the sign of a gradient matters: do not take absolute values.")
    if maps_close(mine, grads.max(axis=(0, 1))):
        return feedback(False, "the formula averages the gradients; it does not take the maximum.")
    return feedback(
        False,
        "not the channel weights. alpha_k^c is the average over the positions (i, j) of "
        "dy^c/dA^k_ij, one value for each channel k.",
    )


def check_gradcam_map(answer: Any, activations: Any, gradients: Any) -> Feedback:
    """Exercise 2: the Grad-CAM map of one image from its activations and gradients.

    Args:
        answer: the learner's map, ``(h, w)`` (a batch axis of one is allowed).
        activations: ``A`` of one image, ``(h, w, K)`` or ``(1, h, w, K)``.
        gradients: ``dy^c / dA`` of that image, same shape.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your (h, w) map, then run the cell.")
    acts = _one_image(activations)
    grads = _one_image(gradients)
    height, width, channels = acts.shape
    mine = as_map(answer)
    if mine is None:
        return feedback(False, f"expected a numpy array, got {type(answer).__name__}.")
    alpha = grads.mean(axis=(0, 1))
    raw = acts @ alpha
    expected = np.maximum(raw, 0.0)
    if mine.shape != expected.shape:
        if mine.shape == acts.shape:
            return feedback(
                False,
                f"one map per channel (shape {mine.shape}): the weighted channels still have "
                "to be added up.",
            )
        return feedback(
            False, f"expected a map of shape ({height}, {width}), got shape {mine.shape}."
        )
    if not np.all(np.isfinite(mine)):
        return feedback(
            False,
            "your map contains NaN: did you divide by its maximum? An all-zero map has a "
            "maximum of 0. Leave the map unnormalised here.",
        )
    if maps_close(mine, expected):
        return feedback(True, "that is L^c = ReLU(sum_k alpha_k^c A^k).")
    if raw.min() < 0 and maps_close(mine, raw):
        return feedback(
            False,
            "your map has negative values: the last step of the formula keeps only the "
            "positive evidence.",
        )
    peak = float(expected.max())
    if peak > 0 and float(mine.max()) > 0:
        ratio = float(mine.max()) / peak
        if not np.isclose(ratio, 1.0, rtol=1e-3) and maps_close(mine / ratio, expected):
            return feedback(
                False,
                "the right map up to a constant factor: did you normalise it, or sum the "
                "gradients instead of averaging them? Keep it as the formula gives it.",
            )
    if maps_close(mine, np.maximum(acts.sum(axis=-1) * grads.mean(), 0.0)):
        return feedback(False, "each channel needs its own weight alpha_k^c.")
    if maps_close(mine, np.maximum((acts * grads).sum(axis=-1), 0.0)):
        return feedback(
            False,
            "you multiplied activations and gradients position by position. Grad-CAM first "
            "averages the gradients of each channel into one weight.",
        )
    return feedback(
        False,
        "not the Grad-CAM map. Weigh each channel's map A^k by its alpha_k^c, add them, "
        "then apply the last step of the formula.",
    )


def check_z(answer: Any, height: int, width: int, channels: int) -> Feedback:
    """Exercise 3: the constant ``Z`` with Grad-CAM = ReLU(CAM) / Z on a GAP network.

    Args:
        answer: the learner's number.
        height: the feature map's height.
        width: the feature map's width.
        channels: the number of channels (to recognise a tempting wrong answer).
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a number.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return feedback(False, f"expected a number, got {type(answer).__name__}.")
    expected = float(height * width)
    if np.isclose(value, expected):
        return feedback(
            True,
            "Z counts the positions of one feature map: each position gets 1/Z of the "
            "average, so every gradient is w_k^c / Z.",
        )
    if value > 0 and np.isclose(value, 1.0 / expected):
        return feedback(False, "upside down: the Grad-CAM map is the smaller of the two.")
    if np.isclose(value, float(channels)):
        return feedback(
            False,
            "that is the number of channels. The average in global average pooling runs "
            "over something else.",
        )
    if np.isclose(value, float(height)) or np.isclose(value, float(width)):
        return feedback(False, "that counts one side of the map; the average runs over all of it.")
    if np.isclose(value, expected * channels):
        return feedback(False, "too large: each channel is averaged on its own.")
    return feedback(
        False,
        "not Z. Look at the derivation: which number divides the sum in F^k = (1/Z) sum_ij A^k_ij?",
    )
