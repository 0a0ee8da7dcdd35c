"""Self-checks of lessons 01-03: not done yet, right, and wrong without giving the answer."""

from __future__ import annotations

from functools import partial

import helpers
import numpy as np
import pytest
from helpers import assert_not_done, quotes_decimals

from gradcam_widgets.exercises import TODO, lesson01, lesson02, lesson03

torch = pytest.importorskip("torch")

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.zoo import digits  # noqa: E402

assert_wrong = partial(helpers.assert_wrong, reveals=quotes_decimals)


# ----------------------------------------------------------------------------- lesson 01


@pytest.fixture(scope="module")
def gap_case():
    images, _ = gw.datasets.load_mnist("test")
    model = digits.torch_gap_net(seed=0)
    train_images, train_labels = gw.datasets.load_mnist("train")
    digits.train_torch(model, train_images[:600], train_labels[:600], epochs=2)
    x = digits.to_torch_input(images[4:5])
    logits = gw.predict(model, x)[0]
    cam_map = gw.cam(model, x, target=9)[0]
    bias = float(model.scores.bias[9].detach())
    return model, x, logits, cam_map, bias


def test_check_class_score_right_answer_from_the_cam(gap_case):
    model, x, logits, cam_map, bias = gap_case
    check = lesson01.check_class_score
    assert_not_done(check(TODO, model, x, 9))
    assert float(cam_map.mean()) + bias == pytest.approx(float(logits[9]), abs=1e-4)
    expected = cam_map[3:].sum() / 49 + bias
    assert check(expected, model, x, 9)
    assert check(np.float32(expected), model, x, 9)
    assert check(torch.tensor(expected), model, x, 9)
    # an independent computation: zero the pooled layer's top rows and run the head
    with torch.no_grad():
        features = model[:5](x).clone()  # conv1 ... conv3, (1, 64, 7, 7)
        features[:, :, :3] = 0
        switched_off = model[5:](features)[0, 9].item()
    assert switched_off == pytest.approx(expected, abs=1e-4)
    assert check(switched_off, model, x, 9)
    assert check(cam_map[3:].sum() / 49 + bias, model, x, 9, off_rows=3)
    assert not check(expected, model, x, 9, off_rows=2)


def test_check_class_score_refuses_the_model_call(gap_case):
    """The forbidden shortcuts: the model's own score, and the model on a blanked image."""
    model, x, _logits, cam_map, bias = gap_case
    check = lesson01.check_class_score
    expected = np.array([cam_map[3:].sum() / 49 + bias])
    from_predict = float(gw.predict(model, x)[0, 9])
    from_model = float(model(x)[0, 9].detach())
    assert_wrong(check(from_predict, model, x, 9), expected, "the number the model returns")
    assert_wrong(check(from_model, model, x, 9), expected, "the number the model returns")
    blanked = x.clone()
    blanked[..., :12, :] = 0
    blanked_score = float(gw.predict(model, blanked)[0, 9])
    assert_wrong(check(blanked_score, model, x, 9), expected, "Blanking pixels")


def test_check_class_score_near_misses(gap_case):
    model, x, logits, cam_map, bias = gap_case
    check = lesson01.check_class_score
    expected = np.array([cam_map[3:].sum() / 49 + bias])
    kept = cam_map[3:]
    assert_wrong(check(float(kept.mean()) + bias, model, x, 9), expected, "divides by all")
    assert_wrong(check(float(kept.sum()) / 49, model, x, 9), expected, "one more term")
    assert_wrong(
        check(float(cam_map[:3].sum()) / 49 + bias, model, x, 9), expected, "kept the rows"
    )
    assert_wrong(check(float(kept.sum()) + bias, model, x, 9), expected, "averages")
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert_wrong(check(float(probabilities[9]), model, x, 9), expected, "probability")
    assert_wrong(check(123.0, model, x, 9), expected, "M^c_ij")
    assert_wrong(check([1.0, 2.0], model, x, 9), expected, "single number")


def test_occlusion_outcome_letters():
    before = np.array([0.0, 5.0, 1.0])
    assert lesson01.occlusion_outcome(before, np.array([0, 2.0, 3.0]), 1, 2) == "a"
    assert lesson01.occlusion_outcome(before, np.array([0, 2.0, 0.0]), 1, 2) == "b"
    assert lesson01.occlusion_outcome(before, np.array([0, 6.0, 3.0]), 1, 2) == "c"
    assert lesson01.occlusion_outcome(before, np.array([0, 6.0, 0.0]), 1, 2) == "d"


# ----------------------------------------------------------------------------- lesson 02


@pytest.fixture(scope="module")
def keras_case():
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    images, _ = gw.datasets.load_mnist("test")
    model = digits.keras_gap_net(seed=0)
    train_images, train_labels = gw.datasets.load_mnist("train")
    digits.train_keras(model, train_images[:1000], train_labels[:1000], epochs=2, seed=0)
    x = digits.to_keras_input(images[[4, 1, 11]])  # a 4, a 7 and a 1
    dense = model.get_layer("scores")

    def make(average_axes=(1, 2), softmax=False, relu=True, use_targets=True):
        def function(batch, targets):
            with tf.GradientTape() as tape:
                A = tf.convert_to_tensor(batch)
                for layer in model.layers[:3]:
                    A = layer(A)
                tape.watch(A)
                rest = A
                for layer in model.layers[3:6]:
                    rest = layer(rest)
                logits = rest @ dense.kernel + dense.bias
                outputs = tf.nn.softmax(logits) if softmax else logits
                chosen = targets if use_targets else [targets[0]] * len(targets)
                score = tf.reduce_sum(tf.gather(outputs, chosen, axis=1, batch_dims=1))
            grads = tape.gradient(score, A)
            alpha = tf.reduce_mean(grads, axis=average_axes, keepdims=True)
            raw = tf.reduce_sum(alpha * A, axis=-1)
            return (tf.nn.relu(raw) if relu else raw).numpy()

        return function

    del keras
    return model, x, [4, 7, 1], make


def test_check_gradcam_function_right(keras_case):
    model, x, targets, make = keras_case
    check = lesson02.check_gradcam_function
    assert_not_done(check(TODO, model, x, targets, "conv2"))
    assert_not_done(check(lambda b, c: TODO, model, x, targets, "conv2"))
    right = make()
    result = check(right, model, x, targets, "conv2")
    assert result.passed, result
    package = gw.gradcam(model, x, target=targets, layer="conv2")
    assert np.allclose(right(x, targets), package, atol=1e-5)


def test_check_gradcam_function_catches_the_classic_mistakes(keras_case):
    model, x, targets, make = keras_case
    check = lesson02.check_gradcam_function
    expected = gw.gradcam(model, x, target=targets, layer="conv2")
    for function, phrase in [
        (make(average_axes=(0, 1, 2)), "batch axis"),
        (make(softmax=True), "softmax"),
        (make(relu=False), "negative values"),
        (make(use_targets=False), "first image's class"),
    ]:
        assert_wrong(check(function, model, x, targets, "conv2"), expected, phrase)


def test_check_gradcam_function_refuses_shortcuts(keras_case):
    model, x, targets, _ = keras_case
    check = lesson02.check_gradcam_function
    expected = gw.gradcam(model, x, target=targets, layer="conv2")

    def calls_the_package(batch, chosen):
        return gw.gradcam(model, batch, target=chosen, layer="conv2")

    assert_wrong(check(calls_the_package, model, x, targets, "conv2"), expected, "package")
    assert gw.gradcam(model, x, target=targets, layer="conv2").shape == (3, 14, 14)  # restored

    def hard_coded(batch, chosen):
        return expected

    assert_wrong(check(hard_coded, model, x, targets, "conv2"), expected, "another order")
    assert_wrong(check(lambda b, c: expected[0], model, x, targets, "conv2"), expected, "one per")
    assert_wrong(check(lambda b, c: 1 / 0, model, x, targets, "conv2"), expected, "raised")
    assert check(expected, model, x, targets, "conv2").passed is False  # not a function


def test_check_disagreeing_example():
    check = lesson02.check_disagreeing_example
    acts = np.array([[[1.0], [2.0]]])          # (1, 2, 1)
    grads = np.array([[[3.0], [-1.0]]])        # HiResCAM [3, 0], Grad-CAM [1, 2]
    assert check(TODO, grads).passed is None
    assert check(acts, grads)
    assert check(acts.tolist(), grads.tolist())
    wrong = [
        (acts, np.ones_like(acts), "same at every position"),       # constant gradient
        (-acts, grads, "never negative"),
        (acts, -np.abs(grads), "zero everywhere"),
        (acts, np.array([[[1.0], [0.8]]]), "same cell"),             # gradient varies, same argmax
        (np.ones((1, 2, 1)), np.array([[[1.0], [1.0 + 1e-12]]]), "tie"),
        (acts, grads[:, :1], "same shape"),
        (np.ones((1, 1, 3)), np.ones((1, 1, 3)), "two cells"),
    ]
    for a, g, phrase in wrong:
        result = check(a, g)
        assert result.passed is False, (phrase, result)
        assert phrase in result.message, (phrase, result)


def test_check_hirescam_function():
    check = lesson02.check_hirescam_function
    assert_not_done(check(TODO))
    assert_not_done(check(lambda A, G: TODO))
    assert check(lambda A, G: np.maximum((A * G).sum(axis=-1), 0))
    assert check(lambda A, G: np.maximum(np.einsum("hwk,hwk->hw", A, G), 0))
    rng = np.random.default_rng(2020)
    acts = rng.random((5, 6, 8))
    grads = rng.normal(size=(5, 6, 8))
    answer = np.maximum((acts * grads).sum(-1), 0)
    for function, phrase in [
        (lambda A, G: np.maximum(A @ G.mean(axis=(0, 1)), 0), "Grad-CAM"),
        (lambda A, G: (A * G).sum(axis=-1), "ReLU"),
        (lambda A, G: np.abs((A * G).sum(axis=-1)), "sign"),
        (lambda A, G: np.maximum((A * G).mean(axis=-1), 0), "number of channels"),
        (lambda A, G: A * G, "one map per channel"),
        (lambda A, G: (A * G).sum(axis=(0, 1)), "summed over the positions"),
        (lambda A, G: np.maximum(A.sum(-1), 0), "Multiply"),
    ]:
        assert_wrong(check(function), answer, phrase)
    assert check("not a function").passed is False


def test_quizzes_01_02():
    from gradcam_widgets.exercises import Quiz

    for quiz in (lesson01.QUIZ, lesson02.QUIZ):
        assert isinstance(quiz, Quiz)
        assert 5 <= len(quiz) <= 8
        for question in quiz.questions:
            right = question.answer if not question.choices else "abcdefgh"[int(question.answer)]
            assert question.check(right)
            assert question.explanation
            if question.choices:
                wrong = "abcdefgh"[(int(question.answer) + 1) % len(question.choices)]
                assert question.check(wrong).passed is False
            else:
                assert question.check(question.answer + 1).passed is False
    assert lesson02.QUIZ.check(2, 0.125)
    assert not lesson02.QUIZ.check(2, 0.5)   # averaged, not kept
    assert not lesson02.QUIZ.check(2, 0.5 / 196)    # summed over the 49 positions first
    assert lesson02.QUIZ.check(6, 0.2)
    assert not lesson02.QUIZ.check(6, 0.8)  # 0.8: per image


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
        assert result.passed is False
        assert "right" in result.message
    assert check(len(labels), model, x, labels).passed is False
    assert check(True, model, x, labels).passed is False
    assert check("7", model, x, labels).passed is False


# ------------------------------------------------------- lesson 03, second round


def _wrong(result, *phrases):
    assert result.passed is False, repr(result)
    for phrase in phrases:
        assert phrase in result.message, result.message


def test_check_receptive_field_sizes():
    check = lesson03.check_receptive_field_sizes

    def right(stack):
        size, jump, sizes = 1, 1, []
        for kernel, stride in stack:
            size += (kernel - 1) * jump
            jump *= stride
            sizes.append(size)
        return sizes

    def no_jump(stack):
        size, sizes = 1, []
        for kernel, _ in stack:
            size += kernel - 1
            sizes.append(size)
        return sizes

    def from_zero(stack):
        return [s - 1 for s in right(stack)]

    def stride_first(stack):
        size, jump, sizes = 1, 1, []
        for kernel, stride in stack:
            jump *= stride
            size += (kernel - 1) * jump
            sizes.append(size)
        return sizes

    def shortcut(stack):
        from gradcam_widgets import receptive_field

        return [f.size for f in receptive_field.grow(stack)]

    def lecture_table(stack):
        return [3, 4, 8, 10, 18, 22]  # the lesson's printed table, whatever the chain

    assert check(TODO).passed is None
    assert check(lambda stack: TODO).passed is None
    assert check(right)
    assert check(lambda stack: np.array(right(stack)))
    _wrong(check(no_jump), "jump")
    _wrong(check(from_zero), "off by one")
    _wrong(check(stride_first), "before growing")
    _wrong(check(shortcut), "package")
    _wrong(check(lecture_table), "one size per layer")
    _wrong(check(lambda stack: [0] * len(stack)), "size and the jump")
    _wrong(check(lambda stack: stack[5]), "raised IndexError")
    _wrong(check(right([(3, 1)])), "function itself")
    # whatever the learner's answer, the message never states a size of the hidden chains
    for function in (no_jump, from_zero, stride_first):
        message = check(function).message
        for stack in lesson03._HIDDEN_STACKS:
            assert str(right(list(stack))) not in message


def test_lesson03_quiz():
    # the diagnose exercise's checks: tests/test_exercises_slips.py
    quiz = lesson03.QUIZ
    assert 5 <= len(quiz) <= 8
    assert quiz.score({1: "b", 2: 10, 3: 0.12, 4: 5, 5: "b", 6: "c", 7: "c"}) == len(quiz)
    assert not quiz.check(2, 7)  # no jump: 3 + 2 + 1 + 2
    assert not quiz.check(2, 22)
    assert not quiz.check(3, 0.1)  # the ink's area: a map even over the whole image
    assert not quiz.check(3, 0.06)  # forgot to divide by the top half's area
    assert not quiz.check(4, 10)  # the whole field, not half of it
    assert not quiz.check(4, 4)  # 5 + 1 + 2 = 8 without the jump
    assert not quiz.check(6, "a")  # subtracting finished maps
    # the right choices are not copied from the lesson's sentences: each needs the numbers
    for number in range(1, len(quiz) + 1):
        assert quiz[number].explanation
