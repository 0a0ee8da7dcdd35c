"""The diagnosis exercises of lessons 01 and 02: a mistake drawn at random, found by experiment.

For every candidate mistake: the function really makes it, a short series of experiments
(the one the solutions notebooks show) tells it from every other candidate, the checker
accepts its letter and refuses the others with a hint, and the answer is not stored in
plain sight.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from gradcam_widgets.exercises import TODO, lesson01, lesson02, mysteries

torch = pytest.importorskip("torch")

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.zoo import digits  # noqa: E402

LETTERS = "abcdefgh"


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(
        np.allclose(a, b, rtol=1e-3, atol=1e-4 * float(np.abs(b).max()) + 1e-9)
    )


# ----------------------------------------------------------------------------- the machinery


def toy_candidates() -> list[mysteries.Candidate]:
    return [
        mysteries.Candidate(f"choice {n}", lambda x, n=n: x + n, f"hint {n}", f"why {n}")
        for n in range(4)
    ]


def test_draw_covers_every_candidate_and_is_unseeded_by_default():
    candidates = toy_candidates()
    rng = random.Random(0)
    drawn = {mysteries.draw("toy", candidates, rng)(0) for _ in range(60)}
    assert drawn == {0, 1, 2, 3}
    unseeded = {mysteries.draw("toy", candidates)(0) for _ in range(60)}
    assert len(unseeded) > 1  # not the same mistake every time (chance of failure 4 * 4**-60)
    pair = mysteries.draw_distinct(["one", "two"], candidates, random.Random(1))
    assert pair[0](0) != pair[1](0)
    assert repr(pair[0]).startswith("<one")


def test_check_mystery_right_wrong_and_spent():
    candidates = toy_candidates()
    for index in range(4):
        right = LETTERS[index]
        mystery = mysteries.Mystery("toy", candidates, index)
        assert mystery(10) == 10 + index  # it behaves as the drawn candidate
        assert mysteries.check_mystery(mystery, TODO).passed is None
        assert mysteries.check_mystery(mystery, "z").passed is False
        wrong = LETTERS[(index + 1) % 4]
        result = mysteries.check_mystery(mystery, f"({wrong.upper()})")
        assert result.passed is False
        assert f"hint {(index + 1) % 4}" in result.message
        result = mysteries.check_mystery(mystery, right)
        assert result
        assert f"why {index}" in result.message
    # two wrong answers spend a mystery: even the right letter is refused afterwards
    mystery = mysteries.Mystery("toy", candidates, 0)
    assert not mysteries.check_mystery(mystery, "b")
    assert not mysteries.check_mystery(mystery, "c")
    spent = mysteries.check_mystery(mystery, "a")
    assert spent.passed is False
    assert "draw a new one" in spent.message
    assert mysteries.check_mystery(lambda x: x, "a").passed is False  # not a mystery


def test_the_answer_is_not_in_plain_sight():
    candidates = toy_candidates()
    for index in range(4):
        mystery = mysteries.Mystery("toy", candidates, index)
        stored = {k: v for k, v in vars(mystery).items() if k != "_candidates"}
        numbers = [v for k, v in stored.items() if isinstance(v, int) and k != "_wrong"]
        assert index not in numbers
        assert LETTERS[index] not in {str(v) for v in stored.values()}
        assert candidates[index].function not in stored.values()
        assert len(mystery._digest) == 64  # a sha256 of a salted letter


# ----------------------------------------------------------------------------- lesson 01


@pytest.fixture(scope="module")
def cam_net():
    model = digits.torch_gap_net(seed=0)
    train_images, train_labels = gw.datasets.load_mnist("train")
    digits.train_torch(model, train_images[:600], train_labels[:600], epochs=2)
    images, _ = gw.datasets.load_mnist("test")
    return model, digits.to_torch_input(images[4:5])


def diagnose_colleague(colleague, model, x) -> str:
    """The experiments of the solutions notebook, as a decision."""
    scores = gw.predict(model, x)[0]
    top, runner_up = (int(c) for c in np.argsort(-scores)[:2])
    bias = model.scores.bias.detach().numpy()
    for c in (top, runner_up):
        theirs, right = colleague(model, x, c)[0], gw.cam(model, x, c)[0]
        if same(theirs, right):
            assert np.isclose(theirs.mean() + bias[c], scores[c], atol=1e-3)  # the identity
            continue
        if np.isclose(theirs.max(), 1.0, atol=1e-6):
            return "c"  # divided by its maximum
        if same(theirs, right.T):
            return "d"  # rows and columns swapped
        if same(theirs, np.maximum(right, 0)):
            return "b"  # negative contributions dropped
        if same(theirs, gw.cam(model, x, top)[0]):
            return "a"  # the top class's map for another class
        ratio = right / np.where(theirs == 0, np.nan, theirs)
        channels = gw.explain(model, x, [c]).activations["conv3"].shape[1]
        if np.allclose(np.nanmedian(ratio), channels, rtol=1e-3) and same(theirs * channels, right):
            return "e"  # averaged over the channels
        raise AssertionError("no candidate fits")
    return "f"


def test_colleague_candidates_are_told_apart_by_experiment(cam_net):
    model, x = cam_net
    candidates = lesson01.COLLEAGUE_CANDIDATES
    assert len(candidates) == len(lesson01.COLLEAGUE_CHOICES) == 6
    right_maps = gw.cam(model, x, 7)
    for index in range(len(candidates)):
        colleague = mysteries.Mystery("colleague", candidates, index)
        maps = colleague(model, x, 7)
        assert maps.shape == right_maps.shape
        letter = diagnose_colleague(colleague, model, x)
        assert letter == LETTERS[index], (index, letter)
        others = [c for c in LETTERS[: len(candidates)] if c != letter]
        result = lesson01.check_colleague(colleague, others[index % len(others)])
        assert result.passed is False
        assert "does not fit" in result.message
        assert candidates[index].choice not in result.message
        assert lesson01.check_colleague(colleague, letter)
    assert lesson01.check_colleague(lesson01.draw_colleague(), TODO).passed is None


def drawn_letter(mystery) -> str:
    (letter,) = [c for c in LETTERS if mystery._is(c)]
    return letter


def test_draw_colleague_draws_each_mistake(cam_net):
    model, x = cam_net
    rng = random.Random(3)
    colleagues = [lesson01.draw_colleague(rng) for _ in range(40)]
    assert {drawn_letter(c) for c in colleagues} == set("abcdef")
    for colleague in colleagues[:6]:  # the hidden letter is the mistake the experiments find
        assert diagnose_colleague(colleague, model, x) == drawn_letter(colleague)


# ----------------------------------------------------------------------------- lesson 02


@pytest.fixture(scope="module")
def gradcam_net():
    pytest.importorskip("keras")
    model = digits.keras_gap_net(seed=0)
    train_images, train_labels = gw.datasets.load_mnist("train")
    digits.train_keras(model, train_images[:1000], train_labels[:1000], epochs=2, seed=0)
    images, _ = gw.datasets.load_mnist("test")
    batch = digits.to_keras_input(images[[4, 1, 11]])  # a 4, a 7 and a 1
    return model, batch


def diagnose_mystery(mystery, model, batch) -> str:
    """The experiments of the solutions notebook, as a decision."""
    one = batch[:1]
    scores = gw.predict(model, one)[0]
    top, runner_up = (int(c) for c in np.argsort(-scores)[:2])
    # 1. one image, its top class, at conv3: values and all
    theirs, right = mystery(model, one, top, "conv3"), gw.gradcam(model, one, top, "conv3")
    # 2. the same image for its runner-up class
    theirs_2 = mystery(model, one, runner_up, "conv3")
    right_2 = gw.gradcam(model, one, runner_up, "conv3")
    if min(theirs.min(), theirs_2.min()) < 0:
        return "c"  # negative values: no ReLU
    if not same(theirs, right):
        ratio = theirs.max() / right.max()
        if np.isclose(ratio, 49, rtol=1e-3) and same(theirs, 49 * right):
            return "f"  # Z times larger: summed gradients
        # fainter, and another shape: the probability's gradient
        assert ratio < 0.5
        assert not same(theirs / theirs.max(), right / right.max())
        return "a"
    if not same(theirs_2, right_2):
        assert same(theirs_2, right)  # the top class's map, whatever was asked
        return "e"
    # 3. a batch of different digits, each for its own class
    targets = list(gw.predict(model, batch).argmax(axis=1))
    right_batch = gw.gradcam(model, batch, targets, "conv3")
    if not same(mystery(model, batch, targets, "conv3"), right_batch):
        return "b"
    # 4. another layer, where the gradient varies from position to position
    if not same(mystery(model, one, top, "conv2"), gw.gradcam(model, one, top, "conv2")):
        return "d"
    return "g"


def test_mystery_candidates_are_told_apart_by_experiment(gradcam_net):
    model, batch = gradcam_net
    candidates = lesson02.MYSTERY_CANDIDATES
    assert len(candidates) == len(lesson02.MYSTERY_CHOICES) == 7
    for index in range(len(candidates)):
        mystery = mysteries.Mystery("mystery", candidates, index)
        assert mystery(model, batch, [4, 7, 1], "conv2").shape == (3, 14, 14)
        letter = diagnose_mystery(mystery, model, batch)
        assert letter == LETTERS[index], (index, letter)
        wrong = LETTERS[(index + 3) % len(candidates)]
        result = lesson02.check_diagnosis(mystery, wrong)
        assert result.passed is False
        assert "does not fit" in result.message
        assert lesson02.check_diagnosis(mystery, letter)


def test_the_classic_mistakes_hide_where_the_lesson_says(gradcam_net):
    model, batch = gradcam_net
    by_letter = {
        LETTERS[i]: mysteries.Mystery("m", lesson02.MYSTERY_CANDIDATES, i)
        for i in range(len(lesson02.MYSTERY_CANDIDATES))
    }
    one = batch[:1]
    top = int(gw.predict(model, one)[0].argmax())
    right = gw.gradcam(model, one, top, "conv3")
    # the batch axis and the per-position gradient are invisible on one image at conv3 ...
    for letter in "bdeg":
        assert same(by_letter[letter](model, one, top, "conv3"), right), letter
    # ... the sum only shows in the values, not the normalised picture
    summed = by_letter["f"](model, one, top, "conv3")
    assert same(summed / summed.max(), right / right.max())
    assert not same(summed, right)


def test_draw_mysteries_gives_different_mistakes(gradcam_net):
    model, batch = gradcam_net
    rng = random.Random(5)
    seen = set()
    for _ in range(30):
        first, second = lesson02.draw_mysteries(2, rng)
        assert drawn_letter(first) != drawn_letter(second)
        seen |= {drawn_letter(first), drawn_letter(second)}
    assert seen == set("abcdefg")
    first, second = lesson02.draw_mysteries(2, rng)
    assert diagnose_mystery(first, model, batch) == drawn_letter(first)
    assert lesson02.check_diagnosis("mystery_1", "a").passed is False


# ----------------------------------------------------------------------------- the other new checks


def test_check_seen_lead():
    from gradcam_widgets.receptive_field import grow

    field = grow([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)])[-1]   # lesson 01's conv3: 18 px, jump 4
    rng = np.random.default_rng(0)
    features = rng.random((7, 7, 64)).astype(np.float32)
    weights = rng.normal(size=(64, 10)).astype(np.float32)
    check = lesson01.check_seen_lead
    every = features.astype(np.float64) @ weights.astype(np.float64)
    lead = (every[..., 4] - every[..., 9]) / 49
    per_row = lead.sum(axis=1)
    right = float(per_row[:4].sum())   # rows 0-3 see pixel rows 5-6 (row i sees 4i-7 .. 4i+10)
    edited = features.copy()
    edited[:2] *= 0.5                               # an "edit" that reaches rows 0 and 1 only
    after = (edited.astype(np.float64) @ weights.astype(np.float64))
    after_rows = ((after[..., 4] - after[..., 9]) / 49).sum(axis=1)
    summary = lesson01.edit_summary(features, edited, weights, 4, 9, rows=[0, 1, 2, 3])
    assert np.isclose(summary.held, right / per_row.sum())
    assert np.isclose(summary.moved, (after_rows[:4].sum() - right) / right)
    np.testing.assert_allclose(summary.after_rows, after_rows, rtol=1e-6)
    np.testing.assert_allclose(summary.after_rows[2:], per_row[2:], rtol=1e-6)

    def run(answer, rows=(5, 6), maps=features):
        return check(answer, maps, weights, 4, 9, pixel_rows=rows, field=field)

    assert run(TODO).passed is None
    assert run(right)
    assert run(np.float32(right), maps=features[np.newaxis])
    wrong = {
        -right: "wrong sign",
        right * 49: "average",
        right / float(per_row.sum()): "share",
        float(per_row.sum()): "whole map",
        float(lead[:, :4].sum()): "columns",
        float(every[:4, :, 4].sum() / 49): "one class",
        float(per_row[1]): "one stride per row",   # the stride reading: pixel rows 5-6 -> row 1
        float(per_row[:3].sum()): "block of rows",  # rows 0-2
        float(per_row[1:4].sum()): "block of rows",
        right + 0.0371: "not that number",
    }
    for answer, phrase in wrong.items():
        result = run(answer)
        assert result.passed is False, (answer, result)
        assert phrase in result.message, (answer, result)
        assert f"{right:.2f}" not in result.message
    assert run(lead[1]).passed is False  # a row, not a number
    assert run(float(per_row[4:].sum()), rows=(25, 26))  # rows 4-6 see the bottom pixel rows
    assert run("1.5").passed is False


def test_check_taylor_error(gradcam_net):
    keras = pytest.importorskip("keras")
    model, batch = gradcam_net
    one = batch[1:2]  # the 7
    check = lesson02.check_taylor_error
    # an independent computation with the model's own layers
    names = [layer.name for layer in model.layers]
    dense = model.get_layer("scores")

    def score_from(layer, acts):
        out = acts
        for item in model.layers[names.index(layer) + 1 : -1]:
            out = item(out)
        return float((out @ dense.kernel + dense.bias).numpy()[0, 7])

    result = gw.explain(model, one, [7], layer="conv2")
    acts = result.activations["conv2"][0].transpose(1, 2, 0)[None]  # channels last again
    grads = result.gradients[0]["conv2"][0].transpose(1, 2, 0)[None]
    shares = float((acts * grads).sum())
    y_image, y_zero = score_from("conv2", acts), score_from("conv2", np.zeros_like(acts))
    right = (y_image - y_zero) - shares
    bias = float(dense.bias.numpy()[7])
    assert abs(y_zero - bias) > 1e-2  # at conv2, y(0) is not the bias: the near miss differs
    assert check(TODO, model, one, 7, "conv2").passed is None
    assert check(right, model, one, 7, "conv2")
    wrong = {
        -right: "wrong sign",
        (y_image - bias) - shares: "bias",
        shares: "shares' sum",
        y_image - y_zero: "score's change",
        0.0: "exact",
        right + 0.5: "not that number",
    }
    for answer, phrase in wrong.items():
        feedback = check(answer, model, one, 7, "conv2")
        assert feedback.passed is False, (answer, feedback)
        assert phrase in feedback.message, (answer, feedback)
    # at conv3, GAP follows: the expansion is exact and y(0) is the bias
    assert check(0.0, model, one, 7, "conv3")
    assert check([1.0, 2.0], model, one, 7, "conv2").passed is False
    with pytest.raises(ValueError, match="Sequential"):
        check(0.0, keras.Model(model.inputs, model.outputs), one, 7, "conv2")
