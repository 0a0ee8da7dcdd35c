"""Self-checks for lesson 04 (Grad-CAM on ImageNet photos).

Each check computes the right value itself and compares; a wrong answer gets a hint
about the likely slip, never the value.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import metrics
from ..parts import GradcamParts
from . import TODO, Feedback, Question, Quiz, as_map, feedback, is_todo, maps_close
from ._slips import candidates
from .mysteries import Candidate, Mystery, check_mystery, draw

__all__ = [
    "COLLEAGUE_CANDIDATES",
    "COLLEAGUE_CHOICES",
    "COLLEAGUE_SLIPS",
    "QUIZ",
    "TODO",
    "check_contrastive_map",
    "check_diagnosis",
    "check_earliest_layer",
    "draw_colleague",
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


def _fake_parts(seed: int, classes: int = 3) -> list[GradcamParts]:
    """Several classes' parts of one made-up layer, where every classic slip gives another map.

    Two images, 6 channels, 5 x 5 cells. The gradients vary from cell to cell (so that
    averaging them differs from using them cell by cell) and the classes' weighted sums
    are negative in different places (so that subtracting the finished maps differs from
    subtracting the weights).
    """
    rng = np.random.default_rng(seed)
    activations = rng.gamma(1.5, 1.0, size=(2, 6, 5, 5)).astype(np.float32)

    def parts(target: int) -> GradcamParts:
        # per-channel means of both signs, plus cell-to-cell variation
        gradients = rng.normal(0.0, 0.6, size=(2, 6, 1, 1)) + rng.normal(0, 1, (2, 6, 5, 5))
        return GradcamParts(
            layer="fake",
            targets=np.array([target, target]),
            scores=np.zeros(2, dtype=np.float32),
            activations=activations,
            gradients=gradients.astype(np.float32),
        )

    return [parts(target) for target in range(classes)]


def _contrast(a: GradcamParts, others: Sequence[GradcamParts]) -> np.ndarray:
    weights = a.weights - np.mean([b.weights for b in others], axis=0)
    return np.maximum(np.einsum("nk,nkhw->nhw", weights, a.activations), 0.0)


def _slips(a: GradcamParts, others: Sequence[GradcamParts]) -> list[tuple[np.ndarray, str]]:
    """The maps of the classic slips, each with the hint it earns."""
    finished = a.heatmap - np.mean([b.heatmap for b in others], axis=0)
    summed = np.maximum(
        np.einsum("nk,nkhw->nhw", a.weights - sum(b.weights for b in others), a.activations), 0
    )
    before_relu = a.weighted_sum - np.mean([b.weighted_sum for b in others], axis=0)
    hires = (a.gradients - np.mean([b.gradients for b in others], axis=0)) * a.activations
    reversed_ = np.maximum(-before_relu, 0.0)
    slips = [
        (reversed_, "this is the contrast the other way round: the others against class a."),
        (finished, "you subtracted finished maps. Each has already been through its ReLU, "
         "which threw away negative evidence; subtract before the ReLU."),
        (np.maximum(finished, 0.0), "you subtracted finished maps. Each has already been "
         "through its ReLU, which threw away negative evidence; subtract before the ReLU."),
        (before_relu, "the right sum, but the ReLU is missing."),
        (np.maximum(hires.sum(axis=1), 0.0), "you weighted each cell by its own gradient "
         "(that is HiResCAM, lesson 06). Grad-CAM averages each channel's gradient first."),
        (a.heatmap, "this is the map of class a alone; where are the other classes?"),
        (summed, "you subtracted the sum of the other classes' scores. The task asks for "
         "their average."),
    ]
    if len(others) > 1:
        slips.append((_contrast(a, others[:1]), "you used only the first of the other classes."))
    return slips


def check_contrastive_map(function: Any) -> Feedback:
    """Exercise 1: the map of one class against the average of several others.

    The learner writes ``contrast_with_average(parts_a, others)``, ``others`` a list of
    ``gradcam_parts`` of other classes for the same images and layer, returning the
    Grad-CAM maps of ``y^a - mean_j y^{b_j}``. The check calls it on made-up parts with
    one, two and three other classes (not the lesson's photo), so a value printed in the
    notebook cannot pass and ``gw.gradcam`` cannot be called.

    Args:
        function: the learner's ``contrast_with_average``.
    """
    if is_todo(function):
        return feedback(None, "define the function, then pass it (without calling it).")
    if not callable(function):
        return feedback(
            False,
            f"pass the function itself, not its result ({type(function).__name__}).",
        )
    for seed, count in ((0, 2), (1, 1), (2, 3)):
        a, *others = _fake_parts(seed, classes=count + 1)
        try:
            answer = function(a, others)
        except Exception as error:  # the learner's code: report, never crash the check
            return feedback(
                False,
                f"your function raised {type(error).__name__}: {error}. It receives the parts "
                "of class a and a list of the other classes' parts (use .weights and "
                ".activations).",
            )
        if is_todo(answer):
            return feedback(None, "your function still returns TODO: write its body.")
        mine = as_map(answer)
        if mine is None:
            return feedback(False, f"expected an array of maps, got {type(answer).__name__}.")
        expected = _contrast(a, others)
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
        for slip, hint in _slips(a, others):
            if maps_close(mine, slip):
                return feedback(False, hint)
        if expected.max() > 0 and maps_close(mine * float(expected.max()), expected):
            return feedback(False, "the right map, normalised; return it unnormalised.")
        return feedback(
            False,
            "not the contrastive map. Which score's gradient does it need, and what is the "
            "gradient of a difference, or of an average?",
        )
    return feedback(
        True,
        "gradients are linear: the weights of y^a - mean_j y^j are alpha^a - mean_j alpha^j, "
        "and the ReLU comes last. Now use it on the cat photo.",
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


#: The slips the colleague's Grad-CAM may contain, in letter order (a, b, ...).
COLLEAGUE_SLIPS: tuple[str, ...] = ("softmax", "axis", "batch", "layer", "no_relu")

#: The candidates of the diagnose exercise, one per slip.
COLLEAGUE_CANDIDATES: tuple[Candidate, ...] = candidates(COLLEAGUE_SLIPS)

#: How the choices of the diagnose exercise read, by letter.
COLLEAGUE_CHOICES: tuple[str, ...] = tuple(c.choice for c in COLLEAGUE_CANDIDATES)


def draw_colleague(rng: random.Random | None = None) -> Mystery:
    """A colleague's Grad-CAM with one slip drawn from :data:`COLLEAGUE_SLIPS`.

    Call it like ``gw.gradcam(model, inputs, target, layer)`` for one layer; it returns
    ``(N, h, w)`` maps. Which slip it makes is drawn when it is made, so the only way to
    tell is by experiment.

    Args:
        rng: the generator that draws; by default an unseeded one.
    """
    return draw("a colleague's Grad-CAM", COLLEAGUE_CANDIDATES, rng)


def check_diagnosis(colleague: Any, answer: Any) -> Feedback:
    """Exercise 3: which slip ``colleague`` makes, a letter of :data:`COLLEAGUE_CHOICES`.

    A wrong letter gets the experiment that would have refuted it, never the answer; after
    two wrong letters the colleague must be drawn again.

    Args:
        colleague: the function :func:`draw_colleague` returned.
        answer: the learner's letter.
    """
    return check_mystery(colleague, answer)


# ------------------------------------------------------------------ concept questions

QUIZ = Quiz(
    [
        Question(
            prompt=(
                "1. A layer has two channels: A^1 is 1 on the left half of the picture and 0 "
                "on the right, A^2 the other way round. Class a weighs them alpha^a = (2, 1), "
                "class b alpha^b = (1, 2). Where is the contrastive map of 'a rather than b' "
                "not zero?"
            ),
            choices=(
                "Everywhere: both plain maps are positive everywhere.",
                "On the left half only.",
                "On the right half only.",
                "Nowhere: the two classes use the same channels.",
            ),
            answer=1,
            explanation=(
                "the weights of y^a - y^b are (2 - 1, 1 - 2) = (1, -1), so the sum is "
                "A^1 - A^2: +1 on the left, -1 on the right, and the ReLU keeps the left."
            ),
        ),
        Question(
            prompt=(
                "2. VGG16's convolutions accept any picture size. Fed 448 x 448 pictures, its "
                "layer `block5_conv3` gives a 28 x 28 map. How many input pixels apart are two "
                "neighbouring cells?"
            ),
            answer=16,
            tolerance=0,
            explanation=(
                "448 / 28 = 16: four halvings (four max-poolings) before block5_conv3, whatever "
                "the picture size; EfficientNet-Lite0's head has five (224 / 7 = 32)."
            ),
        ),
        Question(
            prompt=(
                "3. The plain tabby and Egyptian-cat maps are both positive on the cat's face, "
                "but the map of 'tabby rather than Egyptian cat' is zero there. What does that "
                "say about the face?"
            ),
            choices=(
                "The face is evidence for neither class.",
                "There the weighted sum with alpha^tabby - alpha^Egyptian is negative: the "
                "face's features raise y_Egyptian more than y_tabby.",
                "The face lies outside the layer's receptive field.",
                "The ReLU of the two plain maps removed the face.",
            ),
            answer=1,
            explanation=(
                "a contrastive map is zero where the difference of the scores would fall: "
                "evidence shared by both classes, or favouring the other, cancels there."
            ),
        ),
        Question(
            prompt=(
                "4. With EfficientNet-Lite0's preprocessing, (x - 127) / 128, what value does "
                "a white pixel (x = 255) get? (two decimals)"
            ),
            answer=1.0,
            tolerance=0.01,
            explanation=(
                "(255 - 127) / 128 = 1.00; black becomes -0.99. Neither is 'nothing' for the "
                "network: a frame of either colour is a strong input."
            ),
        ),
        Question(
            prompt=(
                "5. At `blocks.4` Grad-CAM lights up the black frame and HiResCAM much less. "
                "Which experiment tells whether the cat score actually depends on the frame?"
            ),
            choices=(
                "Compare the two maps again at a larger alpha.",
                "Fill the frame with another colour and see how much the cat score changes.",
                "Compute the map at `head` instead.",
                "Average the Grad-CAM and HiResCAM maps.",
            ),
            answer=1,
            explanation=(
                "two methods disagreeing shows that one of them misleads, not which; changing "
                "the picture where a map points and watching the score tests it."
            ),
        ),
        Question(
            prompt=(
                "6. Painting over the rocket photo's outer towers turns 'drilling platform' "
                "into 'missile'. Which control makes 'the towers matter' a stronger reading?"
            ),
            choices=(
                "Paint over an equally large part of the photo without towers and check that "
                "the answer changes less.",
                "Paint the towers a second time in another colour.",
                "Run the same edit in Keras.",
                "Look at the map of 'drilling platform' at an earlier layer.",
            ),
            answer=0,
            explanation=(
                "any large edit can change a prediction; the control shows that it is the "
                "towers, not the amount of painting, that matters."
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
