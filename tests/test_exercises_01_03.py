"""Self-checks of lessons 01-03: not done yet, right, and wrong without giving the answer."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gradcam_widgets.exercises import TODO, lesson01, lesson02, lesson03

torch = pytest.importorskip("torch")

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.zoo import digits  # noqa: E402


def numbers_in(message: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+\.\d+", message)]


def reveals(message: str, values: np.ndarray) -> bool:
    """Whether the message quotes any of the answer's values (to 2 decimals or more)."""
    quoted = numbers_in(message)
    return any(np.isclose(q, v, atol=5e-3) for q in quoted for v in np.ravel(values))


def assert_not_done(result):
    assert result.passed is None
    assert repr(result).startswith("Not done yet")
    assert "<div" in result._repr_html_()


def assert_wrong(result, answer_values, *phrases):
    assert result.passed is False, repr(result)
    assert repr(result).startswith("Not quite")
    assert not reveals(result.message, answer_values), result.message
    for phrase in phrases:
        assert phrase in result.message, result.message


# ----------------------------------------------------------------------------- lesson 01


@pytest.fixture(scope="module")
def cam_case():
    rng = np.random.default_rng(0)
    features = rng.random((7, 7, 64)).astype(np.float32)
    weights = rng.normal(size=(64, 10)).astype(np.float32)
    return features, weights, 3, features @ weights[:, 3]


def test_check_cam_not_done(cam_case):
    features, weights, target, _ = cam_case
    assert_not_done(lesson01.check_cam(TODO, features, weights, target))


def test_check_cam_right(cam_case):
    features, weights, target, expected = cam_case
    assert lesson01.check_cam(expected, features, weights, target)
    assert lesson01.check_cam(expected[np.newaxis], features[np.newaxis], weights, target)
    assert lesson01.check_cam(torch.from_numpy(expected), features, weights, target)


def test_check_cam_wrong_answers_say_what_is_wrong(cam_case):
    features, weights, target, expected = cam_case
    check = lesson01.check_cam
    assert_wrong(check(features @ weights[:, 4], features, weights, target), expected, "class 4")
    assert_wrong(check(features @ weights, features, weights, target), expected, "every class")
    assert_wrong(check(features, features, weights, target), expected, "per channel")
    assert_wrong(check(np.maximum(expected, 0), features, weights, target), expected, "negative")
    assert_wrong(check(expected / 49, features, weights, target), expected, "constant")
    assert_wrong(check(features.mean(-1), features, weights, target), expected, "weight")
    assert_wrong(check(expected + 1.0, features, weights, target), expected, "w_k^c")
    assert_wrong(check(np.zeros((3, 3)), features, weights, target), expected, "shape")
    assert_wrong(check("a map", features, weights, target), expected, "numpy array")


@pytest.fixture(scope="module")
def gap_case():
    images, _ = gw.datasets.load_mnist("test")
    model = digits.torch_gap_net(seed=0)
    x = digits.to_torch_input(images[:1])
    logits = gw.predict(model, x)[0]
    cam_map = gw.cam(model, x, target=2)[0]
    return model, x, logits, cam_map


def test_check_class_score(gap_case):
    model, x, logits, cam_map = gap_case
    check = lesson01.check_class_score
    assert_not_done(check(TODO, model, x, 2))
    assert check(float(logits[2]), model, x, 2)
    assert check(np.float32(logits[2]), model, x, 2)
    bias = float(model.scores.bias[2].detach())
    assert float(cam_map.mean()) + bias == pytest.approx(float(logits[2]), abs=1e-4)
    expected = np.array([logits[2]])
    assert_wrong(check(float(cam_map.mean()), model, x, 2), expected, "one more term")
    assert_wrong(check(float(cam_map.sum()) + bias, model, x, 2), expected, "averages")
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert_wrong(check(float(probabilities[2]), model, x, 2), expected, "probability")
    assert_wrong(check(123.0, model, x, 2), expected, "y^c")
    assert_wrong(check([1.0, 2.0], model, x, 2), expected, "single number")


# ----------------------------------------------------------------------------- lesson 02


@pytest.fixture(scope="module")
def tape_case():
    rng = np.random.default_rng(1)
    acts = rng.random((1, 7, 7, 16)).astype(np.float32)
    grads = rng.normal(size=(1, 7, 7, 16)).astype(np.float32)
    alpha = grads[0].mean(axis=(0, 1))
    return acts, grads, alpha, np.maximum(acts[0] @ alpha, 0.0)


def test_check_alpha(tape_case):
    acts, grads, alpha, _ = tape_case
    check = lesson02.check_alpha
    assert_not_done(check(TODO, grads))
    assert check(alpha, grads)
    assert check(alpha[np.newaxis], grads)
    assert check(grads.mean(axis=(1, 2)), grads[0])
    assert_wrong(check(grads[0].sum(axis=(0, 1)), grads), alpha, "1/Z")
    assert_wrong(check(grads[0].mean(axis=-1), grads), alpha, "channels")
    assert_wrong(check(np.abs(grads[0]).mean(axis=(0, 1)), grads), alpha, "sign")
    assert_wrong(check(grads[0].max(axis=(0, 1)), grads), alpha, "maximum")
    assert_wrong(check(grads.mean(), grads), alpha, "every axis")
    assert_wrong(check(grads, grads), alpha, "nothing was averaged")
    assert_wrong(check(alpha + 0.5, grads), alpha, "average over the positions")


def test_check_gradcam_map(tape_case):
    acts, grads, alpha, expected = tape_case
    check = lesson02.check_gradcam_map
    assert_not_done(check(TODO, acts, grads))
    assert check(expected, acts, grads)
    raw = acts[0] @ alpha
    assert raw.min() < 0 < raw.max()
    assert_wrong(check(raw, acts, grads), expected, "negative")
    assert_wrong(check(expected / expected.max(), acts, grads), expected, "constant factor")
    assert_wrong(check(acts[0] * alpha, acts, grads), expected, "added up")
    with np.errstate(invalid="ignore"):
        nan_map = np.zeros((7, 7)) / np.zeros((7, 7)).max()
    assert_wrong(check(nan_map, acts, grads), expected, "NaN")
    elementwise = np.maximum((acts[0] * grads[0]).sum(-1), 0)
    assert_wrong(check(elementwise, acts, grads), expected, "position by position")
    assert_wrong(check(expected + 1.0, acts, grads), expected, "alpha_k^c")


def test_check_z():
    check = lesson02.check_z
    assert_not_done(check(TODO, 7, 7, 64))
    assert check(49, 7, 7, 64)
    assert check(49.0, 7, 7, 64)
    for wrong, phrase in [(64, "channels"), (7, "one side"), (1 / 49, "upside down")]:
        result = check(wrong, 7, 7, 64)
        assert result.passed is False and phrase in result.message
        assert "49" not in result.message
    assert check(3136, 7, 7, 64).passed is False
    assert check("many", 7, 7, 64).passed is False


# ----------------------------------------------------------------------------- lesson 03


@pytest.fixture(scope="module")
def lecture_case():
    images, labels = gw.datasets.load_mnist("test")
    model = digits.torch_lecture_cnn(seed=0)
    train_images, train_labels = gw.datasets.load_mnist("train")
    digits.train_torch(model, train_images[:300], train_labels[:300], epochs=1)
    x = digits.to_torch_input(images[:30])
    return model, x, labels[:30]


def test_check_layer_map(lecture_case):
    model, x, _ = lecture_case
    one = x[:1]
    check = lesson03.check_layer_map
    # pick two classes whose maps are not empty at the layers used
    peaks = {
        c: min(float(gw.gradcam(model, one, target=c, layer=n).max()) for n in ("conv2", "conv3"))
        for c in range(10)
    }
    target, other = sorted(peaks, key=peaks.get, reverse=True)[:2]
    assert peaks[other] > 0
    expected = gw.gradcam(model, one, target=target, layer="conv2")
    assert_not_done(check(TODO, model, one, target, "conv2"))
    assert check(expected, model, one, target, "conv2")
    assert check(expected[0], model, one, target, "conv2")
    conv3 = gw.gradcam(model, one, target=target, layer="conv3")
    assert_wrong(check(conv3, model, one, target, "conv2"), expected, "'conv3'")
    pool3 = gw.gradcam(model, one, target=target, layer="pool3")
    assert_wrong(check(pool3 + 1.0, model, one, target, "conv2"), expected, "resolution")
    other_map = gw.gradcam(model, one, target=other, layer="conv2")
    assert_wrong(check(other_map, model, one, target, "conv2"), expected, f"class {other}")
    normalised = expected / expected.max()
    assert_wrong(check(normalised, model, one, target, "conv2"), expected, "normalised")
    assert_wrong(check(expected + 1.0, model, one, target, "conv2"), expected, "gw.gradcam")


def test_check_misclassified(lecture_case):
    model, x, labels = lecture_case
    check = lesson03.check_misclassified
    predicted = gw.predict(model, x).argmax(axis=1)
    wrong = np.nonzero(predicted != labels)[0]
    right = np.nonzero(predicted == labels)[0]
    assert_not_done(check(TODO, model, x, labels))
    assert len(wrong) > 0  # a network trained this briefly gets several digits wrong
    assert check(int(wrong[0]), model, x, labels)
    assert check(np.int64(wrong[0]), model, x, labels)
    if len(right):
        result = check(int(right[0]), model, x, labels)
        assert result.passed is False and "right" in result.message
    assert check(len(labels), model, x, labels).passed is False
    assert check(True, model, x, labels).passed is False
    assert check("7", model, x, labels).passed is False
