"""Self-checks for lesson 01 (CAM with global average pooling).

Each check compares the learner's answer with a value it computes itself, and says what
looks wrong without printing the right answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import TODO, Feedback, as_map, feedback, is_todo, maps_close

__all__ = ["TODO", "check_cam", "check_class_score"]


def check_cam(answer: Any, features: np.ndarray, weights: np.ndarray, target: int) -> Feedback:
    """Exercise 1: the class activation map of class ``target``, computed by hand.

    Args:
        answer: the learner's map, a 2-D array of the feature maps' height and width.
        features: the last convolution's output for one image, ``(h, w, K)`` (a batch
            axis of one is allowed), channels last as Keras gives it.
        weights: the dense layer's kernel, ``(K, classes)``.
        target: the class the exercise asks about.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your (h, w) map, then run this cell again.")
    maps = np.asarray(features, dtype=np.float64)
    if maps.ndim == 4:
        maps = maps[0]
    kernel = np.asarray(weights, dtype=np.float64)
    height, width, channels = maps.shape
    mine = as_map(answer)
    if mine is None:
        return feedback(False, f"expected a numpy array, got {type(answer).__name__}.")
    every_class = maps @ kernel  # (h, w, classes)
    expected = every_class[..., target]
    if mine.shape != expected.shape:
        if mine.shape == every_class.shape:
            return feedback(
                False,
                f"your array holds a map for every class (shape {mine.shape}). The exercise "
                "asks for one class: keep only that class's map.",
            )
        if mine.shape == maps.shape:
            return feedback(
                False,
                f"your array still has one map per channel (shape {mine.shape}). A CAM "
                f"combines the {channels} channels into a single ({height}, {width}) map.",
            )
        if mine.shape == (channels,) or mine.shape == (kernel.shape[1],):
            return feedback(
                False,
                f"your array has shape {mine.shape}: that is one number per channel or per "
                f"class, as if the maps had been averaged away. CAM keeps the ({height}, "
                f"{width}) positions.",
            )
        return feedback(
            False, f"expected a map of shape ({height}, {width}), got shape {mine.shape}."
        )
    if not np.all(np.isfinite(mine)):
        return feedback(False, "your map contains NaN or infinite values.")
    if maps_close(mine, expected):
        return feedback(
            True,
            "this is the class activation map. Its average, plus the dense layer's bias, is "
            "the class score: exercise 2 checks that.",
        )
    for other in range(every_class.shape[-1]):
        if other != target and maps_close(mine, every_class[..., other]):
            return feedback(
                False,
                f"this is the map of class {other}. Use the dense weights of class {target}: "
                "which axis of the kernel indexes the classes?",
            )
    if expected.min() < 0 and maps_close(mine, np.maximum(expected, 0.0)):
        return feedback(
            False,
            "your map has no negative values, but CAM keeps them: there is no ReLU in "
            "sum_k w_k^c A^k.",
        )
    peak = float(np.abs(expected).max())
    if peak > 0 and float(np.abs(mine).max()) > 0:
        ratio = float(np.abs(mine).max()) / peak
        if not np.isclose(ratio, 1.0, rtol=1e-3) and maps_close(mine / ratio, expected):
            return feedback(
                False,
                "your map has the right shape but is scaled by a constant. Leave it "
                "unnormalised and use the weights as they are.",
            )
    if maps_close(mine, maps.mean(axis=-1)) or maps_close(mine, maps.sum(axis=-1)):
        return feedback(
            False,
            "you combined the channels without the class's weights: each channel k should "
            "count with its own weight w_k^c.",
        )
    return feedback(
        False,
        "the map has the right shape but other values. A CAM multiplies each channel's map "
        "A^k by the dense weight w_k^c of the class and adds the results.",
    )


def check_class_score(answer: Any, model: Any, inputs: Any, target: int) -> Feedback:
    """Exercise 2: the class score (before the softmax) recovered from the CAM.

    Args:
        answer: the learner's number.
        model: the GAP network (Keras or PyTorch).
        inputs: the one image of the exercise, in the model's layout.
        target: the class the exercise asks about.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a number computed from your CAM.")
    try:
        value = float(np.asarray(answer, dtype=np.float64).reshape(-1)[0])
        if np.asarray(answer).size != 1:
            raise ValueError
    except (TypeError, ValueError, IndexError):
        return feedback(False, f"expected a single number, got {type(answer).__name__}.")
    from .. import engine

    logits = engine.predict(model, inputs)[0].astype(np.float64)
    cam_map = engine.cam(model, inputs, target=target)[0].astype(np.float64)
    expected = float(logits[target])
    bias = expected - float(cam_map.mean())

    def near(a: float, b: float) -> bool:
        return bool(np.isclose(a, b, rtol=1e-3, atol=1e-3))

    if near(value, expected):
        return feedback(
            True,
            "the CAM's average plus the bias is exactly the score the dense layer computes: "
            "the map splits the score into one contribution per position.",
        )
    shifted = logits - logits.max()
    probabilities = np.exp(shifted) / np.exp(shifted).sum()
    if near(value, float(probabilities[target])):
        return feedback(
            False,
            "that is the probability, after the softmax. The exercise asks for the score "
            "before it.",
        )
    if near(value, float(cam_map.mean())):
        return feedback(
            False,
            "close: the dense layer computes one more term than the weighted sum. Look at "
            "everything scores.get_weights() returns.",
        )
    if near(value, float(cam_map.sum())) or near(value, float(cam_map.sum()) + bias):
        return feedback(
            False,
            "you added up the positions, but global average pooling averages them.",
        )
    if near(value, float(np.maximum(cam_map, 0.0).mean()) + bias):
        return feedback(
            False,
            "negative positions count too: do not clip the map before averaging it.",
        )
    return feedback(
        False,
        "not the class score. Write y^c = sum_k w_k^c F^k + b_c with F^k the average of "
        "A^k, and look for the CAM inside that sum.",
    )
