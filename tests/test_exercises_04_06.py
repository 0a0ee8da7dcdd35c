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


def test_check_corner_share_not_done(share_case):
    heat, box, _ = share_case
    assert_not_done(lesson05.check_corner_share(TODO, heat, box))


def test_check_corner_share_right(share_case):
    heat, box, expected = share_case
    assert lesson05.check_corner_share(expected, heat, box)
    assert lesson05.check_corner_share(float(metrics.region_share(heat, box, 28)[0]), heat, box)


def test_check_corner_share_wrong_paths(share_case):
    heat, box, expected = share_case
    wrong = [
        (heat[:8, :8].sum(), "divides"),
        (64 / 784, "area"),
        (1 - expected, "outside"),
        (heat[:8, :8].mean() / heat.mean(), "averages"),
        (heat[:8, 20:].sum() / heat.sum(), "heat[top:bottom"),
        (1.7, "between"),
        ([1, 2], "number"),
    ]
    for answer, phrase in wrong:
        assert_wrong(lesson05.check_corner_share(answer, heat, box), expected, phrase)


# ----------------------------------------------------------------------------- lesson 06


from gradcam_widgets.exercises import lesson06  # noqa: E402


@pytest.fixture
def boxes_case():
    # The second box touches the canvas's edge, so growing it needs clipping.
    boxes = np.array([[2, 3, 12, 10], [30, 33, 42, 41], [1, 0, 6, 5]])
    grown = np.clip(boxes + np.array([-3, -3, 3, 3]), 0, 42)
    expected = float(np.mean((grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1]) / 42**2))
    return boxes, 42, expected


def test_check_random_baseline(boxes_case):
    boxes, size, expected = boxes_case
    assert_not_done(lesson06.check_random_baseline(TODO, boxes, size))
    assert lesson06.check_random_baseline(expected, boxes, size)
    assert lesson06.check_random_baseline(np.float32(expected), boxes, size, tolerance=3)
    unclipped = boxes + np.array([-3, -3, 3, 3])
    unclipped_areas = (unclipped[:, 2] - unclipped[:, 0]) * (unclipped[:, 3] - unclipped[:, 1])
    grown = np.clip(unclipped, 0, size)
    areas = (grown[:, 2] - grown[:, 0]) * (grown[:, 3] - grown[:, 1])
    twice = np.clip(boxes + np.array([-6, -6, 6, 6]), 0, size)
    wrong = [
        (metrics.random_baseline(boxes, size), "without the tolerance"),
        (unclipped_areas.mean() / size**2, "Clip"),
        (np.mean((twice[:, 2] - twice[:, 0]) * (twice[:, 3] - twice[:, 1])) / size**2, "wrong"),
        (areas.mean(), "area in pixels"),
        (areas.mean() / size, "side"),
        (1 - expected, "missing"),
        (expected * 1.5, "average over the images"),
        (3.0, "between 0 and 1"),
        ("a lot", "one number"),
    ]
    for answer, phrase in wrong:
        assert_wrong(lesson06.check_random_baseline(answer, boxes, size), expected, phrase)


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
    mine = np.corrcoef(rankdata(first.ravel()), rankdata(second.ravel()))[0, 1]
    assert lesson06.check_rank_correlation(mine, first, second)
    pearson = np.corrcoef(first.ravel(), second.ravel())[0, 1]
    assert not np.isclose(pearson, expected, rtol=1e-4)
    wrong = [
        (pearson, "values themselves"),
        (1 - expected, "one minus"),
        (expected**2, "square"),
        (1.5, "between -1 and 1"),
        (expected / 2, "rankdata"),
    ]
    for answer, phrase in wrong:
        assert_wrong(lesson06.check_rank_correlation(answer, first, second), expected, phrase)


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


def _good_contrast(a, b):
    return np.maximum(np.einsum("nk,nkhw->nhw", a.weights - b.weights, a.activations), 0.0)


def test_check_contrastive_map_right_answers():
    assert_not_done(lesson04.check_contrastive_map(TODO))
    assert_not_done(lesson04.check_contrastive_map(lambda a, b: TODO))
    assert lesson04.check_contrastive_map(_good_contrast)
    # written with the weighted sums and the gradients directly: also right
    assert lesson04.check_contrastive_map(
        lambda a, b: np.maximum(
            (a.gradients.mean(axis=(2, 3)) - b.gradients.mean(axis=(2, 3)))[:, :, None, None]
            .__mul__(a.activations)
            .sum(axis=1),
            0,
        )
    )
    torch = pytest.importorskip("torch")
    assert lesson04.check_contrastive_map(
        lambda a, b: torch.relu(torch.as_tensor(a.weighted_sum - b.weighted_sum))
    )


def test_check_contrastive_map_refuses_slips():
    hires = lambda a, b: np.maximum(((a.gradients - b.gradients) * a.activations).sum(1), 0)  # noqa: E731
    wrong = [
        (lambda a, b: _good_contrast(b, a), "other way round"),
        (lambda a, b: a.heatmap - b.heatmap, "finished maps"),
        (lambda a, b: np.maximum(a.heatmap - b.heatmap, 0), "finished maps"),
        (lambda a, b: a.weighted_sum - b.weighted_sum, "ReLU is missing"),
        (hires, "HiResCAM"),
        (lambda a, b: a.heatmap, "class a alone"),
        (lambda a, b: _good_contrast(a, b) / _good_contrast(a, b).max(), "normalised"),
        (lambda a, b: _good_contrast(a, b)[0], "batch axis"),
        (lambda a, b: a.activations, "sum over the channels"),
        (lambda a, b: a.nope, "raised AttributeError"),
        (lambda a, b: "map", "expected an array"),
        (lambda a, b: np.zeros((2, 5, 5)), "not the contrastive map"),
        (_good_contrast(*lesson04._fake_parts(0)), "pass the function itself"),
    ]
    for function, phrase in wrong:
        assert_wrong(lesson04.check_contrastive_map(function), [], phrase)


def test_colleague_gradcam_and_diagnosis(photo_case):
    import gradcam_widgets as gw

    model, inputs, _layers, _top, _share = photo_case
    one = lesson04.colleague_gradcam(model, inputs, target=1, layer="3")
    np.testing.assert_allclose(one, gw.gradcam(model, inputs, target=1, layer="3"), rtol=1e-5)
    batch = np.concatenate([inputs, inputs[:, :, ::-1] * 0.5])
    theirs = lesson04.colleague_gradcam(model, batch, target=1, layer="3")
    ours = gw.gradcam(model, batch, target=1, layer="3")
    assert not np.allclose(theirs, ours, rtol=1e-3)  # the hidden slip shows in a batch
    # right before global average pooling every image has the same gradient w / Z, so
    # there the slip changes nothing: the lesson asks about an earlier layer
    at_gap = lesson04.colleague_gradcam(model, batch, target=1, layer="5")
    np.testing.assert_allclose(at_gap, gw.gradcam(model, batch, target=1, layer="5"), rtol=1e-5)
    assert_not_done(lesson04.check_diagnosis(TODO))
    assert lesson04.check_diagnosis("b")
    assert lesson04.check_diagnosis("(B)")
    for letter, phrase in [("a", "one image alone"), ("c", "smallest"), ("d", "shapes"),
                           ("e", "kernel"), ("f", "letters")]:
        assert_wrong(lesson04.check_diagnosis(letter), [], phrase)


def test_lesson04_quiz():
    quiz = lesson04.QUIZ
    assert 5 <= len(quiz) <= 8
    right = {1: "b", 2: 32, 3: "c", 4: -0.99, 5: "a", 6: "d", 7: "c"}
    assert quiz.score(right) == len(quiz)
    assert not quiz.check(2, 7)
    assert not quiz.check(4, 0)
    assert not quiz.check(1, "a")
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
