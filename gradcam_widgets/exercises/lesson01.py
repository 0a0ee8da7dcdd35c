"""Self-checks for lesson 01 (CAM with global average pooling).

Each check compares the learner's answer with a value it computes itself, and says what
looks wrong without printing the right answer.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

import numpy as np

from ..backends import is_tensor, to_numpy
from . import TODO, Feedback, Question, Quiz, as_number, feedback, is_todo
from .mysteries import Candidate, Mystery, check_mystery, draw

__all__ = [
    "COLLEAGUE_CANDIDATES",
    "COLLEAGUE_CHOICES",
    "QUIZ",
    "TODO",
    "check_class_score",
    "check_colleague",
    "check_seen_lead",
    "draw_colleague",
    "edit_summary",
    "occlusion_outcome",
]


def _one_map(features: Any) -> np.ndarray:
    maps = np.asarray(features, dtype=np.float64)
    return maps[0] if maps.ndim == 4 else maps


def _rows_seeing(field: Any, pixel_rows: tuple[int, ...], height: int) -> list[int]:
    """The map rows whose receptive field holds at least one of ``pixel_rows``."""
    from ..receptive_field import seen_by

    low, high = min(pixel_rows), max(pixel_rows)
    fields = [seen_by(field, row) for row in range(height)]
    return [row for row, (first, last) in enumerate(fields) if first <= high and last >= low]


def check_seen_lead(
    answer: Any,
    features: np.ndarray,
    weights: np.ndarray,
    first: int,
    second: int,
    pixel_rows: tuple[int, ...],
    field: Any,
    input_side: int = 28,
) -> Feedback:
    """Exercise 1: the part of ``y^first - y^second`` from the map rows that see some pixel rows.

    A map row ``i`` sees the input's pixel rows ``seen_by(field, i)`` (its receptive
    field, wider than the stride). The answer is
    ``(1/Z) sum_{i in R} sum_j (M^first - M^second)_{ij}`` with ``M^c = sum_k w_k^c A^k``,
    ``Z = h * w`` and ``R`` the rows whose field holds one of ``pixel_rows``: those
    rows' part of the difference of the two scores (the biases belong to no position).

    Args:
        answer: the learner's number.
        features: the last convolution's output for one image, ``(h, w, K)`` (a batch
            axis of one is allowed), channels last as Keras gives it.
        weights: the dense layer's kernel, ``(K, classes)``.
        first: the class the lead is for.
        second: the class it is compared with.
        pixel_rows: the input's pixel rows the exercise names.
        field: the layer's :class:`~gradcam_widgets.receptive_field.Field`.
        input_side: the input's height in pixels.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with one number, computed from the map.")
    if np.asarray(answer, dtype=object).size != 1:
        return feedback(
            False,
            "expected one number: the rows' part of the lead, not a map or a list of rows.",
        )
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected a single number, got {answer!r}.")
    maps = _one_map(features)
    kernel = np.asarray(weights, dtype=np.float64)
    height, width, _ = maps.shape
    rows = _rows_seeing(field, pixel_rows, height)
    positions = height * width
    every_class = maps @ kernel  # (h, w, classes)
    lead = (every_class[..., first] - every_class[..., second]) / positions
    per_row = lead.sum(axis=1)
    expected = float(per_row[rows].sum())

    def near(a: float, b: float) -> bool:
        return bool(np.isclose(a, b, rtol=1e-3, atol=1e-3))

    if near(value, expected):
        return feedback(
            True,
            "each cell of (M^first - M^second) / Z is that position's part of the score gap, "
            "and every row whose receptive field holds the pixels counts. Compare it with the "
            "whole lead: what share is it?",
        )
    if near(value, -expected):
        return feedback(False, "right size, wrong sign: first class minus the second.")
    if near(value, expected * positions):
        return feedback(
            False,
            "the score is the map's average, not its sum: each cell counts 1/Z of its value.",
        )
    total = float(per_row.sum())
    if total and near(value, expected / total):
        return feedback(
            False, "that is a share of the lead; give the part itself, in score units."
        )
    if near(value, total):
        return feedback(
            False, "that is the whole map's lead; keep only the rows that see the pixels."
        )
    if near(value, float(lead[:, rows].sum())):
        return feedback(False, "those are columns of the map. Rows run from top to bottom.")
    for own in (every_class[..., first], every_class[..., second]):
        if near(value, float(own[rows].sum()) / positions):
            return feedback(False, "that is one class's part alone; the lead is a difference.")
    under = sorted({int(pixel) * height // input_side for pixel in pixel_rows})
    if near(value, float(per_row[under].sum())):
        return feedback(
            False,
            "that is only the row that lies over those pixels, one stride per row. A cell sees "
            f"{field.size} x {field.size} pixels, not {field.jump}: which rows' fields hold the "
            "pixels?",
        )
    for low in range(height):
        for high in range(low, height):
            span = list(range(low, high + 1))
            if span != rows and near(value, float(per_row[span].sum())):
                return feedback(
                    False,
                    "a block of rows, but not the right one: check the first and the last row "
                    "whose receptive field holds one of the pixel rows.",
                )
    return feedback(
        False,
        "not that number. Build the map of the score gap from the CAMs of the two classes, "
        "find the rows whose receptive field holds the pixel rows, and add up their cells, "
        "each counting 1/Z.",
    )


class EditSummary(NamedTuple):
    """What an edit did to some map rows' part of a score gap (see :func:`edit_summary`)."""

    held: float
    moved: float
    after_rows: np.ndarray


def _row_parts(
    features: np.ndarray, kernel: np.ndarray, first: int, second: int
) -> np.ndarray:
    """Each map row's part of ``y^first - y^second``, biases aside."""
    maps = _one_map(features)
    every_class = maps @ kernel
    lead = (every_class[..., first] - every_class[..., second]) / (maps.shape[0] * maps.shape[1])
    return np.asarray(lead.sum(axis=1))


def edit_summary(
    before: np.ndarray,
    after: np.ndarray,
    weights: np.ndarray,
    first: int,
    second: int,
    rows: list[int],
) -> EditSummary:
    """For the discussion after exercise 2: what an edit did to ``rows``' part of a score gap.

    A row's part of ``y^first - y^second`` is ``(1/Z) sum_j (M^first - M^second)_{ij}``
    with ``M^c = sum_k w_k^c A^k`` (biases aside). Kept in the package so that the lesson
    shows the result, not a line to copy into exercise 1.

    Args:
        before: the last convolution's output for the image as written, ``(h, w, K)``.
        after: the same for the edited image.
        weights: the dense layer's kernel, ``(K, classes)``.
        first: the class the lead is for.
        second: the class it is compared with.
        rows: the map rows to sum (those whose receptive field the edit reaches).

    Returns:
        ``held``: the rows' share of the whole gap before the edit; ``moved``: the change
        of their part, as a multiple of what they held; ``after_rows``: every row's part
        after the edit.
    """
    kernel = np.asarray(weights, dtype=np.float64)
    parts_before = _row_parts(before, kernel, first, second)
    parts_after = _row_parts(after, kernel, first, second)
    held_part = float(parts_before[rows].sum())
    return EditSummary(
        held=held_part / float(parts_before.sum()),
        moved=(float(parts_after[rows].sum()) - held_part) / held_part,
        after_rows=parts_after,
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
            "positions off just removes their share. No image you could feed the network is "
            "known to give exactly these activations: the edit is to the feature maps.",
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


def _cam(model: Any, inputs: Any, target: int) -> np.ndarray:
    from .. import engine

    return np.asarray(engine.cam(model, inputs, target=target), dtype=np.float32)


def _top_class_cam(model: Any, inputs: Any, target: int) -> np.ndarray:
    """Mistake: every image explained for its top class, whatever ``target`` says."""
    from .. import engine

    top = engine.predict(model, inputs).argmax(axis=1)
    return np.stack([_cam(model, inputs[n : n + 1], int(c))[0] for n, c in enumerate(top)])


def _clipped_cam(model: Any, inputs: Any, target: int) -> np.ndarray:
    """Mistake: the negative contributions left out (a ReLU, as in Grad-CAM)."""
    return np.maximum(_cam(model, inputs, target), 0.0)


def _max_scaled_cam(model: Any, inputs: Any, target: int) -> np.ndarray:
    """Mistake: each map divided by its largest value."""
    maps = _cam(model, inputs, target)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peaks > 0, peaks, 1.0)


def _transposed_cam(model: Any, inputs: Any, target: int) -> np.ndarray:
    """Mistake: rows and columns swapped (a classic slip when reshaping channels last)."""
    return np.ascontiguousarray(_cam(model, inputs, target).transpose(0, 2, 1))


def _channel_mean_cam(model: Any, inputs: Any, target: int) -> np.ndarray:
    """Mistake: the weighted channels averaged instead of added (divided by K)."""
    from .. import engine

    result = engine.explain(model, inputs, [target])
    (name,) = result.layers
    channels = np.asarray(result.activations[name]).shape[1]
    return _cam(model, inputs, target) / channels


#: The candidate mistakes of exercise 4, in letter order; one is drawn per colleague.
COLLEAGUE_CANDIDATES: tuple[Candidate, ...] = (
    Candidate(
        "It explains the top class, whatever target it is given.",
        _top_class_cam,
        "a function that explains the top class gives the right map whenever the target "
        "is the top class. Ask it for a class the network does not predict, and compare.",
        "for the predicted class its map is right, for any other class it draws the top "
        "class's map: the weights w^c must be those of the class asked for.",
    ),
    Candidate(
        "It leaves out the negative contributions.",
        _clipped_cam,
        "a map without its negative contributions never goes below zero where gw.cam's "
        "does. Look at the minimum, for a class whose CAM has blue cells.",
        "its map never goes below zero, and its average plus the bias is larger than the "
        "score: the evidence against the class has been dropped. That is Grad-CAM's ReLU, "
        "put into a CAM, where the identity needs every term.",
    ),
    Candidate(
        "It divides each map by its maximum.",
        _max_scaled_cam,
        "a map divided by its maximum has a largest value of exactly 1. Look at it.",
        "its largest value is exactly 1 for every class: the picture is right, the numbers "
        "are not, so the identity of section 4 no longer gives the score.",
    ),
    Candidate(
        "It swaps the rows and the columns.",
        _transposed_cam,
        "a map with rows and columns swapped is gw.cam's map transposed (.T). Compare with "
        "both, on a digit that is not symmetric.",
        "it equals gw.cam's map transposed: the average is right (so is the identity), "
        "but the evidence is drawn in the wrong place, which the overlay would hide on a "
        "roughly symmetric digit.",
    ),
    Candidate(
        "It averages the weighted channels instead of adding them.",
        _channel_mean_cam,
        "averaging K weighted channels divides gw.cam's map by K everywhere. Compare the "
        "two maps' ratio, cell by cell.",
        "its map is gw.cam's divided by K = the number of channels, at every cell: right "
        "shape, wrong size, so its average plus the bias is not the score.",
    ),
    Candidate(
        "Nothing: it is a correct CAM.",
        _cam,
        "a correct CAM equals gw.cam for every class, and its average plus the bias is the "
        "score. Test a class other than the top one, and look at the values.",
        "it matched gw.cam on every experiment: every class, every cell, and the identity.",
    ),
)

#: How the choices of exercise 4 read, by letter.
COLLEAGUE_CHOICES: tuple[str, ...] = tuple(c.choice for c in COLLEAGUE_CANDIDATES)


def draw_colleague(rng: random.Random | None = None) -> Mystery:
    """A colleague's CAM function with one mistake drawn from :data:`COLLEAGUE_CANDIDATES`.

    Call it like ``gw.cam(model, inputs, target)``; it returns ``(N, h, w)`` maps. Which
    mistake it makes is drawn when it is made (a correct version is one candidate), so
    the only way to tell is by experiment.

    Args:
        rng: the generator that draws; by default an unseeded one.
    """
    return draw("a colleague's CAM", COLLEAGUE_CANDIDATES, rng)


def check_colleague(colleague: Any, answer: Any) -> Feedback:
    """Exercise 4: which mistake ``colleague`` makes, a letter of :data:`COLLEAGUE_CHOICES`.

    Args:
        colleague: the function :func:`draw_colleague` returned.
        answer: the learner's letter.
    """
    return check_mystery(colleague, answer)


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
            "1. On a GAP network with 7 x 7 maps, the CAM of class c adds up to 98 over its 49 "
            "cells, and the dense layer's bias is b_c = -1. What is the score y^c?",
            answer=1.0,
            tolerance=1e-6,
            explanation=(
                "y^c = (1/Z) sum_ij M^c_ij + b_c = 98 / 49 - 1 = 1. The map's average, not its "
                "sum, is what the dense layer sees."
            ),
        ),
        Question(
            "2. You add 2.0 to the bias b_7 of the trained network. How does the CAM of class 7 "
            "change?",
            answer=1,
            choices=(
                "Every cell rises by 2.",
                "Not at all: the bias is not part of M^7 = sum_k w_k^7 A^k; the score rises by 2 "
                "through the bias alone.",
                "Every cell rises by 2 / 49.",
            ),
            explanation=(
                "the map is built from the weights and the feature maps only. The identity "
                "y^7 = mean(M^7) + b_7 still holds, with the new bias."
            ),
        ),
        Question(
            "3. Some image makes every activation of `conv3` exactly twice what it is for "
            "another image. By what factor does y^7 - b_7 change?",
            answer=2.0,
            tolerance=1e-6,
            explanation=(
                "y^c - b_c = sum_k w_k^c F^k, and every average F^k doubles: GAP and the dense "
                "layer are linear, so the score minus the bias doubles, and so does every cell "
                "of the CAM."
            ),
        ),
        Question(
            "4. A network ends conv3 -> GAP -> Dense(32, ReLU) -> Dense(10). Can you read a "
            "CAM off its weights, one weight per channel of conv3?",
            answer=1,
            choices=(
                "Yes: multiply the two weight matrices.",
                "No: the ReLU between the dense layers makes the score a non-linear function of "
                "the averages F^k, so no single weight per channel fits every image.",
                "Yes, with the last dense layer's weights alone.",
            ),
            explanation=(
                "the product of the two matrices would be right only for the units the ReLU "
                "keeps, and which ones it keeps depends on the image. Grad-CAM (lesson 02) gets "
                "per-image channel weights from gradients instead."
            ),
        ),
        Question(
            "5. Could the top class's CAM be mostly blue (negative), on some network?",
            answer=1,
            choices=(
                "No: the top class always has a mostly positive map.",
                "Yes, if its bias is large enough: the score is the map's average plus the "
                "bias, and only the scores are compared.",
                "Only on an untrained network.",
            ),
            explanation=(
                "y^c = mean(M^c) + b_c. Section 6's 7 had a mostly red map, but nothing forces "
                "it: a class with a large bias can win with a negative average."
            ),
        ),
        Question(
            "6. Two channels of conv3 have the same weight w_k^7 = 0.5. For one image, channel "
            "1 is 10 in 2 cells and 0 elsewhere; channel 2 is 1 in 20 cells and 0 elsewhere. "
            "Which adds more to y^7?",
            answer=2,
            choices=(
                "Channel 1: its activation is ten times stronger.",
                "Channel 2: it covers more of the map.",
                "Both the same.",
            ),
            explanation=(
                "each adds w_k^7 F^k, and both averages are 20 / 49. GAP counts the total of a "
                "channel, not where or how concentrated it is; the CAM keeps the where."
            ),
        ),
        Question(
            "7. The CAM of a 7 says its top three rows add +2.0 to the score. You paint those "
            "rows grey and run the network: the score of 7 falls by 5.0. What follows?",
            answer=1,
            choices=(
                "The map was wrong: the top rows held more than +2.0.",
                "Nothing against the map: it accounts for the image as it was. The grey image "
                "is a new image, and the grey brings evidence of its own (here against 7); the "
                "edit shows what the network does with that change.",
                "The score identity y = mean(M) + b failed for the grey image.",
            ),
            explanation=(
                "the identity holds for every image, the grey one too: its own CAM would show "
                "where the new evidence lies. An edit removes what was there and adds what "
                "replaces it, so its effect is not the part the map gave those positions "
                "(exercise 2: the bar changed the rows that see it by more than they held)."
            ),
        ),
    ]
)
