"""Self-checks and concept questions for lesson 00 (start here): reading the Explorer.

Each check takes the learner's :class:`~gradcam_widgets.explorer.Explorer` and answer,
and says what is wrong without giving the answer away.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import TODO, Feedback, Question, Quiz, as_number, feedback, is_todo

__all__ = ["QUIZ", "TODO", "check_cell_size", "check_score_gap", "occlusion_outcome"]


def check_cell_size(explorer: Any, answer: Any, layer: str, input_side: int) -> Feedback:
    """Exercise 2: how many pixels of the network's input one cell of ``layer`` spans.

    Args:
        explorer: the lesson's Explorer.
        answer: the learner's number, pixels along one side of one cell.
        layer: the layer the exercise names.
        input_side: the side of the (square) network input, in pixels.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a number of pixels.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"give one number, not {answer!r}.")
    sides = {name: heat.shape[0] for name, heat in explorer.maps().items()}
    if layer not in sides:
        raise ValueError(f"{layer!r} is not on the Explorer's slider: {list(sides)}.")
    side = sides[layer]
    expected = input_side / side
    if np.isclose(value, expected, atol=0.05):
        return feedback(
            True,
            f"one cell of {layer!r} stands for a square of the input that wide: the map can "
            "say 'here', but nothing finer than that square.",
        )
    if np.isclose(value, side):
        return feedback(
            False,
            "that is how many cells the map has along a side, read from the caption. The "
            "question asks how many input pixels share one cell.",
        )
    if np.isclose(value, expected**2, rtol=1e-3):
        return feedback(False, "that counts the pixels of a cell's whole area; give one side.")
    for name, other in sides.items():
        if other != side and np.isclose(value, input_side / other, atol=0.05):
            return feedback(
                False,
                f"that is the cell of layer {name!r}. Move the slider to {layer!r} and read "
                "its map size in the caption.",
            )
    if value > expected:
        return feedback(
            False,
            "too many. Did you divide the photo's size instead of the network's input? The "
            f"network sees the photo resized to {input_side} x {input_side} pixels.",
        )
    return feedback(
        False,
        f"not quite. The network's input is {input_side} pixels wide; the caption gives how "
        "many cells the map has across that width.",
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
            "1. The Explorer shows a map for class *plastic bag* that is bright on the cat's "
            "face. What does that tell you?",
            answer=1,
            choices=(
                "The network believes the face is a plastic bag.",
                "Whatever little evidence there is for *plastic bag* lies on the face; the "
                "probability, not the map, says how much evidence there is.",
                "The map is broken: a wrong class should give an empty map.",
            ),
            explanation=(
                "each map is scaled to its own maximum before it is coloured, so a weak class "
                "can look as bright as the winner. The caption's score and probability carry "
                "the amount; the map carries the place."
            ),
        ),
        Question(
            "2. Which layer gives the coarsest map, and why?",
            answer=2,
            choices=(
                "`stem`, because it is the first layer.",
                "All layers give maps of the same size; only the colours change.",
                "`head`, because each stride-2 layer on the way has halved the grid.",
            ),
            explanation=(
                "the maps go from 112 x 112 cells at `stem` to 7 x 7 at `head`: each stride-2 "
                "step halves the grid, so late maps are coarse but see whole objects."
            ),
        ),
        Question(
            "3. You move the **alpha** slider from 0.2 to 0.9. What changes?",
            answer=0,
            choices=(
                "Only the drawing: how much the heatmap covers the photo.",
                "The heatmap's values, because alpha weighs the channels.",
                "The network's prediction.",
            ),
            explanation=(
                "alpha blends two pictures; the map and the scores are computed before it, and "
                "the Explorer does not call the network again."
            ),
        ),
        Question(
            "4. The caption shows a *score* and a *probability*. Which statement is true?",
            answer=1,
            choices=(
                "The scores of all classes add up to 1.",
                "The softmax turns the scores into probabilities that add up to 1; a higher "
                "score always means a higher probability.",
                "The probability is the score divided by 100.",
            ),
            explanation=(
                "p_c = e^{y_c} / sum_j e^{y_j}: positive, adding up to 1, and in the same order "
                "as the scores. Exercise 3 uses that order."
            ),
        ),
        Question(
            "5. When you switch the method to **CAM**, the layer slider jumps to `head`. Why?",
            answer=0,
            choices=(
                "CAM reads its channel weights from the dense layer after global average "
                "pooling, and only the pooled layer has such weights.",
                "CAM is too slow for the early layers.",
                "CAM only works on photos of cats.",
            ),
            explanation=(
                "lesson 01 derives it: the dense layer has one weight per channel of the layer "
                "that global average pooling averages, and no weights for any other layer."
            ),
        ),
        Question(
            "6. One cell of the 7 x 7 `head` map covers a square of the 224 x 224 network "
            "input. How many pixels wide is that square?",
            answer=32,
            tolerance=0.01,
            explanation=(
                "224 / 7 = 32. A map at `head` cannot point at anything smaller than a 32-pixel "
                "square of the input."
            ),
        ),
    ]
)
