"""Self-checks and concept questions for lesson 00 (start here): reading the Explorer.

Each check takes the learner's :class:`~gradcam_widgets.explorer.Explorer` and answer,
and says what is wrong without giving the answer away.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import TODO, Feedback, Question, Quiz, as_number, feedback, is_todo

__all__ = [
    "QUIZ",
    "TODO",
    "check_map_side",
    "check_score_gap",
    "occlusion_outcome",
]


def check_map_side(
    explorer: Any, answer: Any, layer: str, input_side: int, trained_side: int = 224
) -> Feedback:
    """Exercise 2: how many cells along a side ``layer``'s map has for a bigger input.

    Each layer of a convolutional network shrinks its input by a fixed factor, its
    stride (``trained_side`` over the map's side on the Explorer), whatever the input's
    size; so a ``input_side`` input gives ``input_side / stride`` cells. The notebook runs
    the network on such an input afterwards to confirm.

    Args:
        explorer: the lesson's Explorer (its maps are for a ``trained_side`` input).
        answer: the learner's number of cells along one side.
        layer: the layer the exercise names.
        input_side: the side of the new, square input.
        trained_side: the side of the Explorer's input.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a number of cells.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"give one number, not {answer!r}.")
    sides = {name: heat.shape[0] for name, heat in explorer.maps().items()}
    if layer not in sides:
        raise ValueError(f"{layer!r} is not on the Explorer's slider: {list(sides)}.")
    side = sides[layer]
    stride = trained_side / side
    expected = input_side / stride
    if np.isclose(value, expected, atol=0.05):
        return feedback(
            True,
            "a layer shrinks its input by the same factor (its stride) whatever the input's "
            "size, so a bigger photo gives a finer grid of cells at every layer.",
        )
    if np.isclose(value, side):
        return feedback(
            False,
            f"that is the map's side for the {trained_side}-pixel input. The grid is not "
            "fixed: what stays the same when the input grows?",
        )
    if np.isclose(value, stride):
        return feedback(
            False,
            "that is how many input pixels lie between two neighbouring cells. The question "
            "asks how many cells fit along the bigger input.",
        )
    if np.isclose(value, expected**2, rtol=1e-3):
        return feedback(False, "that counts every cell of the map; give the cells along one side.")
    for name, other in sides.items():
        if other != side and np.isclose(value, input_side * other / trained_side, atol=0.05):
            return feedback(
                False, f"that would be the map of layer {name!r}. Read {layer!r}'s map size."
            )
    return feedback(
        False,
        f"not quite. First find how many input pixels one step of {layer!r}'s grid spans on "
        f"the {trained_side}-pixel input; that step stays the same on a bigger input.",
    )


def check_score_gap(explorer: Any, answer: Any) -> Feedback:
    """Exercise 3: how far the runner-up's score must rise to tie with the winner.

    The softmax gives two classes the same probability exactly when their scores are
    equal, so the answer is the difference of the two scores ``y_1 - y_2``.

    Args:
        explorer: the lesson's Explorer.
        answer: the learner's number.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a number read from the captions.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"give one number, not {answer!r}.")
    first, second = (int(c) for c in np.argsort(-explorer.scores, kind="stable")[:2])
    y1, y2 = float(explorer.scores[first]), float(explorer.scores[second])
    p1, p2 = float(explorer.probabilities[first]), float(explorer.probabilities[second])
    expected = y1 - y2
    if abs(value - expected) <= 0.02:  # the caption rounds each score to 2 decimals
        return feedback(
            True,
            "the softmax ranks classes by score, and two classes are equally probable exactly "
            "when their scores are equal. A gap of a few units in score is a large factor in "
            "probability: the factor is e raised to the gap.",
        )
    if np.isclose(value, -expected, atol=0.02):
        return feedback(False, "right size, wrong sign: the runner-up's score has to go up.")
    for guess in (p1 - p2, 100 * (p1 - p2)):
        if np.isclose(value, guess, atol=0.02):
            return feedback(
                False,
                "that is a difference of probabilities. The question is about the scores, "
                "the raw numbers the caption shows before the probability.",
            )
    if np.isclose(value, p1 / p2, rtol=0.01) or np.isclose(value, y1 / y2, rtol=0.01):
        return feedback(
            False,
            "that is a ratio. The runner-up's score has to rise by some amount: a difference.",
        )
    return feedback(
        False,
        "not quite. Choose the top class and the runner-up in turn and read each score in the "
        "caption. When are two probabilities of a softmax equal?",
    )


def occlusion_outcome(before: float, after: float) -> str:
    """Which answer of the covering exercise the probabilities show (a, b or c).

    Args:
        before: the class's probability on the photo as it is.
        after: its probability with the patch covered.
    """
    if after > before:
        return "a"  # it rises
    return "b" if after > before / 2 else "c"  # drops by less, or by more, than half


QUIZ = Quiz(
    [
        Question(
            "1. Before scaling, the `head` map of *plastic bag* has its largest cell at 0.3 "
            "and the map of *Egyptian cat* at 12. A cell of the *plastic bag* map holds 0.15. "
            "Where does the Explorer draw that cell on the colour scale, from 0 (darkest) to 1 "
            "(brightest)? (one decimal)",
            answer=0.5,
            tolerance=0.01,
            explanation=(
                "each map is divided by its own maximum before it is coloured: 0.15 / 0.3 = "
                "0.5. A cell of 6 in the cat's map is drawn at the same colour, with forty times "
                "as much behind it. The map carries the place; the caption's score and "
                "probability carry the amount."
            ),
        ),
        Question(
            "2. Two classes have scores 6.0 and 4.0. How many times more probable than the "
            "second does the softmax make the first? (one decimal)",
            answer=float(np.exp(2.0)),
            tolerance=0.06,
            explanation=(
                "p_1 / p_2 = e^{y_1} / e^{y_2} = e^{6 - 4} = e^2, about 7.4: the sum in the "
                "softmax's denominator is the same for both and cancels. Only the gap counts."
            ),
        ),
        Question(
            "3. Suppose the network added the same number, 10, to the score of every class. "
            "What would happen to the probabilities?",
            answer=1,
            choices=(
                "They would all rise.",
                "Nothing: they would stay exactly the same.",
                "The top class would get closer to 100 %.",
            ),
            explanation=(
                "e^{y_c + 10} / sum_j e^{y_j + 10} = e^10 e^{y_c} / (e^10 sum_j e^{y_j}): the "
                "factor e^10 cancels. The softmax only sees differences between scores, which "
                "is why exercise 3 asks for a difference."
            ),
        ),
        Question(
            "4. The map of `blocks.4` has 28 x 28 cells, the map of `head` 7 x 7, both over "
            "the same 224 x 224 input. How many `blocks.4` cells lie inside one `head` cell?",
            answer=16,
            explanation=(
                "a `head` cell spans 224 / 7 = 32 pixels, a `blocks.4` cell 224 / 28 = 8: four "
                "cells along each side, 4 x 4 = 16 in all. What `head` says about one place, "
                "`blocks.4` can split into 16 finer places."
            ),
        ),
        Question(
            "5. At `head`, the Grad-CAM map of some class is zero in every cell, so nothing is "
            "drawn. Using what section 1 says Grad-CAM does, which is true?",
            answer=1,
            choices=(
                "The network is broken.",
                "The weighted sum of `head`'s feature maps is zero or negative in every cell, "
                "and Grad-CAM keeps only the positive part: no place speaks for that class.",
                "The class has a probability of exactly 0.",
            ),
            explanation=(
                "Grad-CAM adds up the weighted feature maps and keeps the positive part; where "
                "the sum is negative nothing is left. The class still has a score, and its "
                "probability e^{y_c} / sum_j e^{y_j} is above 0 in exact arithmetic."
            ),
        ),
        Question(
            "6. When you switch the method to **CAM**, the layer slider jumps to `head`. Why "
            "can CAM not be drawn at `blocks.15`?",
            answer=0,
            choices=(
                "CAM takes its channel weights from the dense layer after global average "
                "pooling, and that layer has a weight for each channel of `head` only.",
                "CAM is too slow for the early layers.",
                "`blocks.15` has no channels.",
            ),
            explanation=(
                "lesson 01 derives it: the dense layer has one weight per channel of the layer "
                "that global average pooling averages, and no weights for any other layer. "
                "Grad-CAM gets its weights from gradients, which every layer has."
            ),
        ),
    ]
)
