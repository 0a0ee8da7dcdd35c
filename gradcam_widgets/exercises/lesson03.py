"""Self-checks for lesson 03 (Grad-CAM on the lecture's MNIST CNN).

Each check recomputes the answer with the package and says what looks wrong without
printing it.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import TODO, Feedback, Question, Quiz, as_map, feedback, is_todo, maps_close
from ._slips import candidates
from .mysteries import Candidate, Mystery, check_mystery, draw

__all__ = [
    "COLLEAGUE_CANDIDATES",
    "COLLEAGUE_CHOICES",
    "COLLEAGUE_SLIPS",
    "QUIZ",
    "TODO",
    "check_diagnosis",
    "check_layer_map",
    "check_misclassified",
    "check_receptive_field_sizes",
    "draw_colleague",
]


def check_layer_map(answer: Any, model: Any, inputs: Any, target: int, layer: str) -> Feedback:
    """Exercise 1: the Grad-CAM map of one image for a given class at a given layer.

    Args:
        answer: the learner's map, ``(h, w)`` or ``(1, h, w)``, as ``gw.gradcam`` returns.
        model: the lesson's network (Keras or PyTorch).
        inputs: the exercise's one image, in the model's layout.
        target: the class the exercise asks about.
        layer: the layer the exercise asks about.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the map gw.gradcam gives, then run the cell.")
    mine = as_map(answer)
    if mine is None:
        return feedback(False, f"expected a numpy array, got {type(answer).__name__}.")
    from .. import engine

    layers = engine.candidate_layers(model, inputs)
    every_layer = {
        name: heat[0].astype(np.float64)
        for name, heat in engine.gradcam(model, inputs, target=target, layer=layers).items()
    }
    expected = every_layer[layer]
    if maps_close(mine, expected):
        return feedback(
            True,
            "that is the map. Compare it with the map of the predicted class: where do they "
            "differ?",
        )
    for name, heat in every_layer.items():
        if name != layer and heat.shape == mine.shape and maps_close(mine, heat):
            return feedback(
                False,
                f"this is the map of layer {name!r}, not of the layer the exercise asks about.",
            )
    if mine.shape != expected.shape:
        same_size = [name for name, heat in every_layer.items() if heat.shape == mine.shape]
        if same_size:
            return feedback(
                False,
                f"your map is {mine.shape[0]}x{mine.shape[1]}, the resolution of layer(s) "
                f"{', '.join(map(repr, same_size))}. Check the layer you asked for.",
            )
        return feedback(
            False,
            f"expected a {expected.shape[0]}x{expected.shape[1]} map, got shape {mine.shape}.",
        )
    if (
        expected.max() > 0
        and np.isclose(mine.max(), 1.0)
        and maps_close(mine * float(expected.max()), expected)
    ):
        return feedback(
            False,
            "the right map, but normalised to a maximum of 1. Keep gw.gradcam's values.",
        )
    per_class = engine.gradcam_multi(model, inputs, list(range(_class_count(model, inputs))), layer)
    for other, maps in enumerate(per_class):
        if other != target and maps_close(mine, maps[layer][0].astype(np.float64)):
            return feedback(
                False,
                f"this is the map of class {other}. Which class does the exercise ask about? "
                "Pass it as target=.",
            )
    return feedback(
        False,
        "not the expected map. Call gw.gradcam with the model, the image, the class (target=) "
        "and the layer (layer=), and take the first map of the batch.",
    )


def _class_count(model: Any, inputs: Any) -> int:
    from .. import engine

    return int(engine.predict(model, inputs).shape[1])


def check_misclassified(answer: Any, model: Any, inputs: Any, labels: Any) -> Feedback:
    """Exercise 2: the index of a test image the network gets wrong.

    Args:
        answer: the learner's index into the test set.
        model: the lesson's network (Keras or PyTorch).
        inputs: the test images in the model's layout (numpy or a framework tensor).
        labels: their true digits.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the index of a test image (a whole number).")
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (int, np.integer)):
        return feedback(False, f"expected a whole number (an index), got {answer!r}.")
    labels = np.asarray(labels)
    index = int(answer)
    if not 0 <= index < len(labels):
        return feedback(False, f"the test set has indices 0 to {len(labels) - 1}.")
    from .. import engine

    predicted = int(engine.predict(model, inputs[index : index + 1])[0].argmax())
    truth = int(labels[index])
    if predicted != truth:
        return feedback(
            True,
            f"the network calls this {truth} a {predicted}. Now compare the maps of class "
            f"{predicted} and class {truth} for it.",
        )
    return feedback(
        False,
        f"the network gets image {index} right (label {truth}, prediction {predicted}). Look "
        "for an index where the prediction and the label differ.",
    )


# ------------------------------------------------- exercise: receptive fields by hand

#: Chains the check runs the learner's function on: (kernel, stride) per layer. None of
#: them is the lesson's network, so a table printed in the notebook cannot pass.
_HIDDEN_STACKS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((5, 1), (2, 2), (5, 1), (2, 2)),
    ((3, 2), (3, 2), (3, 2), (3, 1)),
    ((7, 2), (3, 2), (3, 1), (3, 1), (3, 2), (1, 1)),
    ((3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1)),
)


def _sizes(stack: Sequence[tuple[int, int]], *, jumps: bool = True, start: int = 1) -> list[int]:
    size, jump, sizes = start, 1, []
    for kernel, stride in stack:
        size += (kernel - 1) * (jump if jumps else 1)
        jump *= stride
        sizes.append(size)
    return sizes


def _stride_first(stack: Sequence[tuple[int, int]]) -> list[int]:
    # the slip of multiplying by the layer's own stride before growing the field
    size, jump, sizes = 1, 1, []
    for kernel, stride in stack:
        jump *= stride
        size += (kernel - 1) * jump
        sizes.append(size)
    return sizes


def check_receptive_field_sizes(function: Any) -> Feedback:
    """Exercise: a function giving the receptive field after each layer of a chain.

    The learner writes ``receptive_field_sizes(stack)``, ``stack`` a list of ``(kernel,
    stride)`` pairs, returning one size per layer. The check runs it on chains that are
    not the lesson's network and refuses a function that calls the package's own.

    Args:
        function: the learner's ``receptive_field_sizes``.
    """
    if is_todo(function):
        return feedback(None, "define receptive_field_sizes, then pass it (without calling it).")
    if not callable(function):
        return feedback(
            False,
            "pass the function itself, receptive_field_sizes, not its result "
            f"({type(function).__name__}).",
        )
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = ""
    if "receptive_field" in source.replace("receptive_field_sizes", "") or "grow(" in source:
        return feedback(
            False,
            "your function calls the package's receptive-field code: write the rule yourself.",
        )
    for stack in _HIDDEN_STACKS:
        try:
            answer = function([tuple(step) for step in stack])
        except Exception as error:  # the learner's code: report, never crash the check
            return feedback(
                False,
                f"your function raised {type(error).__name__}: {error}. It receives a list of "
                "(kernel, stride) pairs.",
            )
        if is_todo(answer):
            return feedback(None, "your function still returns TODO: write its body.")
        try:
            sizes = [int(v) for v in np.ravel(np.asarray(answer))]
        except (TypeError, ValueError):
            return feedback(False, f"expected a list of whole numbers, got {answer!r:.60}.")
        expected = _sizes(stack)
        if sizes == expected:
            continue
        if len(sizes) != len(expected):
            return feedback(False, "return one size per layer of the chain, in order.")
        if sizes == _sizes(stack, jumps=False):
            return feedback(
                False,
                "your fields grow by k - 1 at every layer. After a stride-2 layer, one step on "
                "the next layer's grid is two input pixels: multiply by the jump.",
            )
        if sizes == _sizes(stack, start=0):
            return feedback(False, "off by one: before any layer, a cell is one pixel wide.")
        if sizes == _stride_first(stack):
            return feedback(
                False,
                "you update the jump before growing the field. A layer's own stride spaces the "
                "cells of its output; its kernel still steps over its input's grid.",
            )
        return feedback(
            False,
            "not the sizes the rule gives. Keep two numbers, the size and the jump, and "
            "update both at each layer.",
        )
    return feedback(
        True,
        "r grows by (k - 1) times the jump, and the jump multiplies by the stride. Compare "
        "with the table in section 3.",
    )


# ------------------------------------------------------------- exercise: diagnose


#: The slips the colleague's Grad-CAM may contain, in letter order (a, b, ...).
COLLEAGUE_SLIPS: tuple[str, ...] = ("batch", "no_relu", "softmax", "layer", "axis")

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
    """Exercise 2: which slip ``colleague`` makes, a letter of :data:`COLLEAGUE_CHOICES`.

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
                "1. Which change to the lecture's network would let `gw.cam` explain it "
                "(after retraining)?"
            ),
            choices=(
                "Remove the three max-pooling layers, so the positions are kept.",
                "Replace Flatten and the two dense layers by a global average pooling of "
                "conv3 followed by one dense layer to the 10 scores.",
                "Replace the softmax by a linear output.",
                "Train it longer, until the dense weights settle.",
            ),
            answer=1,
            explanation=(
                "CAM needs y^c = sum_k w_k^c mean(A^k): one weight per channel, which only a "
                "dense layer right after global average pooling gives. Without poolings, "
                "Flatten still gives every position its own weight; training changes the "
                "values, not the structure; the softmax comes after the scores either way."
            ),
        ),
        Question(
            prompt=(
                "2. Two 3 x 3 convolutions with stride 1, then a 2 x 2 max-pooling with "
                "stride 2, then one more 3 x 3 convolution. How many input pixels wide is "
                "the receptive field of one cell of the last layer?"
            ),
            answer=10,
            tolerance=0,
            explanation=(
                "3, then 3 + 2 = 5, then 5 + 1 = 6 with the jump now 2, then 6 + 2 x 2 = 10."
            ),
        ),
        Question(
            prompt=(
                "3. A map is the same positive value on the top half of a digit image and "
                "zero on the bottom half. 10 % of the image's pixels are ink, and 60 % of "
                "the ink lies in the top half. What is the map's ink share (a number "
                "between 0 and 1)?"
            ),
            answer=0.12,
            tolerance=0.005,
            explanation=(
                "ink share = (map on ink) / (map total) = (ink pixels in the top half) / "
                "(pixels in the top half) = 0.6 x 0.1 / 0.5 = 0.12."
            ),
        ),
        Question(
            prompt=(
                "4. A network starts with a 5 x 5 convolution (stride 1), then a 2 x 2 "
                "max-pooling (stride 2), then a 3 x 3 convolution. How many pixels away from "
                "the nearest ink can a cell of that last convolution be and still see ink "
                "(half its receptive field, rounded down)?"
            ),
            answer=5,
            tolerance=0,
            explanation=(
                "receptive fields 5, 6 (jump 2), 6 + 2 x 2 = 10; half of 10 is 5 pixels."
            ),
        ),
        Question(
            prompt=(
                "5. For some digit, the weighted sum for class 4 at conv3 before the ReLU is "
                "-0.2 in 48 of the 49 cells and +0.001 in one. The figures scale each map to "
                "its own maximum. What does the drawn class-4 map look like?"
            ),
            choices=(
                "Empty: nothing is drawn.",
                "One cell in full colour, the other 48 blank.",
                "All 49 cells faintly coloured.",
                "48 cells in full colour and one blank.",
            ),
            answer=1,
            explanation=(
                "the ReLU leaves one tiny positive cell, and scaling to the map's own maximum "
                "makes it full colour: read the values, not only the colours."
            ),
        ),
        Question(
            prompt=(
                "6. A 3 is classified right (y_3 well above y_8), yet the map of y_3 - y_8 "
                "(gw.gradcam(..., target=3, contrast=8) at conv3) is zero in every cell. "
                "Which reading fits?"
            ),
            choices=(
                "The network cannot tell a 3 from an 8.",
                "The class-3 and class-8 maps of this digit must both be empty too.",
                "The sum of the conv3 channels weighted by alpha^3 - alpha^8 is at most zero in "
                "every cell: to first order no cell speaks for 3 over 8, although the scores "
                "do; the averaged gradient misses what makes the difference.",
                "The digit is misclassified as an 8.",
            ),
            answer=2,
            explanation=(
                "the contrastive map is ReLU(sum_k (alpha^3_k - alpha^8_k) A^k), so it is "
                "zero wherever that sum is negative, whatever the two plain maps look like; "
                "the scores come from the full network, the map from a first-order summary of it."
            ),
        ),
        Question(
            prompt=(
                "7. Two networks trained from different random starts: network A's "
                "contrastive maps lean toward the bar for 80 % of the 7s, network B's for 10 %. "
                "Erasing the bar lowers y_7 - y_1 by about 9 in both, and erasing the same "
                "amount of stem ink by about 1 in both. What can you conclude?"
            ),
            choices=(
                "A relies on the bar more than B does.",
                "B does not use the bar; its high drop is an artefact of erasing.",
                "Both depend on the bar about equally; their maps summarise that dependence "
                "differently, so the map readings do not rank the networks.",
                "A will be more accurate than B on the test digits.",
            ),
            answer=2,
            explanation=(
                "the experiment measures the dependence and gives the same answer for both; "
                "the maps are first-order summaries that can differ between equally "
                "dependent networks."
            ),
        ),
    ]
)
