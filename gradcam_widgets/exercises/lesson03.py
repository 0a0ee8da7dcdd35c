"""Self-checks for lesson 03 (Grad-CAM on the lecture's MNIST CNN).

Each check recomputes the answer with the package and says what looks wrong without
printing it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import TODO, Feedback, Question, Quiz, as_map, feedback, is_todo, maps_close

__all__ = [
    "DIAGNOSIS",
    "QUIZ",
    "TODO",
    "check_diagnosis",
    "check_layer_map",
    "check_misclassified",
    "check_receptive_field_sizes",
    "colleague_gradcam",
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


def colleague_gradcam(
    model: Any, inputs: Any, target: int | Sequence[int] | None = None, layer: str | None = None
) -> np.ndarray:
    """A colleague's Grad-CAM, to be checked against ``gw.gradcam``.

    Same arguments and output as ``gw.gradcam`` for one layer: ``(N, h, w)`` maps.
    """
    from ..engine import explain

    probe = explain(model, inputs, [None], layer)
    logits = probe.logits
    count = logits.shape[1]
    found = explain(model, inputs, [target, *range(count)], layer)
    (name,) = found.layers
    classes = found.targets[0]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = shifted / shifted.sum(axis=1, keepdims=True)
    per_class = np.stack([g[name] for g in found.gradients[1:]], axis=1)  # (N, C, K, h, w)
    rows = np.arange(len(classes))
    mixed = np.einsum("nc,nckhw->nkhw", p, per_class)
    own = per_class[rows, classes]
    gradients = p[rows, classes][:, None, None, None] * (own - mixed)
    weights = gradients.mean(axis=(2, 3))
    maps = np.einsum("nk,nkhw->nhw", weights, found.activations[name])
    return np.maximum(maps, 0.0).astype(np.float32)


DIAGNOSIS = Question(
    prompt="What is wrong with `lesson03.colleague_gradcam`?",
    choices=(
        "It averages the gradients over the images of the batch, not only over the positions.",
        "It leaves out the ReLU.",
        "It differentiates the softmax probability instead of the score before the softmax.",
        "It computes the map at another layer than the one asked for.",
    ),
    answer=2,
    explanation=(
        "the gradient of a probability is p_c (dy_c/dA - sum_j p_j dy_j/dA): tiny when the "
        "network is sure (p_c near 1, the bracket near 0), and a contrast with the other "
        "likely classes otherwise. The textbook's Keras code has this slip."
    ),
)

_DIAGNOSIS_HINTS = {
    0: "run it on one image alone: does it agree with gw.gradcam there?",
    1: "look at the smallest value of its maps.",
    3: "compare the maps' shapes with the layer's resolution.",
}


def check_diagnosis(answer: Any) -> Feedback:
    """Exercise: which classic slip is hidden in :func:`colleague_gradcam`.

    Args:
        answer: a choice letter, ``"a"`` to ``"d"``.
    """
    result = DIAGNOSIS.check(answer)
    if result.passed is False and isinstance(answer, str):
        letter = answer.strip().strip("()").lower()
        index = "abcd".find(letter) if len(letter) == 1 else -1
        if index in _DIAGNOSIS_HINTS:
            return feedback(False, f"({letter}) is not it: {_DIAGNOSIS_HINTS[index]}")
    return result


# ------------------------------------------------------------------ concept questions

QUIZ = Quiz(
    [
        Question(
            prompt="1. Why does `gw.cam` refuse the lecture's network?",
            choices=(
                "CAM needs a GPU.",
                "After Flatten, every position of every channel has its own weights and a "
                "hidden dense layer follows: there is no single weight per channel.",
                "The network has max-pooling layers.",
                "The network was trained in Keras.",
            ),
            answer=1,
            explanation=(
                "CAM reads one weight per channel from a dense layer right after global "
                "average pooling; Grad-CAM replaces it by the averaged gradient, which exists "
                "for any differentiable head."
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
                "3. The ink covers 16 % of a digit's pixels. A map that is the same value "
                "everywhere: what is its ink share (a number between 0 and 1)?"
            ),
            answer=0.16,
            tolerance=0.005,
            explanation=(
                "ink share = (sum of the map on ink pixels) / (sum of the map): a uniform map "
                "gives the ink's area. Deep layers' maps come close to that baseline."
            ),
        ),
        Question(
            prompt="4. Why do the maps of deeper layers reach beyond the ink?",
            choices=(
                "Grad-CAM adds noise at deep layers.",
                "The upsampling to 28 x 28 is inaccurate.",
                "A cell of a deep layer sees a large square of the image (its receptive "
                "field), so a cell over empty paper can respond to strokes nearby.",
                "Deep layers are not trained.",
            ),
            answer=2,
            explanation=(
                "at conv3 a cell sees 18 x 18 of the 28 x 28 pixels. Nearly all of each map "
                "lies within half a receptive field of some ink."
            ),
        ),
        Question(
            prompt=("5. For a 7, the class-9 map at conv3 is all zero. What does that tell you?"),
            choices=(
                "The network did not look at the image.",
                "The weighted sum for class 9 is negative in every cell: at this layer the "
                "7's features count against 9 everywhere, and the ReLU removes them.",
                "Grad-CAM has a bug.",
                "Class 9 has no weights in the network.",
            ),
            answer=1,
            explanation=(
                "the ReLU keeps evidence for the class only; the counterfactual map "
                "(evidence='against') shows where the evidence against it lies."
            ),
        ),
        Question(
            prompt=(
                "6. Three random starts of the same architecture reach the same accuracy but "
                "disagree on whether the bar is what separates a 7 from a 1. What follows?"
            ),
            choices=(
                "Grad-CAM is broken.",
                "Only one of the networks is right.",
                "A map explains one trained network; a claim about 'what the network uses' "
                "must be checked on several trained models.",
                "The bar cannot be seen by a convolutional network.",
            ),
            answer=2,
            explanation=(
                "networks that classify equally well can rely on different evidence; the "
                "facts that held for every seed (maps leave the ink with depth) are the ones "
                "worth stating about the architecture."
            ),
        ),
    ]
)
