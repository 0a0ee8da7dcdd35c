"""Self-checks and concept questions for lesson 02 (the Grad-CAM derivation).

The checks run the learner's *functions* on inputs of their own, so an answer cannot be
copied from an earlier cell; :func:`check_gradcam_function` also refuses a function that
calls the package's ``gradcam``. Two functions with a hidden mistake each
(:func:`mystery_1`, :func:`mystery_2`) are the material of the diagnosis exercise. Every
check says what looks wrong without printing the right answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import TODO, Feedback, Question, Quiz, as_map, feedback, is_todo, maps_close

__all__ = [
    "MYSTERY_CHOICES",
    "QUIZ",
    "TODO",
    "check_diagnosis",
    "check_gradcam_function",
    "check_hirescam_function",
    "mystery_1",
    "mystery_2",
]


# ----------------------------------------------------------------------------- helpers


def _capture(model: Any, inputs: Any, layer: str | None) -> tuple[np.ndarray, np.ndarray, list]:
    """Scores ``(N, C)``, activations ``(N, K, h, w)`` and each class's gradients.

    Returns:
        logits, activations, and a list over classes of ``(N, K, h, w)`` gradients of the
        pre-softmax score of that class, all channels first, from one forward pass.
    """
    from .. import engine

    classes = engine.predict(model, inputs).shape[1]
    result = engine.explain(model, inputs, list(range(classes)), layer)
    (name,) = result.layers
    grads = [np.asarray(g[name], dtype=np.float64) for g in result.gradients]
    return (
        np.asarray(result.logits, dtype=np.float64),
        np.asarray(result.activations[name], dtype=np.float64),
        grads,
    )


def _targets(target: int | Sequence[int], size: int) -> np.ndarray:
    if isinstance(target, (int, np.integer)):
        return np.full(size, int(target))
    values = np.asarray(list(target), dtype=int)
    if values.shape != (size,):
        raise ValueError(f"give one class per image: {size} images, {values.size} classes.")
    return values


def _own(grads: list, targets: np.ndarray) -> np.ndarray:
    """Each image's gradients for its own class: ``(N, K, h, w)``."""
    return np.stack([grads[int(c)][n] for n, c in enumerate(targets)])


def _weigh(alpha: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """``sum_k alpha_k A^k`` per image; ``alpha`` is ``(N, K)`` or ``(K,)``."""
    alpha = np.broadcast_to(alpha, acts.shape[:2])
    return np.einsum("nk,nkhw->nhw", alpha, acts)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _softmax_alpha(logits: np.ndarray, grads: list, targets: np.ndarray) -> np.ndarray:
    """Channel weights from the gradient of the probability p_c instead of the score.

    ``dp_c/dA = p_c (dy^c/dA - sum_j p_j dy^j/dA)``, averaged over the positions.
    """
    p = _softmax(logits)
    per_class = np.stack([g.mean(axis=(2, 3)) for g in grads], axis=1)  # (N, C, K)
    mixture = np.einsum("nc,nck->nk", p, per_class)
    rows = np.arange(len(targets))
    return p[rows, targets][:, None] * (per_class[rows, targets] - mixture)


# ----------------------------------------------------------------------------- exercise 1


class _ForbiddenCall(Exception):
    pass


@contextmanager
def _package_methods_forbidden() -> Iterator[None]:
    """While active, the package's own map functions raise instead of answering."""
    from .. import engine

    names = ("gradcam", "gradcam_multi", "cam", "explain")
    saved = {name: getattr(engine, name) for name in names}

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _ForbiddenCall

    try:
        for name in names:
            setattr(engine, name, refuse)
        yield
    finally:
        for name, function in saved.items():
            setattr(engine, name, function)


def check_gradcam_function(
    function: Any, model: Any, inputs: Any, targets: Sequence[int], layer: str
) -> Feedback:
    """Exercise 1: a Grad-CAM function for a batch, each image with its own class.

    The check calls ``function(inputs, targets)`` and, to be sure nothing is hard-coded,
    again on the batch in reverse order. It recognises the classic mistakes: averaging
    the gradients over the batch axis too, differentiating the softmax output, one class
    for every image, no ReLU, a normalised or summed map, and gradient x activation.

    Args:
        function: the learner's ``function(x, targets) -> (N, h, w)`` maps.
        model: the network the function explains.
        inputs: a batch in the model's layout, at least two images.
        targets: one class per image.
        layer: the layer the exercise names.
    """
    if is_todo(function):
        return feedback(None, "define your function and put its name in place of TODO.")
    if not callable(function):
        return feedback(False, "pass the function itself (its name, without brackets).")
    classes = _targets(list(targets), len(targets))
    logits, acts, grads = _capture(model, inputs, layer)
    size, _, height, width = acts.shape
    own = _own(grads, classes)
    alpha = own.mean(axis=(2, 3))
    raw = _weigh(alpha, acts)
    expected = np.maximum(raw, 0.0)

    order = np.arange(size)[::-1]
    reversed_inputs = inputs[::-1] if not hasattr(inputs, "flip") else inputs.flip(0)
    answers = []
    for batch, chosen in ((inputs, classes), (reversed_inputs, classes[order])):
        try:
            with _package_methods_forbidden():
                result = function(batch, [int(c) for c in chosen])
        except _ForbiddenCall:
            return feedback(
                False,
                "your function calls the package's gradcam (or cam). The exercise is to write "
                "it yourself, with a GradientTape; compare with the package afterwards.",
            )
        except Exception as error:  # the learner's code: report, do not crash the cell
            return feedback(False, f"your function raised {type(error).__name__}: {error}")
        if is_todo(result):
            return feedback(None, "your function still returns TODO: write its body.")
        mine = as_map(result)
        if mine is None:
            return feedback(False, f"your function returned {type(result).__name__}, not maps.")
        answers.append(mine)
    mine, mine_reversed = answers
    if mine.shape != expected.shape:
        if mine.shape == (height, width):
            return feedback(False, "your function returns one map; give one per image, (N, h, w).")
        if mine.ndim == 3 and mine.shape[0] == size:
            return feedback(
                False,
                f"maps of shape {mine.shape[1:]}, but layer {layer!r} has {height} x {width} "
                "cells: is the tape watching the right layer's output?",
            )
        if mine.ndim == 4:
            return feedback(False, f"shape {mine.shape}: the channels still have to be added up.")
        return feedback(False, f"expected ({size}, {height}, {width}) maps, got {mine.shape}.")
    if not np.all(np.isfinite(mine)):
        return feedback(False, "your maps contain NaN: leave them unnormalised.")
    if maps_close(mine, expected):
        if not maps_close(mine_reversed, expected[order]):
            return feedback(
                False,
                "right on this batch, but not when the same images come in another order: "
                "does your function really use its arguments?",
            )
        return feedback(
            True,
            "each image gets its own channel weights, from the gradient of its own class's "
            "score, averaged over its own positions only.",
        )
    batch_alpha = alpha.mean(axis=0)
    diagnoses = [
        (
            np.maximum(_weigh(batch_alpha, acts), 0.0),
            "the gradients were averaged over the batch axis as well: every image got the "
            "same channel weights, a mix of all the images' classes. Average over the "
            "positions only.",
        ),
        (
            np.maximum(_weigh(_softmax_alpha(logits, grads, classes), acts), 0.0),
            "these are the maps of the probability, after the softmax: tiny, and shaped by the "
            "other likely classes. Differentiate the score before the softmax.",
        ),
        (
            np.maximum(_weigh(_own(grads, np.full(size, classes[0])).mean(axis=(2, 3)), acts), 0),
            "every image was explained for the first image's class. Each image has its own "
            "class in targets.",
        ),
        (
            np.maximum(_weigh(_own(grads, logits.argmax(axis=1)).mean(axis=(2, 3)), acts), 0),
            "every image was explained for its top class, not for the class in targets.",
        ),
        (raw, "your maps have negative values: the last step keeps only the positive part."),
        (
            expected * height * width,
            "right pattern, too large by the number of positions: average the gradients, do "
            "not sum them.",
        ),
        (
            np.maximum(np.einsum("nkhw,nkhw->nhw", own, acts), 0.0),
            "you multiplied gradients and activations position by position (that is "
            "HiResCAM, exercise 2). Grad-CAM first averages each channel's gradient.",
        ),
    ]
    for wrong, message in diagnoses:
        if wrong.shape == mine.shape and maps_close(mine, wrong):
            return feedback(False, message)
    peaks = expected.max(axis=(1, 2), keepdims=True)
    if np.all(peaks > 0) and maps_close(mine, expected / peaks):
        return feedback(False, "normalised maps: return them as the formula gives them.")
    return feedback(
        False,
        "not the Grad-CAM maps. Per image: the gradient of its class's score with respect to "
        "the layer's output, averaged over the positions, then the weighted sum and a ReLU.",
    )


# ----------------------------------------------------------------------------- exercise 2


def check_hirescam_function(function: Any) -> Feedback:
    """Exercise 2: HiResCAM, ``ReLU(sum_k dy/dA^k (.) A^k)``, as a function of two arrays.

    The check calls ``function(activations, gradients)`` on random ``(h, w, K)`` arrays
    of its own, channels last, so no value printed in the lesson can pass.

    Args:
        function: the learner's ``function(A, grads) -> (h, w)`` map.
    """
    if is_todo(function):
        return feedback(None, "define your function and put its name in place of TODO.")
    if not callable(function):
        return feedback(False, "pass the function itself (its name, without brackets).")
    rng = np.random.default_rng(2020)
    for shape in ((5, 6, 8), (3, 3, 4)):
        acts = rng.random(shape)
        grads = rng.normal(size=shape)
        try:
            result = function(acts.copy(), grads.copy())
        except Exception as error:  # the learner's code: report, do not crash the cell
            return feedback(False, f"your function raised {type(error).__name__}: {error}")
        if is_todo(result):
            return feedback(None, "your function still returns TODO: write its body.")
        mine = as_map(result)
        if mine is None:
            return feedback(False, f"your function returned {type(result).__name__}, not a map.")
        height, width, channels = shape
        product = (acts * grads).sum(axis=-1)
        expected = np.maximum(product, 0.0)
        if mine.shape != (height, width):
            if mine.shape == shape:
                return feedback(False, "one map per channel: add the channels up.")
            if mine.shape == (channels,):
                return feedback(
                    False, "one number per channel: you summed over the positions, keep them."
                )
            return feedback(
                False,
                f"for inputs of shape {shape} expected ({height}, {width}), got {mine.shape}.",
            )
        if maps_close(mine, expected):
            continue
        gradcam = np.maximum(acts @ grads.mean(axis=(0, 1)), 0.0)
        if maps_close(mine, gradcam):
            return feedback(
                False,
                "that is Grad-CAM: the gradient was averaged over the positions first. "
                "HiResCAM keeps each position's own gradient.",
            )
        if maps_close(mine, product):
            return feedback(False, "negative values: finish with a ReLU.")
        if maps_close(mine, np.abs(product)) or maps_close(mine, (np.abs(grads) * acts).sum(-1)):
            return feedback(False, "the sign matters: no absolute values.")
        if maps_close(mine, expected / channels):
            return feedback(False, "too small by the number of channels: add, do not average.")
        if expected.max() > 0 and maps_close(mine, expected / expected.max()):
            return feedback(False, "normalised: return the map as the formula gives it.")
        return feedback(
            False,
            "not HiResCAM. Multiply gradient and activation at every position of every "
            "channel, add over the channels, then keep the positive part.",
        )
    return feedback(
        True,
        "each position keeps its own gradient, so no averaging can blur two parts of a "
        "channel together; the first-order Taylor term of section 1, position by position.",
    )


# ----------------------------------------------------------------------------- exercise 4


def _mystery(
    model: Any,
    inputs: Any,
    target: int | Sequence[int],
    layer: str | None,
    alpha_of: Callable[[np.ndarray, list, np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    logits, acts, grads = _capture(model, inputs, layer)
    classes = _targets(target, acts.shape[0])
    alpha = alpha_of(logits, grads, classes, _own(grads, classes).mean(axis=(2, 3)))
    return np.maximum(_weigh(alpha, acts), 0.0).astype(np.float32)


def mystery_1(
    model: Any, inputs: Any, target: int | Sequence[int], layer: str | None = None
) -> np.ndarray:
    """A Grad-CAM with one hidden mistake. Find it by experiment, not by reading this.

    Args:
        model: a Keras or PyTorch network.
        inputs: a batch in the model's layout.
        target: a class for every image, or one class per image.
        layer: the layer's name; the last candidate layer by default.

    Returns:
        float32 ``(N, h, w)`` maps.
    """
    return _mystery(model, inputs, target, layer, lambda lg, g, c, a: a.mean(axis=0))


def mystery_2(
    model: Any, inputs: Any, target: int | Sequence[int], layer: str | None = None
) -> np.ndarray:
    """Another Grad-CAM with one hidden mistake; same arguments as :func:`mystery_1`."""
    return _mystery(model, inputs, target, layer, lambda lg, g, c, a: _softmax_alpha(lg, g, c))


#: The possible diagnoses of exercise 4, by letter.
MYSTERY_CHOICES: tuple[str, ...] = (
    "It differentiates the probability (after the softmax) instead of the score.",
    "It averages the gradients over the batch axis as well as over the positions.",
    "It leaves out the final ReLU.",
    "Nothing is wrong with it.",
)

_TRUTH = {1: 1, 2: 0}
_MYSTERY_HINTS = {
    0: "a softmax gradient changes the map of a single image too, and makes it far fainter. "
    "Compare one image's map with gw.gradcam, values and all.",
    1: "averaging over the batch axis changes nothing for a batch of one image. Run one image "
    "alone, then inside a batch of different digits.",
    2: "without the ReLU a map would have negative values. Look at its minimum.",
    3: "compare it with gw.gradcam on one image, then on a batch of several different digits.",
}


def check_diagnosis(mystery: int, answer: Any) -> Feedback:
    """Exercise 4: which mistake ``mystery_1`` or ``mystery_2`` makes.

    Args:
        mystery: 1 or 2.
        answer: a letter of ``MYSTERY_CHOICES``.
    """
    if mystery not in _TRUTH:
        raise ValueError("mystery is 1 or 2.")
    if is_todo(answer):
        return feedback(None, "replace TODO with a letter, after your experiments.")
    letters = "abcd"
    letter = str(answer).strip().strip("()").lower()
    if len(letter) != 1 or letter not in letters:
        return feedback(False, f"answer with one letter, {', '.join(letters)}.")
    index = letters.index(letter)
    if index == _TRUTH[mystery]:
        why = {
            1: "one image alone gets the right map, but in a batch every image shares the "
            "batch's average channel weights, so each map mixes the classes of all images.",
            2: "its maps are orders of magnitude fainter than Grad-CAM's and differ in shape "
            "even for one image: the gradient of p_c is p_c times a contrast with the other "
            "likely classes (section 5).",
        }[mystery]
        return feedback(True, why)
    return feedback(False, f"({letter}) does not fit every experiment: " + _MYSTERY_HINTS[index])


# ----------------------------------------------------------------------------- questions

QUIZ = Quiz(
    [
        Question(
            "1. What is alpha_k^c, in words?",
            answer=2,
            choices=(
                "The dense layer's weight of channel k for class c.",
                "The largest gradient of y^c over channel k's map.",
                "The average, over the positions of channel k's map, of the gradient of the "
                "score y^c.",
            ),
            explanation=(
                "alpha_k^c = (1/Z) sum_ij dy^c/dA^k_ij: how much, on average over the map, "
                "raising channel k raises the score. It equals w_k^c / Z only on a GAP network."
            ),
        ),
        Question(
            "2. Grad-CAM at layer conv2 of lesson 01's network, whose output is 14 x 14 x 32: "
            "over how many numbers is each gradient averaged to give one alpha_k?",
            answer=196,
            explanation=(
                "Z = h * w = 14 * 14 = 196 positions of one channel; the 32 channels each get "
                "their own average."
            ),
        ),
        Question(
            "3. The first-order Taylor expansion of y^c around 'the layer switched off' "
            "(A = 0) splits the score into per-position terms. Which map is that?",
            answer=0,
            choices=(
                "sum_k dy^c/dA^k_ij * A^k_ij, gradient times activation: HiResCAM before its ReLU.",
                "sum_k alpha_k^c A^k_ij, always, at every layer.",
                "The gradient alone, dy^c/dA_ij.",
            ),
            explanation=(
                "y(A) - y(0) ~ sum over k, i, j of dy/dA^k_ij * A^k_ij. Grad-CAM replaces each "
                "gradient by its channel average, which changes nothing only when the gradient "
                "is the same at every position."
            ),
        ),
        Question(
            "4. When are Grad-CAM and HiResCAM the same map?",
            answer=1,
            choices=(
                "Always: they are two names for one method.",
                "When the gradient of each channel is the same at every position, as at the "
                "layer that global average pooling follows directly.",
                "Only for the top class.",
            ),
            explanation=(
                "averaging a constant changes nothing. At conv3 of the GAP network the gradient "
                "is w_k^c / Z everywhere; at conv2 it varies, and the maps differ."
            ),
        ),
        Question(
            "5. You differentiate the softmax probability p_c instead of the score y^c. After "
            "normalising the map, what is wrong?",
            answer=2,
            choices=(
                "Nothing: normalisation removes the difference.",
                "Only the colours: the map is fainter.",
                "Its shape: dp_c/dA is a contrast between class c and the other likely "
                "classes, so it shows where c beats the runner-up.",
            ),
            explanation=(
                "dp_c/dA = p_c (dy^c/dA - sum_j p_j dy^j/dA). Normalising removes the factor "
                "p_c but not the subtracted gradients of the other classes."
            ),
        ),
        Question(
            "6. Your Grad-CAM gives the right map for one image but wrong maps for a batch. "
            "The most likely mistake?",
            answer=0,
            choices=(
                "The gradients are averaged over the batch axis as well (axis 0).",
                "The ReLU is missing.",
                "The score before the softmax was used.",
            ),
            explanation=(
                "with N = 1, averaging over axes (0, 1, 2) and over (1, 2) agree; with N > 1 "
                "every image gets the batch's mean weights."
            ),
        ),
        Question(
            "7. Why does Grad-CAM end with a ReLU?",
            answer=1,
            choices=(
                "To make the map non-negative so that it can be divided by its maximum safely.",
                "To keep the evidence for the class; negative values are evidence against it, "
                "often another object.",
                "Because the network's layers end in ReLUs.",
            ),
            explanation=(
                "the paper wants the regions whose activation raises y^c. An all-zero map after "
                "the ReLU still breaks a naive division by the maximum (section 7.3)."
            ),
        ),
    ]
)
