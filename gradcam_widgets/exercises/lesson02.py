"""Self-checks and concept questions for lesson 02 (the Grad-CAM derivation).

The checks run the learner's *functions* on inputs of their own, so an answer cannot be
copied from an earlier cell; :func:`check_gradcam_function` also refuses a function that
calls the package's ``gradcam``. The diagnosis exercise draws Grad-CAM functions with a
hidden mistake each (:func:`draw_mysteries`): which mistake is drawn at run time. Every
check says what looks wrong without printing the right answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import TODO, Feedback, Question, Quiz, as_map, as_number, feedback, is_todo, maps_close
from .mysteries import Candidate, Mystery, check_mystery, draw_distinct

__all__ = [
    "MYSTERY_CANDIDATES",
    "MYSTERY_CHOICES",
    "QUIZ",
    "TODO",
    "check_diagnosis",
    "check_disagreeing_example",
    "check_gradcam_function",
    "check_hirescam_function",
    "check_taylor_error",
    "draw_mysteries",
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


def _score_of_switched_off_layer(model: Any, layer: str, target: int) -> float:
    """``y^target(0)``: the rest of a Keras ``Sequential``'s score when ``layer`` outputs 0."""
    import keras

    from .. import engine

    if not isinstance(model, keras.Sequential):
        raise ValueError("this check runs the rest of a Keras Sequential model, as in the lesson.")
    names = [item.name for item in model.layers]
    if layer not in names:
        raise ValueError(f"{layer!r} is not a layer of the model: {names}.")
    shape = tuple(model.get_layer(layer).output.shape[1:])
    rest = keras.Sequential([keras.Input(shape), *model.layers[names.index(layer) + 1 :]])
    zeros = np.zeros((1, *shape), dtype=np.float32)
    return float(engine.predict(rest, zeros)[0, target])  # the score before the softmax


def check_disagreeing_example(activations: Any, gradients: Any) -> Feedback:
    """Exercise 2 (a): arrays on which HiResCAM and Grad-CAM put their hottest cell apart.

    HiResCAM is ``ReLU(sum_k G^k (.) A^k)``, Grad-CAM ``ReLU(sum_k mean(G^k) A^k)``; they
    are proportional whenever each channel's gradient is the same at every position, so
    an example must make the gradient vary over the positions.

    Args:
        activations: the learner's ``A``, ``(h, w, K)``, non-negative (as after a ReLU).
        gradients: the learner's ``dy/dA``, the same shape.
    """
    if is_todo(activations) or is_todo(gradients):
        return feedback(None, "replace both TODOs with arrays of shape (h, w, K).")
    try:
        acts = np.asarray(activations, dtype=np.float64)
        grads = np.asarray(gradients, dtype=np.float64)
    except (TypeError, ValueError):
        return feedback(False, "expected two numeric arrays of shape (h, w, K).")
    if acts.ndim != 3 or acts.shape != grads.shape:
        return feedback(
            False,
            f"expected two arrays of the same shape (h, w, K), got {acts.shape} and "
            f"{grads.shape}.",
        )
    if acts.shape[0] * acts.shape[1] < 2:
        return feedback(False, "a map needs at least two cells for its hottest cell to move.")
    if not (np.all(np.isfinite(acts)) and np.all(np.isfinite(grads))):
        return feedback(False, "your arrays contain NaN or infinite values.")
    if acts.min() < 0:
        return feedback(False, "activations after a ReLU are never negative: keep A >= 0.")
    hires = np.maximum((acts * grads).sum(axis=-1), 0.0)
    gradcam = np.maximum(acts @ grads.mean(axis=(0, 1)), 0.0)
    if hires.max() <= 0 or gradcam.max() <= 0:
        return feedback(
            False,
            "one of the two maps is zero everywhere: it has no hottest cell. Make both "
            "positive somewhere.",
        )
    hottest = [np.flatnonzero(m >= m.max() * (1 - 1e-9)) for m in (hires, gradcam)]
    if len(hottest[0]) > 1 or len(hottest[1]) > 1:
        return feedback(
            False, "a map has a tie for its hottest cell; make each map's maximum unique."
        )
    if np.allclose(grads, grads.mean(axis=(0, 1), keepdims=True)):
        return feedback(
            False,
            "each channel's gradient is the same at every position: then the two maps are "
            "the same map (section 4.2). What must change from cell to cell?",
        )
    if hottest[0][0] == hottest[1][0]:
        return feedback(
            False,
            "both maps are hottest in the same cell. Where is a channel's activation large, "
            "and is its gradient large there too?",
        )
    return feedback(
        True,
        "HiResCAM follows each position's own gradient; Grad-CAM gives a channel one weight "
        "everywhere, so a channel that helps in one place and hurts in another is summarised "
        "by a single number.",
    )


def check_taylor_error(answer: Any, model: Any, inputs: Any, target: int, layer: str) -> Feedback:
    """Exercise 2b: how far the first-order expansion of Step 2 is from exact at ``layer``.

    The answer is ``(y^c(A) - y^c(0)) - sum_{k,i,j} dy^c/dA^k_ij A^k_ij``: the score's change
    when the layer is switched off, minus the sum of HiResCAM's shares (before the ReLU).
    ``y^c(0)`` is what the rest of the network scores for an all-zero output of the layer;
    it is the bias only when global average pooling follows the layer.

    Args:
        answer: the learner's number.
        model: the lesson's Keras ``Sequential`` GAP network.
        inputs: one image in the model's layout.
        target: the class.
        layer: the layer the exercise names.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with one number.")
    if np.asarray(answer, dtype=object).size != 1:
        return feedback(False, "expected one number, the error of the expansion.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected a single number, got {answer!r}.")
    logits, acts, grads = _capture(model, inputs, layer)
    shares = float((grads[int(target)][0] * acts[0]).sum())
    score = float(logits[0, int(target)])
    switched_off = _score_of_switched_off_layer(model, layer, int(target))
    expected = (score - switched_off) - shares
    bias = float(np.asarray(model.layers[-1].bias)[int(target)])
    scale = max(abs(score), 1.0)

    def near(a: float, b: float) -> bool:
        return bool(abs(a - b) <= 1e-3 * scale)

    if near(value, expected):
        return feedback(
            True,
            "the shares account for nearly all of the change: at this layer the expansion is "
            "close but not exact, because the network between the layer and the pooling "
            "(ReLUs, a max-pooling) is only piecewise linear. The gap between HiResCAM and "
            "Grad-CAM here comes from Step 3's averaging, not from Step 2.",
        )
    if near(value, -expected):
        return feedback(False, "right size, wrong sign: the change of the score minus the shares.")
    if near(value, (score - bias) - shares):
        return feedback(
            False,
            "you used the bias b_c for y^c(0). That holds where global average pooling follows "
            "the layer; here a pooling and a convolution with its own biases come first. Run "
            "the rest of the network on an all-zero output of the layer.",
        )
    if near(value, shares):
        return feedback(False, "that is the shares' sum alone; compare it with the score's change.")
    if near(value, score - switched_off):
        return feedback(False, "that is the score's change alone; subtract the shares from it.")
    if near(value, 0.0):
        return feedback(
            False,
            "zero would mean the expansion is exact, as at conv3. Compute both terms here.",
        )
    return feedback(
        False,
        "not that number. Three terms: y^c for the image, y^c when the layer's output is all "
        "zero (run the rest of the network on zeros), and the sum over k, i, j of gradient "
        "times activation at the layer.",
    )


# ----------------------------------------------------------------------------- exercise 4


_AlphaRule = Callable[[np.ndarray, list, np.ndarray, np.ndarray], np.ndarray]


def _mystery_map(
    alpha_of: _AlphaRule | None = None, *, relu: bool = True, per_position: bool = False
) -> Callable[..., np.ndarray]:
    """A Grad-CAM function built from a rule for its channel weights (and two switches).

    Args:
        alpha_of: ``(logits, grads, classes, own_alpha) -> alpha``; the right rule returns
            ``own_alpha``, each image's own gradients averaged over its positions.
        relu: whether the map ends in a ReLU.
        per_position: gradient x activation at each position instead of channel weights.
    """

    def mystery(
        model: Any, inputs: Any, target: int | Sequence[int], layer: str | None = None
    ) -> np.ndarray:
        logits, acts, grads = _capture(model, inputs, layer)
        classes = _targets(target, acts.shape[0])
        own = _own(grads, classes)
        if per_position:
            raw = np.einsum("nkhw,nkhw->nhw", own, acts)
        else:
            alpha = own.mean(axis=(2, 3))
            if alpha_of is not None:
                alpha = alpha_of(logits, grads, classes, alpha)
            raw = _weigh(alpha, acts)
        return (np.maximum(raw, 0.0) if relu else raw).astype(np.float32)

    return mystery


def _top_class_alpha(logits: np.ndarray, grads: list, classes: np.ndarray, own: np.ndarray) -> Any:
    return _own(grads, logits.argmax(axis=1)).mean(axis=(2, 3))


def _summed_alpha(logits: np.ndarray, grads: list, classes: np.ndarray, own: np.ndarray) -> Any:
    height, width = grads[0].shape[2:]
    return own * (height * width)


#: The candidate mistakes of exercise 4, in letter order; each mystery draws one.
MYSTERY_CANDIDATES: tuple[Candidate, ...] = (
    Candidate(
        "It differentiates the probability (after the softmax) instead of the score.",
        _mystery_map(lambda lg, g, c, a: _softmax_alpha(lg, g, c)),
        "a probability's gradient changes the map of a single image too, and makes it far "
        "fainter when the network is confident. Compare one image's map with gw.gradcam, "
        "values and all.",
        "its maps are orders of magnitude fainter than Grad-CAM's and differ in shape even "
        "for one image: the gradient of p_c is p_c times a contrast with the other likely "
        "classes (section 5).",
    ),
    Candidate(
        "It averages the gradients over the batch axis as well as over the positions.",
        _mystery_map(lambda lg, g, c, a: a.mean(axis=0)),
        "averaging over the batch axis changes nothing for a batch of one image. Run one "
        "image alone, then inside a batch of digits of different classes.",
        "one image alone gets the right map, but in a batch every image shares the batch's "
        "average channel weights, so each map mixes the classes of all the images.",
    ),
    Candidate(
        "It leaves out the final ReLU.",
        _mystery_map(relu=False),
        "without the ReLU a map has negative values wherever the weighted sum is negative. "
        "Look at the minimum, for a class the network does not predict too.",
        "its maps go below zero: the evidence against the class is kept, and a heatmap "
        "coloured from minimum to maximum would paint 'no evidence' in the middle colours.",
    ),
    Candidate(
        "It keeps each position's own gradient (gradient x activation) instead of averaging.",
        _mystery_map(per_position=True),
        "gradient x activation equals Grad-CAM wherever the gradient is the same at every "
        "position, as at the layer global average pooling follows. Compare at another layer.",
        "at conv3 it matched Grad-CAM exactly (the gradient is w_k^c / Z everywhere), at conv2 "
        "it did not: it is HiResCAM, Step 2 of the derivation, not Grad-CAM's Step 3.",
    ),
    Candidate(
        "It explains the top class, whatever target it is given.",
        _mystery_map(_top_class_alpha),
        "a function that explains the top class gives the right map whenever the target is "
        "the top class. Ask it for a class the network does not predict.",
        "right for the predicted class, wrong for any other: it takes the gradient of the "
        "largest score instead of the score of the class asked for.",
    ),
    Candidate(
        "It adds up the gradients over the positions instead of averaging them.",
        _mystery_map(_summed_alpha),
        "a sum instead of a mean makes every map Z times larger with the same shape, where "
        "Z is the number of positions. Compare the values, not only the picture.",
        "its maps have Grad-CAM's shape but are Z times larger, and Z follows the layer: 49 at "
        "conv3, 196 at conv2. A normalised heatmap hides the mistake.",
    ),
    Candidate(
        "Nothing is wrong with it.",
        _mystery_map(),
        "a correct Grad-CAM agrees with gw.gradcam in every experiment: one image, a batch of "
        "different digits, a class that is not the top one, another layer, the values.",
        "it agreed with gw.gradcam in every experiment, values and all.",
    ),
)

#: How the choices of exercise 4 read, by letter.
MYSTERY_CHOICES: tuple[str, ...] = tuple(c.choice for c in MYSTERY_CANDIDATES)


def draw_mysteries(count: int = 2, rng: random.Random | None = None) -> list[Mystery]:
    """``count`` Grad-CAM functions, each with a different mistake of :data:`MYSTERY_CHOICES`.

    Each is called like ``gw.gradcam(model, inputs, target, layer)`` and returns float32
    ``(N, h, w)`` maps. Which mistakes they make is drawn when they are made (one
    candidate is a correct Grad-CAM), so the only way to tell is by experiment.

    Args:
        count: how many mysteries.
        rng: the generator that draws; by default an unseeded one.
    """
    labels = [f"mystery Grad-CAM {n + 1}" for n in range(count)]
    return draw_distinct(labels, MYSTERY_CANDIDATES, rng)


def check_diagnosis(mystery: Any, answer: Any) -> Feedback:
    """Exercise 4: which mistake ``mystery`` makes, a letter of :data:`MYSTERY_CHOICES`.

    Args:
        mystery: one of the functions :func:`draw_mysteries` returned.
        answer: the learner's letter.
    """
    return check_mystery(mystery, answer)


# ----------------------------------------------------------------------------- questions

QUIZ = Quiz(
    [
        Question(
            "1. At conv3 of lesson 01's network (7 x 7 maps), the dense weight w_5^7 is 0.98. "
            "What is the gradient dy^7/dA^5_ij at any cell (i, j)?",
            answer=0.02,
            tolerance=5e-4,
            explanation=(
                "dy^7/dA^5_ij = w_5^7 / Z = 0.98 / 49 = 0.02, the same at every cell: Step 5's "
                "chain rule through the average. So alpha_5^7 = 0.02 too."
            ),
        ),
        Question(
            "2. At layer conv2 of lesson 01's network (output 14 x 14 x 32), the gradient "
            "dy^7/dA^k of one channel k is 0.5 at 49 positions and 0 at all the others. What "
            "is alpha_k^7?",
            answer=0.125,
            tolerance=1e-6,
            explanation=(
                "alpha_k = (1/Z) sum_ij dy/dA^k_ij with Z = 14 * 14 = 196 positions: "
                "0.5 * 49 / 196 = 0.125. The average spreads a gradient that lives on a quarter "
                "of the map over all of it: what HiResCAM keeps and Grad-CAM loses."
            ),
        ),
        Question(
            "3. Another network ends conv3 -> GAP -> Dense(32, ReLU) -> Dense(10). At conv3, "
            "are Grad-CAM and HiResCAM the same map?",
            answer=0,
            choices=(
                "Yes: GAP follows conv3, so dy/dA^k_ij = (1/Z) dy/dF^k is the same at every "
                "position of a channel, whatever comes after the pooling.",
                "No: the hidden dense layer makes the gradient vary from position to position.",
                "Only when no unit of the hidden layer is switched off by its ReLU.",
            ),
            explanation=(
                "the chain rule goes through F^k = (1/Z) sum_ij A^k_ij, whose derivative is 1/Z "
                "at every position. The layers after GAP only change dy/dF^k, one number per "
                "channel, so averaging the gradient loses nothing."
            ),
        ),
        Question(
            "4. A network ends conv3 -> global MAX pooling -> dense. What is dy^c/dA^k_ij?",
            answer=1,
            choices=(
                "w_k^c / Z at every position, as with GAP.",
                "w_k^c at the position where channel k is largest, and 0 everywhere else.",
                "0 everywhere: max pooling has no gradient.",
            ),
            explanation=(
                "the maximum passes on the gradient to the cell that won it only. Grad-CAM "
                "averages that into alpha_k^c = w_k^c / Z; HiResCAM keeps w_k^c A^k at that cell "
                "alone. Here the two maps differ."
            ),
        ),
        Question(
            "5. Two classes share all the probability: p_c = p_r = 0.5. The probability's "
            "gradient is then dp_c/dA = k (dy^c/dA - dy^r/dA). What is k?",
            answer=0.25,
            tolerance=1e-6,
            explanation=(
                "dp_c/dA = p_c (dy^c/dA - p_c dy^c/dA - p_r dy^r/dA) = 0.5 (0.5 dy^c/dA - 0.5 "
                "dy^r/dA). The map of the probability is then exactly the contrastive map of "
                "y^c - y^r, scaled: 'why c rather than r'."
            ),
        ),
        Question(
            "6. A batch holds 4 images. For one channel, the gradient of image 1 averages 0.8 "
            "over the positions, and the gradients of the other three images are 0. Code that "
            "averages the gradients over axes (0, 1, 2) gives image 1 which weight for that "
            "channel?",
            answer=0.2,
            tolerance=1e-6,
            explanation=(
                "the mean over the batch axis as well: (0.8 + 0 + 0 + 0) / 4 = 0.2, and the "
                "other three images get 0.2 too. With one image (N = 1) the two averages agree, "
                "which is why the mistake passes any test on a single image."
            ),
        ),
        Question(
            "7. At conv2 every alpha_k^7 of some digit is negative. conv2 ends in a ReLU. What "
            "does the Grad-CAM map of class 7 at conv2 look like?",
            answer=0,
            choices=(
                "Zero everywhere: every term alpha_k A^k is zero or negative, and the final "
                "ReLU removes them all.",
                "The usual map with its sign flipped.",
                "It cannot be told without running the network.",
            ),
            explanation=(
                "A^k >= 0 after the ReLU and alpha_k < 0, so the weighted sum is <= 0 in every "
                "cell. An all-zero map like this is what section 7.3 must draw without NaN."
            ),
        ),
    ]
)
