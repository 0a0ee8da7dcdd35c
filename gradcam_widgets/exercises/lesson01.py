"""Self-checks for lesson 01 (CAM with global average pooling).

Each check compares the learner's answer with a value it computes itself, and says what
looks wrong without printing the right answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import is_tensor, to_numpy
from . import TODO, Feedback, Question, Quiz, as_map, as_number, feedback, is_todo, maps_close

__all__ = [
    "COLLEAGUE_CHOICES",
    "QUIZ",
    "TODO",
    "check_class_score",
    "check_colleague",
    "check_contrast_map",
    "colleague_cam",
    "occlusion_outcome",
]


def _one_map(features: Any) -> np.ndarray:
    maps = np.asarray(features, dtype=np.float64)
    return maps[0] if maps.ndim == 4 else maps


def check_contrast_map(
    answer: Any, features: np.ndarray, weights: np.ndarray, first: int, second: int
) -> Feedback:
    """Exercise 1: the map of the score difference ``y^first - y^second``, by hand.

    The answer is ``M^first - M^second = sum_k (w_k^first - w_k^second) A^k``, whose
    average plus ``b_first - b_second`` is the difference of the two scores.

    Args:
        answer: the learner's map, 2-D, of the feature maps' height and width.
        features: the last convolution's output for one image, ``(h, w, K)`` (a batch
            axis of one is allowed), channels last as Keras gives it.
        weights: the dense layer's kernel, ``(K, classes)``.
        first: the class the map should speak for (red).
        second: the class it is compared with (blue).
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your (h, w) map, then run this cell again.")
    maps = _one_map(features)
    kernel = np.asarray(weights, dtype=np.float64)
    height, width, channels = maps.shape
    mine = as_map(answer)
    if mine is None:
        return feedback(False, f"expected a numpy array, got {type(answer).__name__}.")
    every_class = maps @ kernel  # (h, w, classes)
    expected = every_class[..., first] - every_class[..., second]
    if mine.shape != expected.shape:
        if mine.shape == every_class.shape:
            return feedback(
                False,
                f"your array holds a map for every class (shape {mine.shape}). Keep the two "
                "classes of the question and combine them into one map.",
            )
        if mine.shape == maps.shape:
            return feedback(
                False,
                f"your array still has one map per channel (shape {mine.shape}): add the "
                f"{channels} weighted channels up into one ({height}, {width}) map.",
            )
        return feedback(
            False, f"expected a map of shape ({height}, {width}), got shape {mine.shape}."
        )
    if not np.all(np.isfinite(mine)):
        return feedback(False, "your map contains NaN or infinite values.")
    if maps_close(mine, expected):
        return feedback(
            True,
            "red cells hold more evidence for the first class than for the second, blue cells "
            "the reverse; its average plus the difference of the biases is the score gap.",
        )
    if maps_close(mine, -expected):
        return feedback(
            False,
            "the right map with the wrong sign: the question asks for the first class minus "
            "the second.",
        )
    if maps_close(mine, every_class[..., first]) or maps_close(mine, every_class[..., second]):
        return feedback(
            False,
            "that is the CAM of one class alone. The exercise asks how the two classes differ "
            "at each position.",
        )
    if maps_close(mine, np.maximum(expected, 0.0)) or maps_close(
        mine, np.maximum(every_class[..., first], 0) - np.maximum(every_class[..., second], 0)
    ):
        return feedback(
            False,
            "no ReLU here: the negative cells are half of the answer (evidence for the "
            "second class).",
        )
    peak = float(np.abs(expected).max())
    if peak > 0 and float(np.abs(mine).max()) > 0:
        ratio = float(np.abs(mine).max()) / peak
        if not np.isclose(ratio, 1.0, rtol=1e-3) and (
            maps_close(mine / ratio, expected) or maps_close(-mine / ratio, expected)
        ):
            return feedback(
                False,
                "the right pattern scaled by a constant. Use the weights as they are, and do "
                "not normalise the map.",
            )
    return feedback(
        False,
        "not the map of the score difference. Each class's CAM is sum_k w_k^c A^k; what is "
        "left when you subtract one from the other?",
    )


def _pooled_maps(model: Any, inputs: Any, target: int) -> tuple[np.ndarray, np.ndarray]:
    """The class's CAM of one image and the model's scores, both from the package."""
    from .. import engine

    logits = engine.predict(model, inputs)[0].astype(np.float64)
    cam_map = engine.cam(model, inputs, target=target)[0].astype(np.float64)
    return cam_map, logits


def _blank_top_pixels(model: Any, inputs: Any, rows: int) -> Any:
    """``inputs`` with its top ``rows`` pixel rows set to 0 (black), in the model's layout."""
    array = to_numpy(inputs) if is_tensor(inputs) else inputs
    array = np.array(array, dtype=np.float32, copy=True)
    if _channels_last(model):
        array[:, :rows] = 0.0  # (N, H, W, C)
    else:
        array[..., :rows, :] = 0.0  # (N, C, H, W)
    return array


def _channels_last(model: Any) -> bool:
    from ..backends import backend_for

    return bool(backend_for(model).channels_last)


def check_class_score(
    answer: Any, model: Any, inputs: Any, target: int, off_rows: int = 3
) -> Feedback:
    """Exercise 2: the class score if the top rows of the pooled layer saw nothing.

    The question is ``y^c`` with the activations of the first ``off_rows`` rows of the
    layer that global average pooling averages set to 0: ``(1/Z) sum_{i >= off_rows, j}
    M^c_ij + b_c``. No call of the model gives this number, so an answer copied from
    ``gw.predict`` or from the model on a blanked image is refused with a hint.

    Args:
        answer: the learner's number.
        model: the GAP network (Keras or PyTorch).
        inputs: the one image of the exercise, in the model's layout.
        target: the class the exercise asks about.
        off_rows: how many rows, from the top, are switched off.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a number computed from your CAM.")
    if np.asarray(answer, dtype=object).size != 1:
        return feedback(False, f"expected a single number, got {type(answer).__name__}.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected a single number, got {answer!r}.")
    from .. import engine

    cam_map, logits = _pooled_maps(model, inputs, target)
    positions = cam_map.size
    score = float(logits[target])
    bias = score - float(cam_map.mean())
    kept = cam_map[off_rows:]
    expected = float(kept.sum()) / positions + bias

    def near(a: float, b: float) -> bool:
        return bool(np.isclose(a, b, rtol=1e-3, atol=1e-3))

    if near(value, expected):
        return feedback(
            True,
            "the map splits the score into one contribution per position, so switching "
            "positions off just removes their share. No call of the model can give this "
            "number: it changes the feature maps, not the image.",
        )
    if near(value, score):
        return feedback(
            False,
            "that is the score of the image as it is, the number the model returns. The "
            "question removes the top rows' contributions from it.",
        )
    stride = _input_height(model, inputs) // cam_map.shape[0]
    blanked = engine.predict(model, _blank_top_pixels(model, inputs, off_rows * stride))
    if near(value, float(blanked[0, target])):
        return feedback(
            False,
            "that is the model's score for the image with its top pixels blanked. Blanking "
            "pixels is not switching off positions of the feature map: each cell of the map "
            "sees a patch wider than its own rows, and the network reacts to the black bar "
            "too. Work from the CAM instead.",
        )
    if near(value, float(kept.mean()) + bias):
        return feedback(
            False,
            "global average pooling still divides by all the positions of the map, the "
            "switched-off ones included (they count as zeros).",
        )
    if near(value, float(kept.sum()) / positions):
        return feedback(False, "close: the dense layer adds one more term after the average.")
    if near(value, float(cam_map[:off_rows].sum()) / positions + bias) or near(
        value, float(cam_map[:off_rows].sum()) / positions
    ):
        return feedback(False, "you kept the rows that were switched off and removed the others.")
    if near(value, float(kept.sum()) + bias):
        return feedback(
            False, "you added up the positions, but global average pooling averages them."
        )
    if near(value, float(np.maximum(kept, 0.0).sum()) / positions + bias):
        return feedback(False, "negative positions count too: do not clip the map.")
    shifted = logits - logits.max()
    probabilities = np.exp(shifted) / np.exp(shifted).sum()
    if near(value, float(probabilities[target])):
        return feedback(
            False, "that is a probability, after the softmax; the question asks for a score."
        )
    return feedback(
        False,
        "not that score. Write y^c = (1/Z) sum_ij M^c_ij + b_c and set the contributions of "
        "the switched-off rows to zero.",
    )


def _input_height(model: Any, inputs: Any) -> int:
    shape = tuple(inputs.shape)
    return int(shape[1] if _channels_last(model) else shape[-2])


def colleague_cam(model: Any, inputs: Any, target: int) -> np.ndarray:
    """A colleague's CAM function, with one of the usual mistakes (exercise 4).

    Diagnose it by experiment, not by reading this source.

    Args:
        model: a GAP network, as for :func:`gradcam_widgets.cam`.
        inputs: a batch in the model's layout.
        target: the class.

    Returns:
        ``(N, h, w)`` maps, as the colleague computes them.
    """
    from .. import engine

    return np.maximum(engine.cam(model, inputs, target=target), 0.0)


#: The possible diagnoses of exercise 4, by letter.
COLLEAGUE_CHOICES: tuple[str, ...] = (
    "It uses the weights of another class.",
    "It leaves out the negative contributions.",
    "It divides the map by its maximum.",
    "Nothing: it is a correct CAM.",
)

_COLLEAGUE_HINTS = {
    0: "if it used another class's weights, its map would equal gw.cam(...) for some other "
    "target. Test that before choosing it.",
    2: "a map divided by its maximum has a maximum of exactly 1. Test that before choosing it.",
    3: "test the identity of section 4: is the map's average plus the bias the class score?",
}


def check_colleague(answer: Any) -> Feedback:
    """Exercise 4: which mistake ``colleague_cam`` makes (a letter of ``COLLEAGUE_CHOICES``).

    Args:
        answer: the learner's letter, ``"a"`` to ``"d"``.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with a letter, after testing the function.")
    letters = "abcd"
    letter = str(answer).strip().strip("()").lower()
    if letter not in letters or len(letter) != 1:
        return feedback(False, f"answer with one letter, {', '.join(letters)}.")
    index = letters.index(letter)
    if index == 1:
        return feedback(
            True,
            "its map never goes below zero, and its average plus the bias is larger than "
            "the score: the evidence against the class has been dropped. That is Grad-CAM's "
            "final ReLU, put into a CAM, where the identity needs every term.",
        )
    return feedback(False, f"({letter}) is not it: " + _COLLEAGUE_HINTS[index])


def occlusion_outcome(before: np.ndarray, after: np.ndarray, first: int, second: int) -> str:
    """Which answer of the occlusion exercise the scores show.

    Args:
        before: the scores of the image as written.
        after: the scores of the edited image.
        first: the class written (it should lose evidence).
        second: the look-alike class.

    Returns:
        ``"a"`` first falls and second rises, ``"b"`` both fall, ``"c"`` both rise,
        ``"d"`` first rises and second falls.
    """
    first_up = after[first] > before[first]
    second_up = after[second] > before[second]
    return {(False, True): "a", (False, False): "b", (True, True): "c", (True, False): "d"}[
        (bool(first_up), bool(second_up))
    ]


QUIZ = Quiz(
    [
        Question(
            "1. A network ends in conv -> global average pooling -> dense. Its last "
            "convolution outputs K = 64 maps of 7 x 7. How many weights w_k^c does the CAM "
            "of one class use?",
            answer=64,
            explanation=(
                "one weight per channel: the dense layer sees the 64 averages F^k, not the 49 "
                "positions, so a channel counts the same wherever it fires."
            ),
        ),
        Question(
            "2. Why is the CAM's average plus the bias exactly the class score?",
            answer=1,
            choices=(
                "Because the network was trained to make it so.",
                "Because averaging and the weighted sum over channels are both linear, so "
                "their order can be swapped.",
                "It is only approximately true, for confident predictions.",
            ),
            explanation=(
                "sum_k w_k (1/Z) sum_ij A^k_ij = (1/Z) sum_ij sum_k w_k A^k_ij: the same terms "
                "added in another order, for every image and every class, trained or not."
            ),
        ),
        Question(
            "3. A CAM cell is negative. What does that mean?",
            answer=2,
            choices=(
                "The network made an error at that position.",
                "Nothing: CAM values are only meaningful after a ReLU.",
                "What the network sees there lowers the class's score.",
            ),
            explanation=(
                "each cell is that position's contribution to the score (times Z). A negative "
                "contribution is evidence against the class, often for a rival class."
            ),
        ),
        Question(
            "4. Can you compute a CAM for a network whose head is Flatten -> Dense -> "
            "Dense, without changing the network?",
            answer=1,
            choices=(
                "Yes, with the first dense layer's weights.",
                "No: there is no single weight per channel, because each position of each "
                "channel has its own weights.",
                "Yes, but only at the first convolution.",
            ),
            explanation=(
                "CAM needs the score to be a weighted sum of per-channel averages. Flatten "
                "keeps positions apart; the head must be replaced by GAP + dense and retrained, "
                "which changes the model you explain."
            ),
        ),
        Question(
            "5. The map is 7 x 7 and the digit 28 x 28. How many input pixels wide is one "
            "cell of the map?",
            answer=4,
            explanation=(
                "28 / 7 = 4. The cell's receptive field is wider still, since the convolutions "
                "before it look at neighbouring pixels; the map cannot point at detail finer "
                "than a cell."
            ),
        ),
        Question(
            "6. Hiding the part of a digit where a map is hot, and watching the scores, is "
            "called...",
            answer=0,
            choices=(
                "an occlusion test: it checks a claim of the map with the model itself.",
                "fine-tuning.",
                "global average pooling.",
            ),
            explanation=(
                "a map is a hypothesis about where the evidence lies; editing the image there "
                "and seeing the scores move is one way to test it (lesson 06 has more)."
            ),
        ),
    ]
)
