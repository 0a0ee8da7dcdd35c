"""Self-checks for lesson 06 (can we trust the map?).

Each check computes the right value itself and compares; a wrong answer gets a hint about
the likely slip, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import _core, metrics
from ..backends import is_tensor, to_numpy
from ..metrics.randomisation import rank_correlation as _rank_correlation
from . import TODO, Feedback, Question, Quiz, as_number, feedback, is_todo, watch_calls

__all__ = [
    "BLOBS",
    "MYSTERY",
    "MYSTERY_BUGS",
    "QUIZ",
    "TODO",
    "HiddenBlobs",
    "Mystery",
    "check_gradcam_plus_plus",
    "check_hirescam",
    "check_occlusion",
    "check_random_baseline",
    "check_rank_correlation",
    "features_and_gradients",
    "guided_verdict",
    "make_hidden_blobs",
    "make_mystery",
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


def _grown_baseline(boxes: np.ndarray, canvas_size: int, tolerance: float) -> float:
    """Mean over the images of (box grown by ``tolerance``, clipped) area / canvas area."""
    areas = _enlarged_areas(boxes, canvas_size, tolerance, clip=True)
    return float(np.mean(areas / float(canvas_size) ** 2))


def _baseline_slip(
    value: float, boxes: np.ndarray, canvas_size: int, tolerance: float
) -> str | None:
    """The hint for a value that matches a known slip on this case, or None."""
    canvas = float(canvas_size) ** 2
    expected = _grown_baseline(boxes, canvas_size, tolerance)
    areas = _enlarged_areas(boxes, canvas_size, tolerance, clip=True)
    if tolerance and _near(value, metrics.random_baseline(boxes, canvas_size)):
        return (
            "this is the baseline without the tolerance, as printed in section 2. Grow every "
            "box by the tolerance on each side first."
        )
    unclipped = float(np.mean(_enlarged_areas(boxes, canvas_size, tolerance, False))) / canvas
    if not _near(unclipped, expected) and _near(value, unclipped):
        return (
            "some grown boxes stick out of the canvas, and a point on the canvas can never "
            "land there. Clip each grown box to the canvas (np.clip) before its area."
        )
    for grow in (tolerance / 2, 2 * tolerance):
        if tolerance and _near(value, _grown_baseline(boxes, canvas_size, grow)):
            return (
                "the boxes grew by the wrong amount. The tolerance is added once on each "
                "side: top and left move out by it, bottom and right too."
            )
    if _near(value, float(np.mean(areas)) / canvas_size):
        return "you divided by the canvas's side; divide by its area (side times side)."
    if _near(value, float(np.mean(areas))):
        return "this is an area in pixels. A probability compares it with the canvas's area."
    if _near(value, 1.0 - expected):
        return "this is the chance of *missing* the grown box."
    if not 0.0 <= value <= 1.0:
        return "a hit rate lies between 0 and 1."
    return None


def _made_up_boxes() -> list[tuple[np.ndarray, int, int]]:
    """Boxes of other canvases and tolerances, some touching the edges (clipping matters)."""
    return [
        (np.array([[0, 2, 9, 11], [20, 21, 30, 30], [5, 0, 12, 6]]), 30, 2),
        (np.array([[10, 10, 20, 24], [40, 38, 50, 50]]), 50, 5),
        (np.array([[3, 4, 8, 9], [0, 0, 6, 6]]), 16, 0),
    ]


@contextmanager
def _watch_tolerant_baseline() -> Iterator[list[float]]:
    """Record calls of ``metrics.random_baseline`` with a tolerance (it would do the work)."""
    calls: list[float] = []
    original = metrics.random_baseline

    def watched(boxes: Any, image_size: Any, tolerance: int = 0) -> float:
        if tolerance:
            calls.append(tolerance)
        return original(boxes, image_size, tolerance)

    metrics.random_baseline = watched
    try:
        yield calls
    finally:
        metrics.random_baseline = original


def check_random_baseline(
    function: Any, boxes: np.ndarray, canvas_size: int, tolerance: int = 3
) -> Feedback:
    """Exercise 1: the pointing-game score of a random point when boxes get a tolerance.

    The pointing game of Zhang et al. counts a hit within ``tolerance`` pixels of the box:
    each box grows by ``tolerance`` on every side, clipped to the canvas. A point drawn
    uniformly at random then hits with probability (grown box area) / (canvas area),
    averaged over the images. The learner writes ``function(boxes, size, tolerance)``; the
    check calls it on the lesson's boxes and on made-up boxes of other canvases and
    tolerances, so a number copied from an output cannot pass.

    Args:
        function: the learner's ``my_random_baseline(boxes, size, tolerance) -> float``.
        boxes: the lesson's ``(N, 4)`` boxes ``(top, left, bottom, right)``, bottom and
            right exclusive.
        canvas_size: the side of the lesson's square canvas in pixels.
        tolerance: the lesson's tolerance, pixels added on every side of each box.
    """
    if is_todo(function):
        return feedback(None, "write my_random_baseline in place of TODO, then run this cell.")
    if not callable(function):
        return feedback(
            False,
            "pass the function itself (my_random_baseline), not a number: the check calls it "
            "on other boxes and canvases too.",
        )
    cases = [(np.asarray(boxes), int(canvas_size), tolerance), *_made_up_boxes()]
    answers: list[float] = []
    for index, (case_boxes, size, grow) in enumerate(cases):
        try:
            with _watch_tolerant_baseline() as calls:
                result = function(case_boxes.copy(), size, grow)
        except Exception as error:
            return feedback(False, f"your function raised {type(error).__name__}: {error}")
        if calls:
            return feedback(
                False,
                "metrics.random_baseline(..., tolerance=...) does the exercise for you. Grow "
                "and clip the boxes yourself with numpy.",
            )
        if is_todo(result):
            return feedback(None, "replace the TODO in the function's body, then run this cell.")
        value = as_number(result)
        if value is None:
            return feedback(
                False, f"the function should return one number, got {type(result).__name__}."
            )
        answers.append(value)
        case_boxes = np.asarray(case_boxes, dtype=np.float64)
        if _near(value, _grown_baseline(case_boxes, size, grow)):
            continue
        if index > 0 and _near(value, answers[0]):
            return feedback(
                False,
                "right for the lesson's boxes, but the function returns the same number for "
                "other boxes. Compute from its arguments (boxes, size, tolerance), not from "
                "test_set.boxes, SIZE or a printed value.",
            )
        where = "the lesson's boxes" if index == 0 else f"made-up boxes on a {size} x {size} canvas"
        hint = _baseline_slip(value, case_boxes, size, grow)
        if hint is None:
            hint = (
                "not the value the check finds. Grow each box by the tolerance on all four "
                "sides, clip it to the canvas, take (bottom - top) * (right - left) / size**2 "
                "per image, and average over the images."
            )
        return feedback(False, f"for {where} (tolerance {grow}): {hint}")
    return feedback(
        True,
        "a random point lands in a grown box as often as the box covers the canvas. The "
        "tolerance helps every method, chance included: compare scores at the same tolerance.",
    )


def _right_without_ties(function: Any) -> bool:
    """Whether the learner's function is right on maps without a single tie."""
    rng = np.random.default_rng(11)
    a, b = rng.random((5, 6)), rng.random((5, 6))
    try:
        value = as_number(function(a.copy(), b.copy()))
    except Exception:
        return False
    return value is not None and _near(value, metrics.rank_correlation(a, b), 1e-4)


def _rank_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """Made-up map pairs with many tied zeros (as after a ReLU) and other shapes."""
    rng = np.random.default_rng(7)
    first = np.maximum(rng.normal(size=(6, 5)), 0.0)
    second = np.maximum(first + rng.normal(scale=0.8, size=(6, 5)), 0.0)
    third = rng.random((4, 9))
    return [(first, second), (third, third**3 + 0.1 * rng.random((4, 9)))]


def check_rank_correlation(function: Any, first: np.ndarray, second: np.ndarray) -> Feedback:
    """Exercise 3: Spearman's rank correlation of two maps, by hand.

    The learner writes ``function(a, b)`` for two maps of the same shape; the check calls it
    on the lesson's maps and on made-up ones with many ties, and refuses
    ``metrics.rank_correlation``, which would do the work.

    Args:
        function: the learner's ``my_spearman(a, b) -> float``.
        first: a map.
        second: a map of the same shape.
    """
    if is_todo(function):
        return feedback(None, "write my_spearman in place of TODO, then run this cell.")
    if not callable(function):
        return feedback(
            False,
            "pass the function itself (my_spearman), not a number: the check calls it on "
            "other maps too.",
        )
    if function in (metrics.rank_correlation, _rank_correlation):
        return feedback(
            False,
            "metrics.rank_correlation does the exercise for you. Rank with "
            "scipy.stats.rankdata and correlate with np.corrcoef.",
        )
    lesson = (np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64))
    answers: list[float] = []
    for index, (a, b) in enumerate([lesson, *_rank_cases()]):
        try:
            with watch_calls(metrics, "rank_correlation") as calls:
                result = function(a.copy(), b.copy())
        except Exception as error:
            return feedback(False, f"your function raised {type(error).__name__}: {error}")
        if calls:
            return feedback(
                False,
                "metrics.rank_correlation does the exercise for you. Rank with "
                "scipy.stats.rankdata and correlate with np.corrcoef.",
            )
        if is_todo(result):
            return feedback(None, "replace the TODO in the function's body, then run this cell.")
        value = as_number(result)
        if value is None:
            return feedback(
                False,
                f"the function should return one number, got {type(result).__name__} (take "
                "np.corrcoef(...)[0, 1]).",
            )
        answers.append(value)
        x, y = a.ravel(), b.ravel()
        expected = metrics.rank_correlation(x, y)
        if _near(value, expected, 1e-4):
            continue
        if index > 0 and _near(value, answers[0], 1e-9):
            return feedback(
                False,
                "right for the lesson's maps, but the function returns the same number for "
                "other maps. Compute from its arguments.",
            )
        hint = "not the value the check finds."
        if _near(value, float(np.corrcoef(x, y)[0, 1]), 1e-4):
            hint = (
                "this is the correlation of the values themselves (Pearson's). Replace each "
                "value by its rank first."
            )
        elif _right_without_ties(function):
            hint = (
                "tied values got different ranks (maps after a ReLU have many tied zeros). "
                "Tied values share the average of their ranks (scipy.stats.rankdata does this)."
            )
        elif _near(value, 1.0 - expected, 1e-4):
            hint = "this is one minus the correlation."
        elif _near(value, expected**2, 1e-4):
            hint = "this is the square of the correlation; keep its sign."
        elif not -1.0 <= value <= 1.0:
            hint = "a correlation lies between -1 and 1."
        else:
            hint += (
                " Flatten both maps, rank each with scipy.stats.rankdata, and take "
                "np.corrcoef of the two rank arrays ([0, 1])."
            )
        where = "the lesson's maps" if index == 0 else f"made-up {a.shape} maps with ties"
        return feedback(False, f"for {where}: {hint}")
    return feedback(
        True,
        "this is Spearman's rank correlation: the Pearson correlation of the ranks. It "
        "ignores how large the values are and compares only their order.",
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


#: The three blobs of :func:`make_hidden_blobs`: (top, left, bottom, right), ends excluded.
BLOBS = {"A": (1, 1, 3, 3), "B": (1, 8, 3, 10), "C": (8, 4, 10, 6)}


class HiddenBlobs:
    """Exercise 6: a hand-set network in which one of three blobs counts against class 0.

    Attributes:
        model: ``Conv2d(1, 1, 1)`` (the identity) -> ``Flatten`` -> ``Linear(144, 16)`` ->
            ``Linear(16, 2)``, with no nonlinearity between the two dense layers. Their product
            is class 0's weight, +1 on two blobs and negative on the third (class 1 is the
            constant -1); a random 16 x 16 rotation mixes the factors, so no single
            printed weight shows the blob: the learner probes the model instead.
        image: float32 ``(12, 12)``, ink 1 on the three blobs.
        boxes: :data:`BLOBS`.
    """

    def __init__(self, against: str, weight: float, seed: int = 0) -> None:
        import torch
        from torch import nn

        self._against = against
        self.boxes = dict(BLOBS)
        self.image = np.zeros((12, 12), dtype=np.float32)
        weights = torch.zeros(2, 12, 12)
        for name, (top, left, bottom, right) in BLOBS.items():
            self.image[top:bottom, left:right] = 1.0
            weights[0, top:bottom, left:right] = -weight if name == against else 1.0
        # W (2 x 144) = W2 @ W1 with W1 = Q [W; 3R] and W2 = [I 0] Q^T (Q a random rotation,
        # R random rows): the product is exact up to round-off, each row of W1 is dominated by
        # the random rows, so neither factor shows anything blob-shaped
        generator = torch.Generator().manual_seed(seed)
        head = weights.reshape(2, 144).double()
        noise = 3 * torch.randn(14, 144, generator=generator, dtype=torch.float64)
        rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator, dtype=torch.float64))
        first = rotation @ torch.cat([head, noise])
        second = rotation.T[:2]
        self.model = nn.Sequential(
            nn.Conv2d(1, 1, kernel_size=1),
            nn.Flatten(),
            nn.Linear(144, 16, bias=False),
            nn.Linear(16, 2),
        )
        with torch.no_grad():
            self.model[0].weight.fill_(1.0)
            self.model[0].bias.zero_()
            self.model[2].weight.copy_(first.float())
            self.model[3].weight.copy_(second.float())
            # class 1 scores -1 whatever the image: a negative score keeps the pair of scores
            # from ever looking like probabilities (which the engine would refuse)
            self.model[3].bias.copy_(torch.tensor([0.0, -1.0]))

    def check(self, answer: Any) -> Feedback:
        """Mark the learner's blob ("A", "B" or "C"): the one that counts against class 0."""
        if is_todo(answer):
            return feedback(None, "put the blob's letter in place of TODO, then run this cell.")
        letter = str(answer).strip().strip("'\"").upper() if isinstance(answer, str) else None
        if letter not in BLOBS:
            return feedback(False, "answer with one of the blob names 'A', 'B' or 'C'.")
        if letter == self._against:
            return feedback(
                True,
                f"erasing blob {letter} raises the score of class 0: it counts against the "
                "class, though Grad-CAM painted it as hot as the others. Only the intervention "
                "(or HiResCAM) tells them apart.",
            )
        return feedback(
            False,
            f"erase blob {letter} (set its pixels to 0 in a copy of the image) and compare "
            "gw.predict's score of class 0 with the original's: does it rise or fall?",
        )

    def __repr__(self) -> str:
        return "HiddenBlobs(model, image, boxes: A, B, C)"


def make_hidden_blobs(against: str | None = None) -> HiddenBlobs:
    """The network of exercise 6, with the blob that counts against class 0 hidden.

    Without ``against`` the blob (and its weight, between -1.2 and -1.8) is drawn at random
    from the operating system's entropy, so reading this source does not tell which; the
    learner finds it by occlusion; the dense weights come as two mixed factors, so printing
    them does not show it either. Every weight keeps the channel's average gradient
    positive (``(8 - 4w) / 144 > 0``), so Grad-CAM paints the three blobs alike.

    Args:
        against: "A", "B" or "C" (tests and teachers), or None to draw one.
    """
    import secrets

    if against is None:
        against = sorted(BLOBS)[secrets.randbelow(len(BLOBS))]
    if against not in BLOBS:
        raise ValueError(f"against must be one of {sorted(BLOBS)}, got {against!r}.")
    weight = 1.2 + 0.6 * secrets.randbelow(1000) / 1000
    return HiddenBlobs(against, weight, seed=secrets.randbelow(2**31))


#: The classic mistakes :func:`make_mystery` can hide, in the order of the question's choices.
MYSTERY_BUGS = ("softmax", "batch", "target", "no-relu")

_MYSTERY_CHOICES = (
    "it differentiates the probability after the softmax instead of the score before it",
    "it averages the gradients over the batch axis as well as over the positions",
    "it ignores the target and always explains the top-scoring class",
    "it leaves out the ReLU, so the map can be negative",
)

#: What each mistake does, shown once the learner has named it.
_MYSTERY_EXPLANATIONS = {
    "softmax": "its map differs from gw.gradcam even for one image and the top class, and it "
    "nearly vanishes where the network is sure (p close to 1): the gradient of the "
    "probability is p_c (dy_c/dA - sum_j p_j dy_j/dA), a contrast with the other classes "
    "that shrinks as p_c nears 1. Differentiate the score before the softmax.",
    "batch": "for one image it agrees exactly with gw.gradcam, and in a batch every image gets "
    "the same channel weights, so each map depends on the other images: the gradients were "
    "pooled over axis 0 too. Pool over the spatial axes (2, 3) only.",
    "target": "it agrees with gw.gradcam whenever the target is the top class, and asking "
    "for another class changes nothing: the target never reaches the backward pass. Pass "
    "the class to explain to the gradient, not the prediction.",
    "no-relu": "its positive part is exactly gw.gradcam's map, and many maps go below zero: "
    "the ReLU after the weighted sum is missing, so evidence against the class shows up as "
    "negative values (and shifts a normalised picture).",
}

#: How to test each hypothesis, shown when it is the learner's (wrong) answer.
_MYSTERY_PROBES = {
    "softmax": "if it used the probability, its map would differ from gw.gradcam even for "
    "one image and the predicted class, and be tiny where the network is sure. Check that.",
    "batch": "if it pooled over the batch, one image alone would match gw.gradcam exactly, "
    "and that image's map would change when other images join the batch. Check both.",
    "target": "if it ignored the target, two different target classes would give the same "
    "map, equal to gw.gradcam's map of the top class. Check that.",
    "no-relu": "if the ReLU were missing, some maps would have negative values, and "
    "np.maximum(map, 0) would equal gw.gradcam. Check the smallest value of its maps.",
}


class Mystery:
    """Exercise 5's multiple-choice question about one hidden mistake.

    Shows the question like a :class:`Question`; :meth:`check` marks a letter. A wrong
    answer gets the probe that would have ruled it out, never the right letter.
    """

    def __init__(self, bug: str) -> None:
        if bug not in MYSTERY_BUGS:
            raise ValueError(f"unknown mistake {bug!r}: one of {MYSTERY_BUGS}.")
        self._question = Question(
            "Which mistake does mystery_gradcam make?",
            choices=_MYSTERY_CHOICES,
            answer=MYSTERY_BUGS.index(bug),
            explanation=_MYSTERY_EXPLANATIONS[bug],
        )

    def check(self, response: Any) -> Feedback:
        """Mark a choice letter ("b") or index (1)."""
        result = self._question.check(response)
        if result.passed is False and self._question.choices:
            from . import _choice_index

            index = _choice_index(response, len(self._question.choices))
            if index is not None:
                return feedback(
                    False, f"({'abcd'[index]}) is not it: {_MYSTERY_PROBES[MYSTERY_BUGS[index]]}"
                )
        return result

    def _repr_markdown_(self) -> str:
        return self._question._repr_markdown_()

    def __repr__(self) -> str:
        return repr(self._question)


def _probability_gradients(
    model: Any, inputs: Any, target: Any, layer: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """``A`` and ``dp_c/dA = p_c (g_c - sum_j p_j g_j)``, from one gradient per class."""
    from ..engine import explain

    first = explain(model, inputs, [target], layer)
    (name,) = first.layers
    logits = first.logits.astype(np.float64)
    classes = first.targets[0]
    count = logits.shape[1]
    every = explain(model, inputs, list(range(count)), layer)
    per_class = np.stack([every.gradients[j][name] for j in range(count)], axis=1)  # N,C,K,h,w
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = shifted / shifted.sum(axis=1, keepdims=True)
    rows = np.arange(len(classes))
    mixed = np.einsum("nc,nckhw->nkhw", p, per_class)
    own = per_class[rows, classes]
    gradients = p[rows, classes][:, None, None, None] * (own - mixed)
    return first.activations[name], gradients


def make_mystery(bug: str | None = None) -> tuple[Any, Mystery]:
    """A Grad-CAM with one classic mistake hidden in it, and the question about it.

    Without ``bug``, the mistake is drawn at random (from the operating system's entropy,
    so a new kernel may draw another): reading this source does not tell which one the
    lesson's :data:`mystery_gradcam` makes; probing it does. The candidates, in the order
    of :data:`MYSTERY_BUGS`: the gradient of the softmax probability instead of the score;
    gradients averaged over the batch axis too; the target ignored (always the top class);
    the final ReLU left out.

    Args:
        bug: one of :data:`MYSTERY_BUGS` (tests and teachers), or None to draw one.

    Returns:
        ``(function, question)``: ``function(model, inputs, target=None, layer=None)``
        returns maps ``(N, h, w)`` like ``gw.gradcam``; ``question.check(letter)`` marks the
        learner's diagnosis.
    """
    if bug is None:
        import secrets

        bug = MYSTERY_BUGS[secrets.randbelow(len(MYSTERY_BUGS))]
    question = Mystery(bug)
    chosen = bug

    def mystery_gradcam(
        model: Any, inputs: Any, target: int | list[int] | None = None, layer: str | None = None
    ) -> np.ndarray:
        """A Grad-CAM with one of the classic mistakes in it, for exercise 5 (diagnose it).

        Find the mistake from what the function does on inputs and targets you choose.
        """
        if chosen == "softmax":
            activations, gradients = _probability_gradients(model, inputs, target, layer)
        elif chosen == "target":
            activations, gradients = features_and_gradients(model, inputs, None, layer)
        else:
            activations, gradients = features_and_gradients(model, inputs, target, layer)
        if chosen == "batch":
            weights = np.broadcast_to(gradients.mean(axis=(0, 2, 3)), activations.shape[:2])
        else:
            weights = gradients.mean(axis=(2, 3))
        if chosen == "no-relu":
            return np.einsum("nk,nkhw->nhw", weights, activations).astype(np.float32)
        return _core.weighted_sum(activations, weights)

    return mystery_gradcam, question


#: Exercise 5: a Grad-CAM with a hidden mistake, drawn anew in each Python session, and
#: the question that marks the learner's diagnosis.
mystery_gradcam, MYSTERY = make_mystery()


def guided_verdict(correlation_after_head: float) -> str:
    """Exercise 6's truth: ``"b"`` if the map still resembles the trained one (rho > 0.5)."""
    return "b" if correlation_after_head > 0.5 else "a"


#: The end-of-lesson concept questions: each asks to predict, compute or compare, not to
#: repeat a sentence of the lesson.
QUIZ = Quiz(
    [
        Question(
            "1. Two saliency methods go through the cascading randomisation test. Method X's "
            "mean rank correlations with its trained maps, step by step: 1.0, 0.92, 0.88, 0.85, "
            "0.83. Method Y's: 1.0, 0.21, 0.10, 0.04, 0.02. Which passes the test?",
            choices=(
                "X: its maps are stable, so they are reliable",
                "Y: its maps change as soon as the weights do",
                "both: each starts at 1.0",
                "neither: a passing method would reach exactly 0",
            ),
            answer=1,
            explanation="the test asks whether the map depends on what the network learned. "
            "X's maps survive the destruction of the weights, so they cannot be explaining "
            "them (this is how Guided Backpropagation behaved); Y's follow the weights, as "
            "Grad-CAM's did.",
        ),
        Question(
            "2. Two maps of four cells: [0.1, 0.2, 0.3, 0.4] and [1, 4, 9, 100]. What is "
            "their Spearman rank correlation? (a number)",
            answer=1.0,
            tolerance=1e-6,
            explanation="both lists have the same order, so their ranks are equal and rho = 1, "
            "however different the values. Pearson's correlation of the values is only about "
            "0.82 because the 100 dominates: that is why maps, whose scales differ from model "
            "to model, are compared by rank.",
        ),
        Question(
            "3. A 10 x 10 box on a 40 x 40 canvas: with what probability does a random point "
            "hit it? (a number between 0 and 1)",
            answer=100 / 1600,
            tolerance=5e-4,
            explanation="box area over canvas area: 100 / 1600 = 0.0625.",
        ),
        Question(
            "4. A network ends conv1 -> conv2 -> global average pooling -> dense. At which "
            "layer are its Grad-CAM and HiResCAM maps identical for every image?",
            choices=("conv1", "conv2", "both", "neither"),
            answer=1,
            explanation="at conv2, the layer the pooling averages, the gradient is w_k^c / Z at "
            "every position, so averaging it changes nothing. At conv1 the gradient passes "
            "through conv2 and its ReLUs and differs from position to position.",
        ),
        Question(
            "5. Change the two-blob network: blob B's weight becomes -2 instead of -0.5 (A "
            "keeps +1; both blobs are four pixels of ink 1). What does Grad-CAM now show for "
            "class 0?",
            choices=(
                "both blobs, equally hot, as before",
                "only blob A",
                "only blob B",
                "nothing: the map is zero everywhere",
            ),
            answer=3,
            explanation="the channel's average gradient is (4 x 1 - 4 x 2) / 64 < 0, so its "
            "one weight is negative, the weighted sum is negative at both blobs, and the ReLU "
            "leaves nothing, although A still counts for class 0. HiResCAM would still show A.",
        ),
        Question(
            "6. A 'saliency method' draws, at each pixel, the largest activation of conv1 "
            "(the first convolution) over its channels, resized to the image. In the cascade of "
            "section 4 (randomise scores, then conv3, then conv2, then conv1), where does its "
            "mean rank correlation with its trained maps first fall below 1?",
            choices=(
                "at the first step, when the dense layer scores is random",
                "at the second step, when conv3 is random too",
                "only at the last step, when conv1 is random: until then it is exactly 1",
                "never: it does not use the class",
            ),
            answer=2,
            explanation="conv1's output depends only on the image and conv1's weights, and "
            "the cascade randomises from the top, so the first three steps leave the map "
            "untouched (a correlation of exactly 1) and the test fails it at the steps that "
            "matter most, as it failed Guided Backpropagation, whose map hardly changed while "
            "scores and conv3 were random. Only the last step, which leaves no trained weight, "
            "changes it; a curve like that says the map depends on the lowest layer, not on "
            "what the network learned to decide.",
        ),
        Question(
            "7. Deletion replaces the top-ranked pixels with black (0) first. Our canvases "
            "are mostly black. A map that ranks the black background highest would give "
            "which deletion curve?",
            choices=(
                "one that falls at once: a small area, like a faithful map",
                "one that stays near the original probability while black is replaced by black, "
                "and falls only when the ink is reached: a large area",
                "one that rises: deleting pixels helps the class",
                "the same curve as Grad-CAM's",
            ),
            answer=1,
            explanation="replacing a black pixel with black changes nothing, so the model's "
            "output does not move until the map's ranking reaches the ink. The area is large: "
            "the curve correctly calls this map unfaithful.",
        ),
        Question(
            "8. A paper reports that its maps hit the box in 90 % of images with a tolerance "
            "of 5 pixels, against 4 % for a random point (computed without a tolerance). What "
            "does this comparison show?",
            choices=(
                "the maps beat chance by more than 20 times",
                "too little: the random point must be scored with the same 5-pixel tolerance "
                "(grown boxes) before the two can be compared",
                "nothing: a random point cannot be a baseline",
                "that the tolerance should be 0 for the maps too, but not for the random point",
            ),
            answer=1,
            explanation="a tolerance enlarges every target, for chance too: on our canvases "
            "3 pixels raised the random point from about 6 % to about 15 %. Only scores at "
            "the same tolerance compare.",
        ),
    ]
)
