"""Self-checks for lesson 06 (can we trust the map?).

Each check computes the right value itself and compares; a wrong answer gets a hint about
the likely slip, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import _core, metrics
from ..backends import is_tensor, to_numpy
from . import TODO, Feedback, Question, Quiz, as_number, feedback, is_todo

__all__ = [
    "MYSTERY",
    "QUIZ",
    "TODO",
    "check_gradcam_plus_plus",
    "check_hirescam",
    "check_occlusion",
    "check_random_baseline",
    "check_rank_correlation",
    "features_and_gradients",
    "guided_verdict",
    "mystery_gradcam",
]


def _near(value: float, expected: float, tolerance: float = 1e-3) -> bool:
    return bool(np.isclose(value, expected, rtol=tolerance, atol=1e-6))


def _enlarged_areas(boxes: np.ndarray, canvas_size: int, grow: float, clip: bool) -> np.ndarray:
    top, left, bottom, right = (boxes[:, i] for i in range(4))
    top, left, bottom, right = top - grow, left - grow, bottom + grow, right + grow
    if clip:
        top, left = np.maximum(top, 0), np.maximum(left, 0)
        bottom, right = np.minimum(bottom, canvas_size), np.minimum(right, canvas_size)
    return (bottom - top) * (right - left)


def check_random_baseline(
    answer: Any, boxes: np.ndarray, canvas_size: int, tolerance: int = 3
) -> Feedback:
    """Exercise 1: the pointing-game score of a random point when boxes get a tolerance.

    The pointing game of Zhang et al. counts a hit within ``tolerance`` pixels of the box:
    each box grows by ``tolerance`` on every side, clipped to the canvas. A point drawn
    uniformly at random then hits with probability (grown box area) / (canvas area).

    Args:
        answer: the learner's expected hit rate, between 0 and 1.
        boxes: ``(N, 4)`` boxes ``(top, left, bottom, right)``, bottom and right exclusive.
        canvas_size: the side of the square canvas in pixels.
        tolerance: pixels added on every side of each box.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your expected hit rate, then run this cell.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    boxes = np.asarray(boxes, dtype=np.float64)
    canvas = float(canvas_size) ** 2
    areas = _enlarged_areas(boxes, canvas_size, tolerance, clip=True)
    expected = float(np.mean(areas / canvas))
    if _near(value, expected):
        return feedback(
            True,
            "a random point lands in a grown box as often as the box covers the canvas. The "
            "tolerance helps every method, chance included: compare scores at the same "
            "tolerance.",
        )
    if _near(value, metrics.random_baseline(boxes, canvas_size)):
        return feedback(
            False,
            "this is the baseline without the tolerance, as printed in section 2. Grow every "
            "box by the tolerance on each side first.",
        )
    if _near(value, float(np.mean(_enlarged_areas(boxes, canvas_size, tolerance, False))) / canvas):
        return feedback(
            False,
            "some grown boxes stick out of the canvas, and a point on the canvas can never "
            "land there. Clip each grown box to the canvas (np.clip) before its area.",
        )
    for grow in (tolerance / 2, 2 * tolerance):
        if _near(value, float(np.mean(_enlarged_areas(boxes, canvas_size, grow, True))) / canvas):
            return feedback(
                False,
                "the boxes grew by the wrong amount. The tolerance is added once on each "
                "side: top and left move out by it, bottom and right too.",
            )
    if _near(value, float(np.mean(areas)) / canvas_size):
        return feedback(
            False, "you divided by the canvas's side; divide by its area (side times side)."
        )
    if _near(value, float(np.mean(areas))):
        return feedback(
            False, "this is an area in pixels. A probability compares it with the canvas's area."
        )
    if _near(value, 1.0 - expected):
        return feedback(False, "this is the chance of *missing* the grown box.")
    if not 0.0 <= value <= 1.0:
        return feedback(False, "a hit rate lies between 0 and 1.")
    return feedback(
        False,
        "not the value the check finds. Grow each box by the tolerance on all four sides, "
        "clip it to the canvas, take (bottom - top) * (right - left) / SIZE**2 per image, "
        "and average over the images.",
    )


def check_rank_correlation(answer: Any, first: np.ndarray, second: np.ndarray) -> Feedback:
    """Exercise 2: Spearman's rank correlation of two maps, by hand.

    Args:
        answer: the learner's correlation, between -1 and 1.
        first: a map.
        second: a map of the same shape.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with your rank correlation, then run this cell.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    expected = metrics.rank_correlation(a, b)
    if _near(value, expected, 1e-4):
        return feedback(
            True,
            "this is Spearman's rank correlation: the Pearson correlation of the ranks. It "
            "ignores how large the values are and compares only their order.",
        )
    if _near(value, float(np.corrcoef(a, b)[0, 1]), 1e-4):
        return feedback(
            False,
            "this is the correlation of the values themselves (Pearson's). Replace each value "
            "by its rank first.",
        )
    if _near(value, 1.0 - expected, 1e-4):
        return feedback(False, "this is one minus the correlation.")
    if _near(value, expected**2, 1e-4):
        return feedback(False, "this is the square of the correlation; keep its sign.")
    if not -1.0 <= value <= 1.0:
        return feedback(False, "a correlation lies between -1 and 1.")
    return feedback(
        False,
        "not the value the check finds. Flatten both maps, rank each with "
        "scipy.stats.rankdata, and take np.corrcoef of the two rank arrays ([0, 1]).",
    )


def _score(model: Any, image: np.ndarray, target: int) -> float:
    from ..engine import predict

    return float(predict(model, image[np.newaxis, np.newaxis].astype(np.float32))[0, target])


def _erase(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, bottom, right = box
    erased = np.array(image, dtype=np.float32, copy=True)
    erased[top:bottom, left:right] = 0.0
    return erased


def check_occlusion(
    answer: Any,
    model: Any,
    image: np.ndarray,
    erased_box: tuple[int, int, int, int],
    other_box: tuple[int, int, int, int],
    target: int = 0,
) -> Feedback:
    """Exercise 3: how a class score changes when one region of the image is erased.

    Args:
        answer: the learner's change of the score, new minus old.
        model: a PyTorch model taking ``(N, 1, H, W)``.
        image: the ``(H, W)`` float image.
        erased_box: the region the exercise asks to erase (set to 0).
        other_box: the other highlighted region (a common slip is to erase it instead).
        target: the class whose score (before the softmax) is asked for.
    """
    if is_todo(answer):
        return feedback(None, "replace TODO with the change of the score, then run this cell.")
    value = as_number(answer)
    if value is None:
        return feedback(False, f"expected one number, got {type(answer).__name__}.")
    image = np.asarray(image, dtype=np.float32)
    before = _score(model, image, target)
    after = _score(model, _erase(image, erased_box), target)
    expected = after - before
    if _near(value, expected):
        direction = "rises" if expected > 0 else "falls"
        return feedback(
            True,
            f"erasing that region, the score {direction}: the region counted "
            f"{'against' if expected > 0 else 'for'} the class, whatever the map's colour said.",
        )
    if _near(value, -expected):
        return feedback(False, "the sign is reversed: give the new score minus the old one.")
    if _near(value, after):
        return feedback(False, "this is the new score; the exercise asks for its change.")
    other = _score(model, _erase(image, other_box), target)
    if _near(value, other - before) or _near(value, before - other):
        return feedback(False, "this is what erasing the *other* blob does. Check the box.")
    return feedback(
        False,
        "not the change the check finds. Copy the image, set the box's pixels to 0, and "
        "compare gw.predict's scores (before the softmax) of the two images for the class.",
    )


def features_and_gradients(
    model: Any, inputs: Any, target: int | list[int] | None = None, layer: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A layer's feature maps and the score's gradients (``gw.explain``'s, for one layer).

    Returns:
        ``(A, G)``, float32 ``(N, K, h, w)`` each, channels first.
    """
    from ..engine import explain

    found = explain(model, inputs, [target], layer)
    (name,) = found.layers
    return found.activations[name], found.gradients[0][name]


def _test_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Activations (non-negative, as after a ReLU) and signed gradients with exact zeros."""
    rng = np.random.default_rng(seed)
    activations = np.maximum(rng.normal(size=(3, 4, 5, 6)), 0.0).astype(np.float32)
    gradients = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    gradients[rng.random(gradients.shape) < 0.2] = 0.0
    gradients[1, 2] = 0.0  # one channel with no gradient at all
    return activations, gradients


def _run_learner(function: Any, activations: np.ndarray, gradients: np.ndarray) -> Any:
    a, g = activations.copy(), gradients.copy()
    result = function(a, g)
    if is_todo(result):
        return None, False
    if is_tensor(result):
        result = to_numpy(result)
    changed = not (np.array_equal(a, activations) and np.array_equal(g, gradients))
    return np.asarray(result, dtype=np.float64), changed


def _learner_runs(
    function: Any, name: str, activations: Any, gradients: Any, seeds: tuple[int, ...]
) -> Iterator[Feedback | tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run the learner's ``function(A, G)`` on the lesson's arrays (if given), then on made-up ones.

    Yields, case by case, ``(A, G, result)`` in float64 to compare, or a :class:`Feedback` that
    ends the check (not done yet, not a function, raised, changed its inputs, wrong shape).
    """
    if is_todo(function):
        yield feedback(None, f"write {name} in place of TODO, then run this cell.")
        return
    if not callable(function):
        yield feedback(False, f"pass the function itself ({name}), not its result.")
        return
    cases = [_test_arrays(seed) for seed in seeds]
    if activations is not None and gradients is not None:
        cases.insert(0, (np.asarray(activations), np.asarray(gradients)))
    for a, g in cases:
        try:
            result, changed = _run_learner(function, a, g)
        except Exception as error:  # the learner's code may raise anything
            yield feedback(False, f"your function raised {type(error).__name__}: {error}")
            return
        if result is None:
            yield feedback(None, "replace the TODO in the function's body, then run this cell.")
            return
        if changed:
            yield feedback(False, "your function changed A or G in place; work on new arrays.")
            return
        problem = _shape_problem(result, a)
        if problem is not None:
            yield problem
            return
        yield a.astype(np.float64), g.astype(np.float64), result


def _shape_problem(result: np.ndarray, activations: np.ndarray) -> Feedback | None:
    n, _, h, w = activations.shape
    if result.shape != (n, h, w):
        return feedback(
            False,
            f"for A and G of shape (N, K, h, w) = {activations.shape} the map should be "
            f"(N, h, w) = {(n, h, w)}, got {result.shape}. Sum over the channel axis "
            "(axis 1) only, never over the batch axis.",
        )
    if not np.all(np.isfinite(result)):
        return feedback(
            False,
            "the map has NaN or infinite values. Where a gradient is 0 a denominator can be "
            "0 too: define the ratio as 0 there (np.where).",
        )
    return None


def _same(result: np.ndarray, expected: np.ndarray) -> bool:
    scale = 1.0 + float(np.abs(expected).max())
    return bool(np.allclose(result, expected, rtol=1e-4, atol=1e-5 * scale))


def check_hirescam(function: Any, activations: Any = None, gradients: Any = None) -> Feedback:
    """Exercise 4a: HiResCAM by hand, ``ReLU(sum_k G^k * A^k)``.

    The learner's ``function(A, G) -> (N, h, w)`` is called on the lesson's arrays (if
    given) and on made-up arrays, so calling ``gw.gradcam`` inside it cannot help.

    Args:
        function: the learner's implementation, numpy in and out.
        activations: optional ``(N, K, h, w)`` feature maps from the lesson.
        gradients: optional gradients of the same shape.
    """
    for run in _learner_runs(function, "my_hirescam", activations, gradients, seeds=(0, 1)):
        if isinstance(run, Feedback):
            return run
        a64, g64, result = run
        if _same(result, _core.hirescam_map(a64, g64)):
            continue
        if _same(result, (g64 * a64).sum(axis=1)):
            return feedback(
                False,
                "the map has negative values where the evidence counts against the class. "
                "Like Grad-CAM, HiResCAM keeps only the positive part.",
            )
        if _same(result, _core.weighted_sum(a64, _core.gradcam_weights(a64, g64))):
            return feedback(
                False,
                "this is Grad-CAM: you averaged the gradient over each channel. HiResCAM "
                "multiplies each position's activation by the gradient at that position.",
            )
        if _same(result, np.maximum((np.abs(g64) * a64).sum(axis=1), 0.0)):
            return feedback(False, "keep the gradient's sign: evidence against must cancel.")
        return feedback(
            False,
            "not HiResCAM. Multiply G and A element by element, sum over the channels, "
            "then apply the ReLU.",
        )
    return feedback(
        True,
        "each position keeps its own gradient, so evidence for and against the class no "
        "longer cancels in one weight per channel.",
    )


def check_gradcam_plus_plus(
    function: Any, activations: Any = None, gradients: Any = None
) -> Feedback:
    """Exercise 4b: Grad-CAM++ by hand.

    ``w_k = sum_ij a^k_ij ReLU(g^k_ij)``, ``a^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)``
    (0 where the denominator is 0), map ``ReLU(sum_k w_k A^k)``. Checked on the lesson's
    arrays and on made-up ones.

    Args:
        function: the learner's ``function(A, G) -> (N, h, w)``.
        activations: optional ``(N, K, h, w)`` feature maps from the lesson.
        gradients: optional gradients of the same shape.
    """
    for run in _learner_runs(function, "my_gradcam_pp", activations, gradients, seeds=(0, 2)):
        if isinstance(run, Feedback):
            return run
        a64, g64, result = run
        plus_plus = _core.weighted_sum(a64, _core.gradcam_plus_plus_weights(a64, g64))
        if _same(result, plus_plus):
            continue
        for slip, hint in _plus_plus_slips(a64, g64):
            if _same(result, slip):
                return feedback(False, hint)
        return feedback(
            False,
            "not Grad-CAM++. Per channel: S = A.sum over (h, w) (keepdims), "
            "alpha = g**2 / (2 g**2 + S g**3) (0 where the denominator is 0), "
            "w = sum over (h, w) of alpha * ReLU(g); then ReLU(sum_k w_k A^k).",
        )
    return feedback(
        True,
        "only positive gradients count, each weighted by its alpha: a channel's weight no "
        "longer mixes evidence for and against the class.",
    )


def _plus_plus_slips(a: np.ndarray, g: np.ndarray) -> list[tuple[np.ndarray, str]]:
    g2, g3 = g**2, g**3

    def weights(denominator: np.ndarray, signal: np.ndarray) -> np.ndarray:
        alpha = np.where(denominator != 0, g2 / np.where(denominator != 0, denominator, 1), 0)
        return (alpha * signal).sum(axis=(2, 3))

    def combine(w: np.ndarray) -> np.ndarray:
        return np.maximum(np.einsum("nk,nkhw->nhw", w, a), 0.0)

    proper = 2 * g2 + a.sum(axis=(2, 3), keepdims=True) * g3
    return [
        (
            combine(weights(proper, g)),
            "the weights use the raw gradient; Grad-CAM++ keeps only its positive part, "
            "ReLU(g), so negative gradients cannot lower a channel's weight.",
        ),
        (
            combine(weights(2 * g2 + a * g3, np.maximum(g, 0))),
            "the denominator needs the sum of A^k over all positions (a, b), one number per "
            "channel, not A at the same position.",
        ),
        (
            combine(weights(2 * g2 + a.sum(axis=(1, 2, 3), keepdims=True) * g3, np.maximum(g, 0))),
            "sum A over the positions of each channel only (axes 2 and 3), not over the "
            "channels too.",
        ),
        (
            _core.weighted_sum(a, _core.gradcam_weights(a, g)),
            "this is Grad-CAM (the plain average of the gradients).",
        ),
        (
            combine(np.maximum(g, 0).sum(axis=(2, 3))),
            "you summed ReLU(g) without the per-position weights alpha.",
        ),
    ]


def mystery_gradcam(
    model: Any, inputs: Any, target: int | list[int] | None = None, layer: str | None = None
) -> np.ndarray:
    """A Grad-CAM with one of the classic mistakes in it, for exercise 5 (diagnose it).

    Do not read the source before answering: find the mistake from what the function
    does on inputs you choose.
    """
    activations, gradients = features_and_gradients(model, inputs, target, layer)
    weights = gradients.mean(axis=(0, 2, 3))
    weights = np.broadcast_to(weights, activations.shape[:2])
    return _core.weighted_sum(activations, weights)


#: Exercise 5: what is wrong with :func:`mystery_gradcam`?
MYSTERY = Question(
    "Which mistake does mystery_gradcam make?",
    choices=(
        "it differentiates the probability after the softmax instead of the score before it",
        "it averages the gradients over the batch axis as well as over the positions",
        "it takes the gradient with respect to the layer's weights instead of its output",
        "it leaves out the ReLU, so the map can be negative",
    ),
    answer=1,
    explanation="for one image it agrees exactly with gw.gradcam, and in a batch every image "
    "gets the same channel weights, so each map depends on the other images: the gradients "
    "were pooled over axis 0 too. Pool over the spatial axes (2, 3) only.",
)


def guided_verdict(correlation_after_head: float) -> str:
    """Exercise 6's truth: ``"b"`` if the map still resembles the trained one (rho > 0.5)."""
    return "b" if correlation_after_head > 0.5 else "a"


#: The end-of-lesson concept questions.
QUIZ = Quiz(
    [
        Question(
            "1. In the model-parameter randomisation test, when does a saliency method fail?",
            choices=(
                "when its map changes after the weights are randomised",
                "when its map stays much the same after the weights are randomised",
                "when its map is coarser than the image",
                "when it needs gradients",
            ),
            answer=1,
            explanation="a map that survives the destruction of what the network learned "
            "cannot be explaining what it learned. Guided Backpropagation failed this way.",
        ),
        Question(
            "2. Why compare maps with a rank correlation rather than their values?",
            choices=(
                "ranks are faster to compute",
                "Pearson's correlation cannot handle zeros",
                "the scale of a map changes from one model to another; the order of its values is "
                "what the picture shows",
                "rank correlations are always positive",
            ),
            answer=2,
            explanation="a displayed map is normalised; Spearman's rho compares only which "
            "positions are hotter than which.",
        ),
        Question(
            "3. A 10 x 10 box on a 40 x 40 canvas: with what probability does a random point "
            "hit it? (a number between 0 and 1)",
            answer=100 / 1600,
            tolerance=5e-4,
            explanation="box area over canvas area: 100 / 1600 = 0.0625.",
        ),
        Question(
            "4. On a network with a global-average-pooling head, at which layer are Grad-CAM "
            "and HiResCAM equal?",
            choices=(
                "only at the layer that the pooling averages",
                "at every convolutional layer",
                "only at the first layer",
                "at no layer",
            ),
            answer=0,
            explanation="there every position's gradient is w_k^c / Z, so averaging changes "
            "nothing; at an earlier layer the convolutions above make the gradient vary "
            "from position to position.",
        ),
        Question(
            "5. In the two-blob network, Grad-CAM painted blob B as hot as blob A, though "
            "erasing B raises the score. Why?",
            choices=(
                "B is brighter than A",
                "the ReLU turns B's negative evidence positive",
                "the map's resolution is too coarse to separate A and B",
                "the channel's average gradient is positive, so every position of the channel "
                "gets the same positive weight",
            ),
            answer=3,
            explanation="one weight per channel cannot be positive at A and negative at B; "
            "HiResCAM keeps each position's own gradient and shows only A.",
        ),
        Question(
            "6. Guided Backpropagation's map hardly changed when the top layers were "
            "randomised. What is the reason usually given?",
            choices=(
                "its ReLU rule discards negative signals on the way back, so the picture is "
                "dominated by the input's own structure, like an edge detector's",
                "it uses the softmax output",
                "it is computed at the last convolutional layer",
                "random weights have the same mean as trained ones",
            ),
            answer=0,
            explanation="Adebayo et al. (2018) and Nie et al. (2018) show that Guided "
            "Backpropagation largely reconstructs the image; the class and the upper "
            "layers matter little.",
        ),
        Question(
            "7. In a deletion curve, the pixels a map ranks highest are removed first. What "
            "does a faithful map give?",
            choices=(
                "a score that rises: a large area under the curve",
                "a flat curve",
                "a score that falls fast: a small area under the curve",
                "the same curve as a random map",
            ),
            answer=2,
            explanation="if the top-ranked pixels are the ones the model uses, removing "
            "them first destroys the score soonest.",
        ),
        Question(
            "8. Enlarging every box by a tolerance of 3 pixels raised Grad-CAM's pointing "
            "score. What must a fair comparison do?",
            choices=(
                "nothing: a higher score is better",
                "give the baselines the same tolerance, since it raises their scores too",
                "shrink the boxes for the baselines",
                "use a smaller canvas",
            ),
            answer=1,
            explanation="a larger target helps every pointer, chance included; only scores "
            "at the same tolerance can be compared.",
        ),
    ]
)
