"""Self-checks for lesson 04 (Grad-CAM on ImageNet photos).

Each check computes the right value itself and compares; a wrong answer gets a hint
about the likely slip, never the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import metrics
from ..parts import GradcamParts
from . import TODO, Feedback, Question, Quiz, as_map, feedback, is_todo, maps_close

__all__ = [
    "DIAGNOSIS",
    "QUIZ",
    "TODO",
    "check_contrastive_map",
    "check_diagnosis",
    "check_earliest_layer",
    "colleague_gradcam",
    "half_box",
]

Box = tuple[int, int, int, int]


def half_box(image_size: int, half: str) -> Box:
    """The ``"left"`` or ``"right"`` half of a square image, as ``(top, left, bottom, right)``."""
    if half not in ("left", "right"):
        raise ValueError(f"half must be 'left' or 'right', got {half!r}.")
    middle = image_size // 2
    return (0, 0, image_size, middle) if half == "left" else (0, middle, image_size, image_size)


def _input_size(inputs: Any) -> int:
    shape = tuple(int(s) for s in np.shape(inputs))
    # a square image: the spatial side is the size that occurs twice
    sides = [s for s in shape[1:] if shape[1:].count(s) >= 2]
    if not sides:
        raise ValueError(f"expected a batch of one square image, got shape {shape}.")
    return sides[0]


# ----------------------------------------------------------------- exercise 1: contrast


def _fake_parts(seed: int) -> tuple[GradcamParts, GradcamParts]:
    """Two classes' parts of one made-up layer, where every classic slip gives another map.

    Two images, 6 channels, 5 x 5 cells. The gradients vary from cell to cell (so that
    averaging them differs from using them cell by cell) and the two classes' weighted
    sums are negative in different places (so that subtracting the finished maps differs
    from subtracting the weights).
    """
    rng = np.random.default_rng(seed)
    activations = rng.gamma(1.5, 1.0, size=(2, 6, 5, 5)).astype(np.float32)
    # per-channel means of both signs, plus cell-to-cell variation
    gradients_a = rng.normal(0.0, 0.6, size=(2, 6, 1, 1)) + rng.normal(0, 1, (2, 6, 5, 5))
    gradients_b = rng.normal(0.0, 0.6, size=(2, 6, 1, 1)) + rng.normal(0, 1, (2, 6, 5, 5))
    gradients_a, gradients_b = gradients_a.astype(np.float32), gradients_b.astype(np.float32)

    def parts(target: int, gradients: np.ndarray) -> GradcamParts:
        return GradcamParts(
            layer="fake",
            targets=np.array([target, target]),
            scores=np.zeros(2, dtype=np.float32),
            activations=activations,
            gradients=gradients,
        )

    return parts(1, gradients_a), parts(2, gradients_b)


def _contrast(a: GradcamParts, b: GradcamParts) -> np.ndarray:
    weights = a.weights - b.weights
    return np.maximum(np.einsum("nk,nkhw->nhw", weights, a.activations), 0.0)


def check_contrastive_map(function: Any) -> Feedback:
    """Exercise 1: a function that turns two classes' parts into the contrastive map.

    The learner writes ``contrastive_map(parts_a, parts_b)`` for the score
    ``y^a - y^b``; the check calls it on made-up parts (not the lesson's photo), so a
    value printed in the notebook cannot pass and ``gw.gradcam`` cannot be called.

    Args:
        function: the learner's ``contrastive_map``.
    """
    if is_todo(function):
        return feedback(None, "define contrastive_map, then pass it (without calling it).")
    if not callable(function):
        return feedback(
            False,
            "pass the function itself, contrastive_map, not its result "
            f"({type(function).__name__}).",
        )
    for seed in (0, 1, 2):
        a, b = _fake_parts(seed)
        try:
            answer = function(a, b)
        except Exception as error:  # the learner's code: report, never crash the check
            return feedback(
                False,
                f"your function raised {type(error).__name__}: {error}. It receives two "
                "GradcamParts (use .weights and .activations).",
            )
        if is_todo(answer):
            return feedback(None, "your function still returns TODO: write its body.")
        mine = as_map(answer)
        if mine is None:
            return feedback(False, f"expected an array of maps, got {type(answer).__name__}.")
        expected = _contrast(a, b)
        if mine.shape != expected.shape:
            if mine.shape == expected.shape[1:]:
                return feedback(
                    False,
                    "your function returns one map, but the parts hold a batch of images: "
                    "keep the batch axis, one map per image.",
                )
            if mine.shape == a.activations.shape:
                return feedback(False, "you kept one map per channel: sum over the channels.")
            return feedback(
                False,
                f"expected one map per image, shape {expected.shape}, got {mine.shape}.",
            )
        if maps_close(mine, expected):
            continue
        weighted_a, weighted_b = a.weighted_sum, b.weighted_sum
        if maps_close(mine, _contrast(b, a)):
            return feedback(False, "this is the contrast the other way round: y^b - y^a.")
        difference = a.heatmap - b.heatmap
        if maps_close(mine, difference) or maps_close(mine, np.maximum(difference, 0.0)):
            return feedback(
                False,
                "you subtracted the two finished maps. Each map has already been through "
                "its ReLU, which threw away negative evidence; subtract before the ReLU.",
            )
        if maps_close(mine, weighted_a - weighted_b):
            return feedback(False, "the right sum, but the ReLU is missing.")
        hires = np.maximum(((a.gradients - b.gradients) * a.activations).sum(axis=1), 0.0)
        if maps_close(mine, hires):
            return feedback(
                False,
                "you weighted each cell by its own gradient (that is HiResCAM, lesson 06). "
                "Grad-CAM averages each channel's gradient over the cells first.",
            )
        if maps_close(mine, a.heatmap):
            return feedback(False, "this is the map of class a alone; where is class b?")
        if expected.max() > 0 and maps_close(mine * float(expected.max()), expected):
            return feedback(False, "the right map, normalised; return it unnormalised.")
        return feedback(
            False,
            "not the contrastive map. Which score's gradient does it need, and what does "
            "the gradient of a difference equal?",
        )
    return feedback(
        True,
        "the gradient of y^a - y^b is the difference of the gradients, so the weights are "
        "alpha^a - alpha^b, and the ReLU comes last. Now use it on the cat photo.",
    )


# ------------------------------------------------------- exercise 2: the earliest layer


def _region(region: str | Sequence[int], size: int) -> Box:
    if isinstance(region, str):
        return half_box(size, region)
    box = tuple(int(v) for v in region)
    if len(box) != 4:
        raise ValueError(f"a box is (top, left, bottom, right), got {region!r}.")
    return box


def check_earliest_layer(
    answer: Any,
    model: Any,
    inputs: Any,
    target: int,
    layers: Sequence[str],
    *,
    region: str | Sequence[int] = "left",
    threshold: float = 0.8,
) -> Feedback:
    """Exercise 2: the earliest layer whose map puts at least ``threshold`` in a region.

    Args:
        answer: a layer name.
        model: the classifier.
        inputs: the preprocessed picture, a batch of one square image.
        target: the class whose maps are compared.
        layers: the layers to consider, earliest first.
        region: ``"left"``, ``"right"`` or a box ``(top, left, bottom, right)`` in pixels.
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
    box = _region(region, size)
    maps = gradcam(model, inputs, target=int(target), layer=layers)
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
            f"at {answer!r} the map puts less than {percent} of its total in the region. "
            "Compute the share for every layer.",
        )
    return feedback(
        False,
        f"{answer!r} reaches {percent}, but an earlier layer does too. Go through the layers "
        "from the first.",
    )


# --------------------------------------------------------------- exercise 3: diagnose


def colleague_gradcam(
    model: Any, inputs: Any, target: int | Sequence[int] | None = None, layer: str | None = None
) -> np.ndarray:
    """A colleague's Grad-CAM, to be checked against ``gw.gradcam``.

    Same arguments and output as ``gw.gradcam`` for one layer: ``(N, h, w)`` maps.
    """
    from ..parts import gradcam_parts

    parts = gradcam_parts(model, inputs, target=target, layer=layer)
    weights = parts.gradients.mean(axis=(0, 2, 3))
    maps = np.einsum("k,nkhw->nhw", weights, parts.activations)
    return np.maximum(maps, 0.0).astype(np.float32)


DIAGNOSIS = Question(
    prompt="What is wrong with `colleague_gradcam`?",
    choices=(
        "It differentiates the softmax probability instead of the score before the softmax.",
        "It averages the gradients over the images of the batch, not only over the positions.",
        "It leaves out the ReLU.",
        "It computes the map at another layer than the one asked for.",
        "It takes the gradient with respect to the layer's weights, not its activations.",
    ),
    answer=1,
    explanation=(
        "for a batch of one, averaging over the batch changes nothing, so it agrees with "
        "gw.gradcam; in a batch, every image gets the same channel weights, a mix of all "
        "the images' gradients. The lesson page in the source material has this slip "
        "(reduce_mean over axis 0 as well)."
    ),
)

_DIAGNOSIS_HINTS = {
    0: "if it used the softmax, its map of one image alone would already differ from "
    "gw.gradcam's. Does it?",
    2: "look at the smallest value of its maps.",
    3: "compare the maps' shapes with the layer's resolution.",
    4: "a weight gradient has the shape of the kernel, not of a feature map; its output has "
    "the right shape. Look for a case where it agrees with gw.gradcam and one where it does not.",
}


def check_diagnosis(answer: Any) -> Feedback:
    """Exercise 3: which classic slip is hidden in :func:`colleague_gradcam`.

    Args:
        answer: a choice letter, ``"a"`` to ``"e"``.
    """
    result = DIAGNOSIS.check(answer)
    if result.passed is False and isinstance(answer, str):
        letter = answer.strip().strip("()").lower()
        index = "abcde".find(letter) if len(letter) == 1 else -1
        if index in _DIAGNOSIS_HINTS:
            return feedback(False, f"({letter}) is not it: {_DIAGNOSIS_HINTS[index]}")
    return result


# ------------------------------------------------------------------ concept questions

QUIZ = Quiz(
    [
        Question(
            prompt=(
                "1. The maps of Egyptian cat, tiger cat and tabby on the cat photo nearly "
                "coincide. Why?"
            ),
            choices=(
                "The differences between the classes are finer than a 7 x 7 map can show.",
                "The three classes give large weights to the same channels, the ones active "
                "on this photo, so the weighted sums look alike.",
                "Grad-CAM always returns the map of the top class.",
                "The softmax makes the three probabilities equal.",
            ),
            answer=1,
            explanation=(
                "the maps are weighted sums of the same feature maps; most of each sum comes "
                "from channels the three classes share. The contrastive map shows where the "
                "classes do differ, at the same 7 x 7 resolution."
            ),
        ),
        Question(
            prompt=(
                "2. EfficientNet-Lite0 turns a 224 x 224 input into a 7 x 7 map at `head`. "
                "How many input pixels wide is one cell of that map (the distance between "
                "neighbouring cells)?"
            ),
            answer=32,
            tolerance=0,
            explanation="224 / 7 = 32: five halvings, 2^5 = 32.",
        ),
        Question(
            prompt=("3. How do you get the map of 'tabby rather than Egyptian cat'?"),
            choices=(
                "Subtract the Egyptian-cat map from the tabby map.",
                "Divide the tabby map by the Egyptian-cat map.",
                "Differentiate y_tabby - y_Egyptian: the channel weights become "
                "alpha_tabby - alpha_Egyptian; the ReLU comes after the weighted sum.",
                "Use the softmax probability of tabby, which already compares it with the "
                "other classes.",
            ),
            answer=2,
            explanation=(
                "both finished maps have been through a ReLU, which removed the negative "
                "evidence a difference needs. The gradient of a difference is the difference "
                "of the gradients."
            ),
        ),
        Question(
            prompt=(
                "4. After the preprocessing (x - 127) / 128, what value does a black pixel "
                "(x = 0) have? (two decimals)"
            ),
            answer=-127 / 128,
            tolerance=0.01,
            explanation=(
                "about -0.99: for the network black is not 'nothing' but a strong input, and "
                "early layers respond to it like to any other colour."
            ),
        ),
        Question(
            prompt=(
                "5. Why did the Grad-CAM map of `blocks.4` light up the black frame of the "
                "two-object picture?"
            ),
            choices=(
                "Each channel weight is an average over the whole picture, and the frame's "
                "own activations, multiplied by those averaged weights, add up to a positive "
                "number.",
                "The cat is hidden in the frame.",
                "The frame is where the gradient is largest.",
                "Early layers cannot be used with Grad-CAM at all.",
            ),
            answer=0,
            explanation=(
                "the frame has its own (constant) activations; averaged weights earned "
                "elsewhere make them count. HiResCAM, which uses each cell's own gradient, "
                "puts much less there."
            ),
        ),
        Question(
            prompt=(
                "6. The rocket photo is called 'drilling platform'. Which experiment supports "
                "the reading that the lattice towers made the network say so?"
            ),
            choices=(
                "The map of 'drilling platform' is red somewhere.",
                "The probability of 'drilling platform' is 42 %.",
                "The Keras and PyTorch maps agree.",
                "Painting the outer towers over with sky makes 'drilling platform' drop and "
                "'missile' become the top class.",
            ),
            answer=3,
            explanation=(
                "a map suggests where the evidence is; changing the picture there and "
                "watching the score tests it."
            ),
        ),
        Question(
            prompt=("7. The Keras and PyTorch maps agree to about 1e-6. What does that show?"),
            choices=(
                "That the maps are faithful to what the network does.",
                "That Grad-CAM has no limits.",
                "That both frameworks run the same network with the same weights and the "
                "engine computes the same formula in both.",
                "That the network is right about the photo.",
            ),
            answer=2,
            explanation=(
                "agreement between two implementations checks the computation, not the "
                "method: lesson 06 tests whether a map is faithful."
            ),
        ),
    ]
)
