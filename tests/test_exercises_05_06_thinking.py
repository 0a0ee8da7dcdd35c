"""The exercises of lessons 05 and 06 that need thinking, and their concept questions.

Each checker is tried with the right answer, with near misses (each gets its own hint,
which never quotes the answer) and with the forbidden shortcuts.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets import _core, datasets
from gradcam_widgets.exercises import (
    _PREDICTIONS,
    TODO,
    Question,
    Quiz,
    lesson05,
    lesson06,
    predict_then_run,
    record_prediction,
)


def assert_wrong(result, *phrases):
    assert result.passed is False, repr(result)
    for phrase in phrases:
        assert phrase in result.message, result.message


# ----------------------------------------------------------------- lesson 05, exercise 3


def test_stroke_verdict():
    assert lesson05.stroke_verdict(0.41, 0.88) == "b"
    assert lesson05.stroke_verdict(0.83, 0.88) == "a"
    assert lesson05.stroke_verdict(0.99, 0.80) == "c"


def test_predict_then_run_round_trip():
    _PREDICTIONS.pop("05-stroke-share", None)
    assert predict_then_run("05-stroke-share", "b").passed is None
    assert record_prediction("05-stroke-share", TODO).passed is None
    assert record_prediction("05-stroke-share", "a")
    assert not predict_then_run("05-stroke-share", lesson05.stroke_verdict(0.41, 0.88))
    record_prediction("05-stroke-share", "B ")
    assert predict_then_run("05-stroke-share", lesson05.stroke_verdict(0.41, 0.88))


# ----------------------------------------------------------------- lesson 05, exercise 4


@pytest.fixture(scope="module")
def digits_case():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 200)
    images = rng.integers(0, 256, size=(len(labels), 28, 28)).astype(np.uint8)
    images[:, :8, :8] = 0
    return images, labels


def stamp(images, chosen, which):
    out = images.copy()
    for index, name in enumerate(datasets.DEFAULT_MARKS.values()):
        picked = chosen & (which == index)
        out[picked] = datasets.add_mark(images[picked], datasets.mark_pattern(name))
    return out


def test_fair_marks_right(digits_case):
    images, labels = digits_case
    rng = np.random.default_rng(1)
    fair = stamp(images, rng.random(len(labels)) < 0.5, rng.integers(0, 3, len(labels)))
    assert lesson05.check_fair_marks(fair, images, labels)
    assert lesson05.check_fair_marks(TODO, images, labels).passed is None


def test_fair_marks_refuses_the_shortcuts(digits_case):
    images, labels = digits_case
    # The lesson's own shortcut data: marks only on 2, 5 and 8.
    original, _ = datasets.make_shortcut_dataset(images, labels)
    assert_wrong(lesson05.check_fair_marks(original, images, labels), "original shortcut")
    # Section 5's fix instead of the design: no marks at all.
    assert_wrong(lesson05.check_fair_marks(images.copy(), images, labels), "section 5")
    # Marks on every class, but which mark depends on the label: still a shortcut.
    by_label = stamp(images, np.ones(len(labels), bool), labels % 3)
    assert_wrong(lesson05.check_fair_marks(by_label, images, labels), "more frequent")
    # Marks on random images, but only the even classes.
    rng = np.random.default_rng(2)
    even = stamp(
        images, (labels % 2 == 0) & (rng.random(len(labels)) < 0.6), rng.integers(0, 3, len(labels))
    )
    assert_wrong(lesson05.check_fair_marks(even, images, labels), "more frequent")


def test_fair_marks_near_misses(digits_case):
    images, labels = digits_case
    rng = np.random.default_rng(3)
    few = stamp(images, rng.random(len(labels)) < 0.03, rng.integers(0, 3, len(labels)))
    assert_wrong(lesson05.check_fair_marks(few, images, labels), "one image in ten")
    moved = images.copy()
    moved[:, 21:27, 1:7] = datasets.mark_pattern("dots")
    assert_wrong(lesson05.check_fair_marks(moved, images, labels), "outside")
    squares = images.copy()
    squares[:50, 1:7, 1:7] = 255
    assert_wrong(lesson05.check_fair_marks(squares, images, labels), "other than")
    assert_wrong(lesson05.check_fair_marks(images[:10], images, labels), "shaped like")


class FakeNet:
    """Stands in for a network: check_map_moved only passes it to the patched helpers."""

    def forward(self, x):  # pragma: no cover - never called
        raise AssertionError


@pytest.fixture
def moved_case(monkeypatch):
    """Maps and predictions under the test's control."""
    state = {"corner": 0.0, "right": 1.0}

    def fake_gradcam(model, inputs, target, layer):
        n = len(target)
        maps = np.full((n, 14, 14), 1.0, dtype=np.float32)
        maps[:, :4, :4] = state["corner"]
        return maps

    def fake_predict(model, images):
        count = len(images)
        right = round(state["right"] * count)
        return np.array([2] * right + [7] * (count - right))

    import gradcam_widgets.engine as engine

    monkeypatch.setattr(engine, "gradcam", fake_gradcam)
    monkeypatch.setattr(lesson05, "_predict", fake_predict)
    clean = np.zeros((20, 28, 28), dtype=np.uint8)
    clean_labels = np.array([2] * 20)
    marked = clean[:5]
    return state, marked, clean_labels[:5], clean, clean_labels


def test_map_moved(moved_case):
    state, marked, marked_labels, clean, clean_labels = moved_case
    args = (marked, marked_labels, clean, clean_labels)
    assert lesson05.check_map_moved(TODO, *args).passed is None
    assert lesson05.check_map_moved(FakeNet(), *args)
    state["corner"] = 200.0  # the shortcut network: the corner holds most of the map
    assert_wrong(lesson05.check_map_moved(FakeNet(), *args), "still reads the marks")
    state["corner"], state["right"] = 0.0, 0.3
    assert_wrong(lesson05.check_map_moved(FakeNet(), *args), "recognises few")
    state["corner"], state["right"] = 3.0, 1.0
    assert_wrong(lesson05.check_map_moved(FakeNet(), *args), "moved partly")
    assert_wrong(lesson05.check_map_moved(0.05, *args), "trained network")


# ----------------------------------------------------------------- lesson 06, exercise 4


def hirescam(a, g):
    return np.maximum((g * a).sum(axis=1), 0)


def gradcam_pp(a, g):
    s = a.sum(axis=(2, 3), keepdims=True)
    denominator = 2 * g**2 + s * g**3
    alpha = np.where(denominator != 0, g**2 / np.where(denominator != 0, denominator, 1), 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
    return np.maximum(np.einsum("nk,nkhw->nhw", w, a), 0)


def real_arrays():
    rng = np.random.default_rng(5)
    a = np.maximum(rng.normal(size=(2, 3, 4, 4)), 0).astype(np.float32)
    g = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    return a, g


def test_hirescam_by_hand():
    a, g = real_arrays()
    assert lesson06.check_hirescam(TODO).passed is None
    assert lesson06.check_hirescam(lambda A, G: TODO, a, g).passed is None
    assert lesson06.check_hirescam(hirescam, a, g)
    assert lesson06.check_hirescam(hirescam)
    slips = [
        (lambda a, g: (g * a).sum(axis=1), "negative"),
        (lambda a, g: _core.weighted_sum(a, _core.gradcam_weights(a, g)), "Grad-CAM"),
        (lambda a, g: np.maximum((np.abs(g) * a).sum(axis=1), 0), "sign"),
        (lambda a, g: np.maximum((g * a).sum(axis=0), 0), "batch axis"),
        (lambda a, g: np.maximum((g * a).mean(axis=1), 0), "not HiResCAM"),
        (lambda a, g: 1 / 0, "ZeroDivisionError"),
    ]
    for function, phrase in slips:
        assert_wrong(lesson06.check_hirescam(function, a, g), phrase)
    assert_wrong(lesson06.check_hirescam(hirescam(a, g)), "function itself")


def test_hirescam_cannot_be_passed_with_the_lesson_maps_alone():
    """A function that returns the lesson's maps (e.g. from gw.gradcam) fails the made-up arrays."""
    a, g = real_arrays()
    lesson_maps = hirescam(a, g)
    assert_wrong(lesson06.check_hirescam(lambda A, G: lesson_maps, a, g), "(N, h, w)")

    def in_place(a, g):
        g *= 1.0
        g[...] = g
        a += 0.0
        a[0, 0, 0, 0] += 1.0
        return hirescam(a, g)

    assert_wrong(lesson06.check_hirescam(in_place, a, g), "in place")


def test_gradcam_plus_plus_by_hand():
    a, g = real_arrays()
    assert lesson06.check_gradcam_plus_plus(TODO).passed is None
    assert lesson06.check_gradcam_plus_plus(lambda A, G: TODO, a, g).passed is None
    assert lesson06.check_gradcam_plus_plus(gradcam_pp, a, g)
    np.testing.assert_allclose(
        gradcam_pp(a, g), _core.weighted_sum(a, _core.gradcam_plus_plus_weights(a, g)), rtol=1e-5
    )

    def no_relu_on_g(a, g):
        s = a.sum(axis=(2, 3), keepdims=True)
        d = 2 * g**2 + s * g**3
        alpha = np.where(d != 0, g**2 / np.where(d != 0, d, 1), 0)
        return np.maximum(np.einsum("nk,nkhw->nhw", (alpha * g).sum(axis=(2, 3)), a), 0)

    def unsafe_division(a, g):
        s = a.sum(axis=(2, 3), keepdims=True)
        with np.errstate(all="ignore"):
            alpha = g**2 / (2 * g**2 + s * g**3)
        w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
        return np.maximum(np.einsum("nk,nkhw->nhw", w, a), 0)

    def local_sum(a, g):
        d = 2 * g**2 + a * g**3
        alpha = np.where(d != 0, g**2 / np.where(d != 0, d, 1), 0)
        w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
        return np.maximum(np.einsum("nk,nkhw->nhw", w, a), 0)

    slips = [
        (no_relu_on_g, "ReLU(g)"),
        (unsafe_division, "NaN"),
        (local_sum, "sum of A^k over all positions"),
        (lambda a, g: _core.weighted_sum(a, _core.gradcam_weights(a, g)), "Grad-CAM"),
        (lambda a, g: hirescam(a, g), "not Grad-CAM++"),
    ]
    for function, phrase in slips:
        assert_wrong(lesson06.check_gradcam_plus_plus(function, a, g), phrase)


# ----------------------------------------------------------------- lesson 06, exercise 5


def _mystery_net():
    torch = pytest.importorskip("torch")

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(3 * 5 * 5, 6),
        torch.nn.ReLU(),  # a non-linear head: each image has its own gradients
        torch.nn.Linear(6, 4),
    )
    return net, torch.randn(3, 1, 5, 5)


def _same(a, b):
    return np.allclose(a, b, rtol=1e-4, atol=1e-6)


def _probes(function, net, x):
    """What a learner can find out by probing: the answers that tell the mistakes apart."""
    import gradcam_widgets as gw

    top = gw.predict(net, x).argmax(axis=1)
    other = [int((c + 1) % 4) for c in top]
    return {
        "one image": all(
            _same(function(net, x[i : i + 1], layer="1"), gw.gradcam(net, x[i : i + 1], layer="1"))
            for i in range(len(x))
        ),
        "batch": _same(function(net, x, layer="1"), gw.gradcam(net, x, layer="1")),
        "other class": _same(
            function(net, x, target=other, layer="1"), gw.gradcam(net, x, target=other, layer="1")
        ),
        "negative": bool((function(net, x, target=other, layer="1") < 0).any()),
    }


def test_each_mystery_has_its_own_fingerprint():
    net, x = _mystery_net()
    fingerprints = {}
    for bug in lesson06.MYSTERY_BUGS:
        function, _ = lesson06.make_mystery(bug)
        fingerprints[bug] = tuple(_probes(function, net, x).values())
    # one image alone / a batch / another class / negative values
    assert fingerprints["batch"] == (True, False, False, False)
    assert fingerprints["target"] == (True, True, False, False)
    assert fingerprints["no-relu"][3]
    assert not fingerprints["no-relu"][0]
    assert fingerprints["softmax"] == (False, False, False, False)
    assert len(set(fingerprints.values())) == len(lesson06.MYSTERY_BUGS)


def test_mystery_batch_pools_over_the_batch():
    import gradcam_widgets as gw

    net, x = _mystery_net()
    function, _ = lesson06.make_mystery("batch")
    a, g = lesson06.features_and_gradients(net, x, target=1, layer="1")
    pooled = np.broadcast_to(g.mean(axis=(0, 2, 3)), a.shape[:2])
    np.testing.assert_allclose(
        function(net, x, target=1, layer="1"), _core.weighted_sum(a, pooled), rtol=1e-5, atol=1e-7
    )
    assert a.shape == g.shape == (3, 3, 5, 5)
    np.testing.assert_allclose(
        hirescam(a, g), gw.gradcam(net, x, 1, "1", method="hirescam"), rtol=1e-5, atol=1e-6
    )


def test_mystery_no_relu_is_gradcam_before_the_relu():
    import gradcam_widgets as gw

    net, x = _mystery_net()
    function, _ = lesson06.make_mystery("no-relu")
    maps = function(net, x, target=2, layer="1")
    assert maps.min() < 0
    assert _same(np.maximum(maps, 0), gw.gradcam(net, x, target=2, layer="1"))


def test_mystery_softmax_is_the_probability_gradient():
    """A second computation: autograd of softmax(y)_c with respect to the layer's output."""
    torch = pytest.importorskip("torch")
    net, x = _mystery_net()
    function, _ = lesson06.make_mystery("softmax")
    a = net[1](net[0](x)).detach().requires_grad_(True)
    p = torch.softmax(net[5](net[4](net[3](net[2](a)))), dim=1)
    g = torch.autograd.grad(p[:, 2].sum(), a)[0].numpy()
    expected = np.maximum(np.einsum("nk,nkhw->nhw", g.mean(axis=(2, 3)), a.detach().numpy()), 0)
    np.testing.assert_allclose(function(net, x, target=2, layer="1"), expected, atol=1e-7)


def test_mystery_is_drawn_at_random():
    drawn = {lesson06.make_mystery()[1]._question.answer for _ in range(60)}
    assert drawn == {0, 1, 2, 3}  # all four appear (the chance that one is missing: < 1e-6)
    assert lesson06.MYSTERY._question.answer in {0, 1, 2, 3}
    with pytest.raises(ValueError, match="unknown mistake"):
        lesson06.make_mystery("typo")


@pytest.mark.parametrize("bug", lesson06.MYSTERY_BUGS)
def test_mystery_question(bug):
    _, question = lesson06.make_mystery(bug)
    right = "abcd"[lesson06.MYSTERY_BUGS.index(bug)]
    assert question.check(TODO).passed is None
    result = question.check(right)
    assert result
    assert result.message == lesson06._MYSTERY_EXPLANATIONS[bug]
    for wrong in "abcd":
        if wrong == right:
            continue
        result = question.check(wrong)
        assert result.passed is False
        # the hint is how to test the wrong hypothesis, never the right answer's explanation
        probe = lesson06._MYSTERY_PROBES[lesson06.MYSTERY_BUGS["abcd".index(wrong)]]
        assert result.message.endswith(probe)
        assert lesson06._MYSTERY_EXPLANATIONS[bug] not in result.message
    assert not question.check("e")
    shown = repr(question) + question._repr_markdown_()
    assert "Which mistake" in shown
    assert lesson06._MYSTERY_EXPLANATIONS[bug] not in shown


def test_guided_verdict():
    assert lesson06.guided_verdict(0.9) == "b"
    assert lesson06.guided_verdict(0.05) == "a"


# ----------------------------------------------------------------- the quizzes


@pytest.mark.parametrize("quiz", [lesson05.QUIZ, lesson06.QUIZ])
def test_quizzes(quiz):
    assert isinstance(quiz, Quiz)
    assert 5 <= len(quiz) <= 8
    for number in range(1, len(quiz) + 1):
        question = quiz[number]
        assert isinstance(question, Question)
        assert question.explanation
        assert question.prompt.startswith(f"{number}.")
        assert quiz.check(number, TODO).passed is None
        shown = repr(question) + question._repr_markdown_()
        assert question.explanation not in shown
        assert "answer" not in shown
        if question.choices:
            right = "abcdefgh"[int(question.answer)]
            result = quiz.check(number, right)
            assert result
            assert result.message == question.explanation
            for index in range(len(question.choices)):
                if index != int(question.answer):
                    wrong = quiz.check(number, "abcdefgh"[index])
                    assert wrong.passed is False
                    assert question.explanation not in wrong.message
        else:
            assert quiz.check(number, question.answer)
            assert not quiz.check(number, question.answer * 1.5)
            assert not quiz.check(number, "a")


def test_quiz_numbers():
    from scipy.stats import spearmanr

    assert lesson05.QUIZ.check(3, 2.04)
    assert not lesson05.QUIZ.check(3, 8.16)  # the 8 x 8 box of the lesson, not 4 x 4
    assert lesson05.QUIZ.check(4, 32)
    assert not lesson05.QUIZ.check(4, 7)  # the number of cells, not their spacing
    assert lesson06.QUIZ.check(3, 0.0625)
    assert not lesson06.QUIZ.check(3, 0.25)  # side over side, not area over area
    first, second = [0.1, 0.2, 0.3, 0.4], [1, 4, 9, 100]
    assert lesson06.QUIZ.check(2, spearmanr(first, second)[0])
    pearson = float(np.corrcoef(first, second)[0, 1])
    assert not lesson06.QUIZ.check(2, pearson)  # the values' correlation, not the ranks'
    assert "0.82" in lesson06.QUIZ[2].explanation
    assert round(pearson, 2) == 0.82


def test_quiz_two_blob_variant():
    """Question 6.5's claim, computed: with B's weight -2, Grad-CAM's map is empty."""
    torch = pytest.importorskip("torch")
    import gradcam_widgets as gw

    toy = torch.nn.Sequential(
        torch.nn.Conv2d(1, 1, kernel_size=1), torch.nn.Flatten(), torch.nn.Linear(64, 2)
    )
    with torch.no_grad():
        toy[0].weight.fill_(1.0)
        toy[0].bias.zero_()
        weights = torch.zeros(2, 8, 8)
        weights[0, 1:3, 1:3] = 1.0
        weights[0, 5:7, 5:7] = -2.0
        toy[2].weight.copy_(weights.reshape(2, 64))
        toy[2].bias.zero_()
    image = np.zeros((1, 1, 8, 8), dtype=np.float32)
    image[0, 0, 1:3, 1:3] = image[0, 0, 5:7, 5:7] = 1.0
    assert np.all(gw.gradcam(toy, image, target=0, layer="0") == 0)
    assert gw.gradcam(toy, image, target=0, layer="0", method="hirescam")[0, 1:3, 1:3].min() > 0
    assert lesson06.QUIZ.check(5, "d")


def test_quiz_conv1_map_through_the_cascade():
    """Question 6.6's claim, computed: a map from conv1 alone stays exactly the same until
    conv1 itself is randomised, the last step of the cascade."""
    torch = pytest.importorskip("torch")
    import gradcam_widgets as gw
    from gradcam_widgets import metrics
    from gradcam_widgets.zoo import digits

    network = digits.torch_gap_net(seed=0)
    inputs = torch.rand(6, 1, 20, 20, generator=torch.Generator().manual_seed(0))

    def conv1_max(model, batch):
        return gw.explain(model, batch, [0], "conv1").activations["conv1"].max(axis=1)

    cascade = metrics.cascading_randomization(network, inputs, explain=conv1_max, seed=0)
    assert cascade.steps == ["original", "scores", "conv3", "conv2", "conv1"]
    assert np.all(cascade.correlations[:4] == 1.0)
    assert cascade.mean[4] < 0.9
    assert "only at the last step" in lesson06.QUIZ[6].choices[lesson06.QUIZ[6].answer]


@pytest.mark.parametrize("against", ["A", "B", "C"])
def test_hidden_blobs_weights_do_not_show_the_blob(against):
    """Exercise 6: the head comes as two mixed factors whose product is the blob weights, so
    no printed weight matrix shows the blob, and the probe still finds it."""
    pytest.importorskip("torch")
    blobs = lesson06.make_hidden_blobs(against)
    first = blobs.model[2].weight.detach().double()
    second = blobs.model[3].weight.detach().double()
    head = (second @ first).numpy()[0].reshape(12, 12)
    for name, (top, left, bottom, right) in blobs.boxes.items():  # the product is exact
        expected = -1.0 if name == against else 1.0
        assert np.all(np.sign(head[top:bottom, left:right]) == expected)
    outside = np.ones((12, 12), bool)
    for top, left, bottom, right in blobs.boxes.values():
        outside[top:bottom, left:right] = False
    assert np.abs(head[outside]).max() < 1e-4
    # a factor's rows are not the head: the blob pixels' columns do not stand out by sign
    for row in first.numpy().reshape(16, 12, 12):
        signs = {
            name: np.sign(row[t:b, left:r]).mean() for name, (t, left, b, r) in blobs.boxes.items()
        }
        assert not (signs[against] == -1 and all(signs[n] == 1 for n in signs if n != against))
    assert second.shape == (2, 16)
    assert not np.allclose(np.abs(second.numpy()), 1.0)
