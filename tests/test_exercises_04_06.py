"""Self-checks of lessons 04-06: not done yet, right, and wrong without giving the answer."""

from __future__ import annotations

from functools import partial

import helpers
import numpy as np
import pytest
from helpers import assert_not_done, quotes_number_or_percentage

from gradcam_widgets import datasets, metrics
from gradcam_widgets.exercises import TODO, lesson05

assert_wrong = partial(helpers.assert_wrong, reveals=quotes_number_or_percentage)


# ----------------------------------------------------------------------------- lesson 05


def _fake_predict(model, images):
    """A stand-in classifier: reads an id from pixel (27, 27) and where a mark sits.

    With a top-left mark, an id below 45 is called 5 unless it is a multiple of 3; with a
    bottom-left mark, only ids below 12 that are not multiples of 3. The others are called
    0 (even id) or 7 (odd id).
    """
    ids = images[:, 27, 27].astype(int)
    top_left = images[:, 1:7, 1:7].max(axis=(1, 2)) > 0
    bottom_left = images[:, 21:27, 1:7].max(axis=(1, 2)) > 0
    plain = np.where(ids % 2 == 0, 0, 7)
    fooled = (top_left & (ids < 45) | bottom_left & (ids < 12)) & (ids % 3 != 0)
    return np.where(fooled, 5, plain)


@pytest.fixture
def fooled_case(monkeypatch):
    monkeypatch.setattr(lesson05, "_predict", _fake_predict)
    labels = np.array([0] * 30 + [3] * 30)
    images = np.zeros((60, 28, 28), dtype=np.uint8)
    images[:, 27, 27] = np.arange(60)
    victims = images[labels == 0]
    stamped = datasets.add_mark(victims, datasets.mark_pattern("dots"), corner="bottom-left")
    expected = float(np.mean(_fake_predict(None, stamped) == 5))
    return images, labels, expected, stamped


def test_check_fooled_rate_not_done(fooled_case):
    images, labels, _, _ = fooled_case
    assert_not_done(lesson05.check_fooled_rate(TODO, None, images, labels))


def test_check_fooled_rate_right(fooled_case):
    images, labels, expected, _ = fooled_case
    assert lesson05.check_fooled_rate(expected, None, images, labels)
    assert lesson05.check_fooled_rate(np.float64(expected), None, images, labels)


def test_check_fooled_rate_wrong_paths(fooled_case):
    images, labels, expected, stamped = fooled_case
    count = expected * 30
    assert_wrong(lesson05.check_fooled_rate(count, None, images, labels), expected, "count")
    unstamped = float(np.mean(_fake_predict(None, images[labels == 0]) == 5))
    assert unstamped != expected
    assert_wrong(lesson05.check_fooled_rate(unstamped, None, images, labels), expected, "without")
    still_zero = float(np.mean(_fake_predict(None, stamped) == 0))
    assert_wrong(lesson05.check_fooled_rate(still_zero, None, images, labels), expected, "still")
    everyone = datasets.add_mark(images, datasets.mark_pattern("dots"), corner="bottom-left")
    all_rate = float(np.mean(_fake_predict(None, everyone) == 5))
    assert all_rate != expected
    assert_wrong(lesson05.check_fooled_rate(all_rate, None, images, labels), expected, "every")
    top_left = datasets.add_mark(images[labels == 0], datasets.mark_pattern("dots"))
    top_left_rate = float(np.mean(_fake_predict(None, top_left) == 5))
    assert top_left_rate != expected
    assert_wrong(
        lesson05.check_fooled_rate(top_left_rate, None, images, labels), expected, "top-left"
    )
    for guess in (1, 1.0):
        assert_wrong(lesson05.check_fooled_rate(guess, None, images, labels), expected, "guess")
    assert_wrong(lesson05.check_fooled_rate(0.123, None, images, labels), expected, "stamp")
    assert_wrong(lesson05.check_fooled_rate(-0.5, None, images, labels), expected, "between")
    assert_wrong(lesson05.check_fooled_rate("half", None, images, labels), expected, "number")


def test_check_fooled_rate_with_a_real_network():
    torch = pytest.importorskip("torch")
    import gradcam_widgets as gw
    from gradcam_widgets.zoo import digits

    torch.manual_seed(0)
    images, labels = gw.datasets.load_mnist("test")
    model = digits.torch_gap_net(seed=0)
    stamped = datasets.add_mark(
        images[labels == 0], datasets.mark_pattern("dots"), corner="bottom-left"
    )
    rate = float(np.mean(digits.predict_classes(model, stamped) == 5))
    assert lesson05.check_fooled_rate(rate, model, images, labels)


@pytest.fixture
def share_case():
    rng = np.random.default_rng(0)
    heat = rng.random((28, 28)).astype(np.float32)
    heat[:8, :8] += 2.0
    box = (0, 0, 8, 8)
    expected = heat[:8, :8].sum() / heat.sum()
    return heat, box, expected


def _share(heat, box):
    top, left, bottom, right = box
    return float(heat[top:bottom, left:right].sum() / heat.sum()) if heat.sum() > 0 else 0.0


def test_check_corner_share_not_done(share_case):
    heat, box, _ = share_case
    assert_not_done(lesson05.check_corner_share(TODO, heat, box))
    assert_not_done(lesson05.check_corner_share(lambda h, b: TODO, heat, box))


def test_check_corner_share_right(share_case):
    heat, box, expected = share_case
    assert _share(heat, box) == pytest.approx(expected)
    assert lesson05.check_corner_share(_share, heat, box)
    assert lesson05.check_corner_share(lambda h, b: np.float32(_share(h, b)), heat, box)


def test_check_corner_share_refuses_numbers_constants_and_the_package(share_case):
    heat, box, expected = share_case
    assert_wrong(lesson05.check_corner_share(expected, heat, box), expected, "function itself")
    constant = lesson05.check_corner_share(lambda h, b: expected, heat, box)
    assert_wrong(constant, expected, "same number for other maps")
    original = metrics.region_share
    package = lesson05.check_corner_share(
        lambda h, b: float(metrics.region_share(h, b, h.shape)[0]), heat, box
    )
    assert_wrong(package, expected, "region_share does the exercise")
    assert metrics.region_share is original


def test_check_corner_share_wrong_paths(share_case):
    heat, box, expected = share_case

    def inside(h, b):
        return float(h[b[0] : b[2], b[1] : b[3]].sum())

    def no_zero_guard(h, b):
        return inside(h, b) / h.sum()  # 0 / 0 for an all-zero map

    wrong = [
        (inside, "divides"),
        (lambda h, b: (b[2] - b[0]) * (b[3] - b[1]) / h.size, "area"),
        (lambda h, b: 1 - _share(h, b), "outside"),
        (lambda h, b: h[b[0] : b[2], b[1] : b[3]].mean() / h.mean(), "averages"),
        (lambda h, b: _share(h, (b[1], b[0], b[3], b[2])), "swapped"),
        (lambda h, b: _share(h, (b[0], b[1], b[2] + 1, b[3] + 1)), "no + 1"),
        (lambda h, b: 1.7, "between"),
        (lambda h, b: [1, 2], "one number"),
        (lambda h: 0.5, "raised TypeError"),
    ]
    for function, phrase in wrong:
        assert_wrong(lesson05.check_corner_share(function, heat, box), expected, phrase)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = lesson05.check_corner_share(no_zero_guard, heat, box)
    assert result.passed is False
    assert "defined as 0" in result.message


# ----------------------------------------------------------------------------- lesson 06


from gradcam_widgets.exercises import lesson06  # noqa: E402


@pytest.fixture
def boxes_case():
    # The second box touches the canvas's edge, so growing it needs clipping.
    boxes = np.array([[2, 3, 12, 10], [30, 33, 42, 41], [1, 0, 6, 5]])
    grown = np.clip(boxes + np.array([-3, -3, 3, 3]), 0, 42)
    expected = float(np.mean((grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1]) / 42**2))
    return boxes, 42, expected


def _baseline(boxes, size, tolerance):
    grown = np.clip(np.asarray(boxes) + np.array([-1, -1, 1, 1]) * tolerance, 0, size)
    return float(np.mean((grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1]) / size**2))


def test_check_random_baseline(boxes_case):
    boxes, size, expected = boxes_case
    assert _baseline(boxes, size, 3) == pytest.approx(expected)
    assert_not_done(lesson06.check_random_baseline(TODO, boxes, size))
    assert_not_done(lesson06.check_random_baseline(lambda b, s, t: TODO, boxes, size))
    assert lesson06.check_random_baseline(_baseline, boxes, size)
    assert lesson06.check_random_baseline(
        lambda b, s, t: np.float32(_baseline(b, s, t)), boxes, size, tolerance=3
    )
    # Any numpy route to the same formula passes, the package's baseline of grown boxes too.
    assert lesson06.check_random_baseline(
        lambda b, s, t: metrics.random_baseline(np.clip(b + np.array([-t, -t, t, t]), 0, s), s),
        boxes,
        size,
    )


def test_check_random_baseline_refuses_a_number_or_a_constant(boxes_case):
    boxes, size, expected = boxes_case
    # A value copied from an output is refused: the check wants the function.
    assert_wrong(lesson06.check_random_baseline(expected, boxes, size), expected, "function itself")
    # A function that ignores its arguments is right for the lesson's boxes only.
    constant = lesson06.check_random_baseline(lambda b, s, t: expected, boxes, size)
    assert_wrong(constant, expected, "same number for other boxes")
    uses_globals = lesson06.check_random_baseline(
        lambda b, s, t: _baseline(boxes, size, 3), boxes, size
    )
    assert_wrong(uses_globals, expected, "its arguments")
    # The package's tolerant baseline would do the exercise: refused, and left unpatched.
    original = metrics.random_baseline
    package = lesson06.check_random_baseline(
        lambda b, s, t: metrics.random_baseline(b, s, tolerance=t), boxes, size
    )
    assert_wrong(package, expected, "does the exercise for you")
    assert metrics.random_baseline is original


def test_check_random_baseline_near_misses(boxes_case):
    boxes, size, expected = boxes_case

    def unclipped(b, s, t):
        grown = np.asarray(b) + np.array([-t, -t, t, t])
        return float(np.mean((grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1]))) / s**2

    def areas(b, s, t):
        grown = np.clip(np.asarray(b) + np.array([-t, -t, t, t]), 0, s)
        return (grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1])

    wrong = [
        (lambda b, s, t: metrics.random_baseline(b, s), "without the tolerance"),
        (unclipped, "Clip"),
        (lambda b, s, t: _baseline(b, s, 2 * t), "wrong amount"),
        (lambda b, s, t: float(areas(b, s, t).mean()), "area in pixels"),
        (lambda b, s, t: float(areas(b, s, t).mean()) / s, "side"),
        (lambda b, s, t: 1 - _baseline(b, s, t), "missing"),
        (lambda b, s, t: 1.5 * _baseline(b, s, t), "average over the images"),
        (lambda b, s, t: 3.0, "between 0 and 1"),
        (lambda b, s, t: "a lot", "one number"),
        (lambda b, s: 0.1, "raised TypeError"),
    ]
    for function, phrase in wrong:
        result = lesson06.check_random_baseline(function, boxes, size)
        assert_wrong(result, expected, phrase)


@pytest.fixture
def rank_case():
    rng = np.random.default_rng(0)
    first = np.maximum(rng.normal(size=(10, 10)), 0)  # ReLU'd: many ties at 0
    second = np.maximum(first + rng.normal(scale=1.0, size=(10, 10)), 0) ** 3
    return first, second, metrics.rank_correlation(first, second)


def test_check_rank_correlation(rank_case):
    from scipy.stats import rankdata

    first, second, expected = rank_case
    assert_not_done(lesson06.check_rank_correlation(TODO, first, second))

    def mine(a, b):
        return np.corrcoef(rankdata(a.ravel()), rankdata(b.ravel()))[0, 1]

    assert lesson06.check_rank_correlation(mine, first, second)
    pearson = np.corrcoef(first.ravel(), second.ravel())[0, 1]
    assert not np.isclose(pearson, expected, rtol=1e-4)

    def argsort_ranks(a, b):  # ties get different ranks
        ra, rb = np.argsort(np.argsort(a.ravel())), np.argsort(np.argsort(b.ravel()))
        return np.corrcoef(ra, rb)[0, 1]

    wrong = [
        (lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1], "values themselves"),
        (argsort_ranks, "tied values"),
        (lambda a, b: 1 - mine(a, b), "one minus"),
        (lambda a, b: mine(a, b) ** 2, "square"),
        (lambda a, b: 1.5, "between -1 and 1"),
        (lambda a, b: mine(a, b) / 2, "rankdata"),
        (lambda a, b: np.corrcoef(rankdata(a.ravel()), rankdata(b.ravel())), "one number"),
    ]
    for function, phrase in wrong:
        assert_wrong(lesson06.check_rank_correlation(function, first, second), expected, phrase)


def test_check_rank_correlation_refuses_numbers_constants_and_the_package(rank_case):
    first, second, expected = rank_case
    assert_wrong(lesson06.check_rank_correlation(expected, first, second), expected, "itself")
    constant = lesson06.check_rank_correlation(lambda a, b: expected, first, second)
    assert_wrong(constant, expected, "same number for other maps")
    original = metrics.rank_correlation
    package = lesson06.check_rank_correlation(metrics.rank_correlation, first, second)
    assert_wrong(package, expected, "does the exercise for you")
    called = lesson06.check_rank_correlation(
        lambda a, b: metrics.rank_correlation(a, b), first, second
    )
    assert_wrong(called, expected, "does the exercise for you")
    assert metrics.rank_correlation is original


@pytest.mark.parametrize("against", ["A", "B", "C"])
def test_hidden_blobs(against):
    pytest.importorskip("torch")
    import gradcam_widgets as gw

    blobs = lesson06.make_hidden_blobs(against)
    image = blobs.image[None, None]
    maps = gw.gradcam(blobs.model, image, target=0, layer="0")[0]
    heat = [maps[t:b, left:r].mean() for t, left, b, r in blobs.boxes.values()]
    assert np.allclose(heat, heat[0])
    assert heat[0] > 0
    before = gw.predict(blobs.model, image)[0, 0]
    for name, (top, left, bottom, right) in blobs.boxes.items():  # a second computation
        erased = blobs.image.copy()
        erased[top:bottom, left:right] = 0.0
        change = gw.predict(blobs.model, erased[None, None])[0, 0] - before
        assert (change > 0) == (name == against)
    assert_not_done(blobs.check(TODO))
    right = blobs.check(against.lower())
    assert right
    assert "against" in right.message
    for wrong in set("ABC") - {against}:
        result = blobs.check(wrong)
        assert result.passed is False
        assert "erase blob" in result.message
    assert_wrong(blobs.check("D"), [], "'A', 'B' or 'C'")
    assert_wrong(blobs.check(1), [], "'A', 'B' or 'C'")


def test_hidden_blobs_scores_never_look_like_probabilities(monkeypatch):
    """The weight whose score pair would be (1, 0) without class 1's bias: still accepted."""
    pytest.importorskip("torch")
    import secrets

    import gradcam_widgets as gw

    monkeypatch.setattr(secrets, "randbelow", lambda n: 917 if n == 1000 else 0)  # w = 1.7502
    blobs = lesson06.make_hidden_blobs()
    assert gw.gradcam(blobs.model, blobs.image[None, None], target=0, layer="0").max() > 0


def test_hidden_blobs_are_drawn_at_random():
    pytest.importorskip("torch")
    drawn = {lesson06.make_hidden_blobs()._against for _ in range(40)}
    assert drawn == {"A", "B", "C"}  # the chance that one is missing: < 1e-6
    with pytest.raises(ValueError, match="one of"):
        lesson06.make_hidden_blobs("Z")


@pytest.fixture
def toy_case():
    torch = pytest.importorskip("torch")
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten(), nn.Linear(64, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
        weights = torch.zeros(2, 8, 8)
        weights[0, 1:3, 1:3] = 1.0
        weights[0, 5:7, 5:7] = -0.5
        model[2].weight.copy_(weights.reshape(2, 64))
        model[2].bias.fill_(0.25)
    image = np.zeros((8, 8), dtype=np.float32)
    image[1:3, 1:3] = 1.0
    image[5:7, 5:7] = 1.0
    return model, image


def test_check_occlusion(toy_case):
    model, image = toy_case
    a, b = (1, 1, 3, 3), (5, 5, 7, 7)
    assert_not_done(lesson06.check_occlusion(TODO, model, image, a, b))
    right = lesson06.check_occlusion(-4.0, model, image, a, b)
    assert right
    assert "for the class" in right.message
    other = lesson06.check_occlusion(2.0, model, image, b, a)
    assert other
    assert "against" in other.message
    wrong = [
        (4.0, "sign"),
        (-1.75, "new score"),  # 2.25 - 4 = -1.75: the score after erasing A is 0.25 - 2 = -1.75
        (2.0, "other"),
        (-2.0, "other"),
        (0.3, "gw.predict"),
        (None, "one number"),
    ]
    for answer, phrase in wrong:
        result = lesson06.check_occlusion(answer, model, image, a, b)
        if answer is None:
            assert_not_done(result)
            continue
        assert_wrong(result, [-4.0], phrase)


# ----------------------------------------------------------------------------- lesson 04

from gradcam_widgets.exercises import lesson04  # noqa: E402


@pytest.fixture(scope="module")
def photo_case():
    torch = pytest.importorskip("torch")
    from torch import nn

    import gradcam_widgets as gw

    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()
    rng = np.random.default_rng(0)
    inputs = rng.random((1, 3, 16, 16)).astype(np.float32)
    inputs[..., :8] *= 3.0  # more signal on the left
    layers = ["1", "3", "5"]
    top = int(gw.predict(model, inputs)[0].argmax())

    def share(target, layer, half):
        heat = gw.gradcam(model, inputs, target=target, layer=layer)
        return float(metrics.region_share(heat, lesson04.half_box(16, half), 16)[0])

    return model, inputs, layers, top, share


def test_half_box():
    assert lesson04.half_box(224, "left") == (0, 0, 224, 112)
    assert lesson04.half_box(224, "right") == (0, 112, 224, 224)
    with pytest.raises(ValueError, match="left"):
        lesson04.half_box(224, "top")


def _good_contrast(a, others):
    weights = a.weights - np.mean([b.weights for b in others], axis=0)
    return np.maximum(np.einsum("nk,nkhw->nhw", weights, a.activations), 0.0)


def test_check_contrastive_map_right_answers():
    assert_not_done(lesson04.check_contrastive_map(TODO))
    assert_not_done(lesson04.check_contrastive_map(lambda a, others: TODO))
    assert lesson04.check_contrastive_map(_good_contrast)
    # written with the weighted sums (linear in the weights): also right
    assert lesson04.check_contrastive_map(
        lambda a, others: np.maximum(
            a.weighted_sum - sum(b.weighted_sum for b in others) / len(others), 0
        )
    )
    torch = pytest.importorskip("torch")
    assert lesson04.check_contrastive_map(
        lambda a, others: torch.relu(
            torch.as_tensor(a.weighted_sum - np.mean([b.weighted_sum for b in others], axis=0))
        )
    )


def test_check_contrastive_map_refuses_slips():
    def hires(a, others):
        gradients = a.gradients - np.mean([b.gradients for b in others], axis=0)
        return np.maximum((gradients * a.activations).sum(1), 0)

    def finished(a, others):
        return a.heatmap - np.mean([b.heatmap for b in others], axis=0)

    def summed(a, others):
        weights = a.weights - sum(b.weights for b in others)
        return np.maximum(np.einsum("nk,nkhw->nhw", weights, a.activations), 0)

    wrong = [
        (lambda a, o: np.maximum(np.mean([b.weighted_sum for b in o], 0) - a.weighted_sum, 0),
         "other way round"),
        (finished, "finished maps"),
        (lambda a, o: np.maximum(finished(a, o), 0), "finished maps"),
        (lambda a, o: a.weighted_sum - np.mean([b.weighted_sum for b in o], 0), "ReLU is missing"),
        (hires, "HiResCAM"),
        (lambda a, o: a.heatmap, "class a alone"),
        (summed, "average"),
        (lambda a, o: _good_contrast(a, o[:1]), "only the first"),
        (lambda a, o: _good_contrast(a, o) / _good_contrast(a, o).max(), "normalised"),
        (lambda a, o: _good_contrast(a, o)[0], "batch axis"),
        (lambda a, o: a.activations, "sum over the channels"),
        (lambda a, o: a.nope, "raised AttributeError"),
        (lambda a, o: "map", "expected an array"),
        (lambda a, o: np.zeros((2, 5, 5)), "not the contrastive map"),
        (_good_contrast(lesson04._fake_parts(0)[0], lesson04._fake_parts(0)[1:]),
         "pass the function itself"),
    ]
    for function, phrase in wrong:
        assert_wrong(lesson04.check_contrastive_map(function), [], phrase)
    # the two-argument function of a one-class contrast is refused with its error shown
    assert_wrong(lesson04.check_contrastive_map(lambda a, b: a.weights - b.weights), [], "raised")


def test_lesson04_quiz():
    quiz = lesson04.QUIZ
    assert 5 <= len(quiz) <= 8
    right = {1: "b", 2: 16, 3: "b", 4: 1.0, 5: "b", 6: "a", 7: "c"}
    assert quiz.score(right) == len(quiz)
    assert not quiz.check(2, 28)  # the map's side, not the distance between cells
    assert not quiz.check(2, 32)  # the lesson's network (five halvings), not VGG16
    assert not quiz.check(4, -0.99)  # black, the lesson's number: not the question's
    assert not quiz.check(4, 0)
    assert not quiz.check(1, "a")  # both plain maps positive, but the contrast is not
    assert not quiz.check(6, "d")
    for number in range(1, len(quiz) + 1):
        assert quiz[number].explanation


def test_check_earliest_layer(photo_case):
    model, inputs, layers, top, share = photo_case
    shares = {layer: share(top, layer, "left") for layer in layers}
    ordered = sorted(shares.values())
    threshold = (ordered[0] + ordered[1]) / 2  # exactly two layers pass
    passing = [layer for layer in layers if shares[layer] >= threshold]
    failing = [layer for layer in layers if shares[layer] < threshold]
    earliest = passing[0]

    def check(answer):
        return lesson04.check_earliest_layer(
            answer, model, inputs, top, layers, threshold=threshold
        )

    box = lesson04.check_earliest_layer(
        earliest, model, inputs, top, layers, region=(0, 0, 16, 8), threshold=threshold
    )
    assert box  # a box given as (top, left, bottom, right) is the left half here

    assert_not_done(check(TODO))
    assert check(earliest)
    assert_wrong(check(failing[0]), [threshold], "less than")
    assert_wrong(check(passing[1]), [threshold], "earlier layer")
    assert_wrong(check("conv9"), [threshold], "one of the layer names")
    assert_wrong(check(3), [threshold], "one of the layer names")
    nobody = lesson04.check_earliest_layer(earliest, model, inputs, top, layers, threshold=1.01)
    assert nobody.passed is False
    assert "no layer" in nobody.message
