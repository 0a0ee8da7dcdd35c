"""Lesson 07's checks: right answers pass, the classic slips get a hint, TODO is 'not done'."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.exercises import TODO, lesson07  # noqa: E402


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


def gap_net(seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        Block(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return net.eval()


SEED = 1  # a network whose CAM has negative values, so the ReLU slip can be told apart


@pytest.fixture(scope="module")
def setup():
    net = gap_net(SEED)
    x = torch.from_numpy(np.random.default_rng(0).random((3, 1, 6, 6)).astype(np.float32))
    return net, x, net[1]


@pytest.fixture(scope="module")
def mixed():
    """A network and three images with three different top classes (2, 1, 0)."""
    net = gap_net(2)
    offsets = np.array([-3.0, 0.0, 3.0]).reshape(3, 1, 1, 1)
    x = np.random.default_rng(0).random((3, 1, 6, 6)) + offsets
    return net, torch.from_numpy(x.astype(np.float32)), net[1]


def _cam_from_hook(slip: str = ""):
    """A learner's function for exercise 1, right or with one slip."""

    def function(model, inputs, layer, dense):
        saved = {}
        handle = layer.register_forward_hook(lambda m, a, out: saved.update(A=out.detach()))
        try:
            with torch.no_grad():
                logits = model(inputs)
        finally:
            if slip != "hook left":
                handle.remove()
        top = logits.argmax(dim=1)
        if slip == "first class":
            top = top[:1].expand(len(top))
        maps = torch.einsum("nk,nkhw->nhw", dense.weight.detach()[top], saved["A"]).numpy()
        if slip == "relu":
            maps = np.maximum(maps, 0)
        if slip == "normalised":
            maps = maps / np.abs(maps).max()
        if slip == "one map":
            maps = maps[0]
        return maps

    return function


def test_cam_check_accepts_a_hook_and_the_weights(setup):
    net, x, layer = setup
    right = _cam_from_hook()
    assert lesson07.check_cam_from_hooks(TODO).passed is None
    assert lesson07.check_cam_from_hooks(right).passed is True
    assert lesson07.check_cam_from_hooks(right, net, x, layer, net[4]).passed is True
    model, images, _, _ = lesson07.practice_gap_net()
    assert len(set(gw.predict(model, images).argmax(axis=1).tolist())) > 1
    assert (gw.cam(model, images, layer="2") < 0).any()  # the ReLU slip shows


@pytest.mark.parametrize(
    ("slip", "words"),
    [
        ("relu", "ReLU"),
        ("normalised", "normalise"),
        ("first class", "first image's class"),
        ("one map", "batch axis"),
        ("hook left", "finally"),
    ],
)
def test_cam_check_refuses_each_slip_with_its_hint(setup, slip, words):
    net, x, layer = setup
    result = lesson07.check_cam_from_hooks(_cam_from_hook(slip), net, x, layer, net[4])
    assert result.passed is False, result.message
    assert words in result.message, result.message
    assert not layer._forward_hooks  # the check leaves the models clean


def test_cam_check_refuses_the_shortcuts(setup):
    net, x, layer = setup

    def engine(model, inputs, layer, dense):
        return gw.cam(model, inputs, layer=layer)

    def gradcam_by_hand(model, inputs, layer, dense):
        saved = {}
        handle = layer.register_forward_hook(lambda m, a, out: saved.update(A=out))
        try:
            logits = model(inputs)
            score = logits.max(dim=1).values.sum()
            (grads,) = torch.autograd.grad(score, saved["A"])
        finally:
            handle.remove()
        alpha = grads.mean(dim=(2, 3), keepdim=True)
        return torch.relu((alpha * saved["A"]).sum(dim=1)).detach().numpy()

    def printed_value(model, inputs, layer, dense):  # the lesson's maps, whatever the model
        return gw.cam(net, x, layer=layer).astype(np.float64)

    shortcut = lesson07.check_cam_from_hooks(engine, net, x, layer, net[4])
    assert shortcut.passed is False
    assert "switched off" in shortcut.message
    grad = lesson07.check_cam_from_hooks(gradcam_by_hand, net, x, layer, net[4])
    assert grad.passed is False
    assert "Grad-CAM" in grad.message
    assert lesson07.check_cam_from_hooks(printed_value).passed is False
    assert lesson07.check_cam_from_hooks(gw.cam(net, x, layer="1")).passed is False  # an array
    assert gw.cam(net, x, layer="1").shape == (3, 6, 6)  # the engine is back


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    return not np.allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


def _diagnose(broken, net, x) -> str:
    """The solutions notebook's experiments: which letter fits what ``broken`` does."""
    conv1, conv2 = net[1].conv1, net[1].conv2
    batch = broken(net, x, conv2)
    alone = np.concatenate([broken(net, x[i : i + 1], conv2) for i in range(len(x))])
    truth_alone = np.concatenate(
        [gw.gradcam(net, x[i : i + 1], layer="1.conv2") for i in range(len(x))]
    )
    if _differs(batch, alone):  # each map depends on the other images
        return "b" if not _differs(alone, truth_alone) else "c"
    if (batch < 0).any():
        return "e"
    if not _differs(batch, gw.gradcam(net, x, layer="1.conv2")):
        assert _differs(broken(net, x, conv1), gw.gradcam(net, x, layer="1.conv1"))
        return "d"
    return "a"


def test_each_hidden_mistake_shows_its_own_signature(mixed):
    net, x, _ = mixed
    assert len(set(gw.predict(net, x).argmax(axis=1).tolist())) == 3  # batch mixing shows
    for index, candidate in enumerate(lesson07.BROKEN_CANDIDATES):
        assert _diagnose(candidate.function, net, x) == "abcde"[index], candidate.choice
        assert not net[1].conv1._forward_hooks
        assert not net[1].conv2._forward_hooks
        assert all(p.grad is None for p in net.parameters())
        assert not net.training


def test_no_relu_agrees_where_gradcam_is_positive(mixed):
    net, x, _ = mixed
    maps = lesson07.BROKEN_CANDIDATES[4].function(net, x, net[1].conv2)
    truth = gw.gradcam(net, x, layer="1.conv2")
    positive = truth > 1e-3 * truth.max()
    np.testing.assert_allclose(maps[positive], truth[positive], rtol=1e-4)
    assert (maps < 0).any()


def test_broken_gradcam_refuses_a_layer_that_is_not_a_convolution(mixed):
    net, x, _ = mixed
    for candidate in lesson07.BROKEN_CANDIDATES:
        with pytest.raises(ValueError, match="convolution"):
            candidate.function(net, x, net[1])


def test_the_draw_is_random_and_the_check_compares_with_it(mixed):
    import random

    net, x, _ = mixed
    drawn: dict[str, int] = {}
    for seed in range(40):
        mystery = lesson07.draw_broken_gradcam(random.Random(seed))
        letter = _diagnose(mystery, net, x)
        drawn[letter] = drawn.get(letter, 0) + 1
        assert lesson07.check_broken_gradcam(mystery, letter).passed is True
        if len(drawn) == 5:
            break
    assert sorted(drawn) == list("abcde")  # every mistake can be drawn
    mystery = lesson07.draw_broken_gradcam(random.Random(0))
    right = _diagnose(mystery, net, x)
    wrong = [letter for letter in "abcde" if letter != right]
    assert lesson07.check_broken_gradcam(mystery, TODO).passed is None
    assert lesson07.check_broken_gradcam(mystery, wrong[0]).passed is False
    assert lesson07.check_broken_gradcam(mystery, wrong[1]).passed is False
    # Two wrong answers: the mystery answers no more, not even the right letter.
    assert lesson07.check_broken_gradcam(mystery, right).passed is False
    assert lesson07.check_broken_gradcam("c", "c").passed is False  # not the mystery itself


def _gradcam_nested(slip: str = ""):
    """A learner's function for exercise 3, right or with one slip."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")

    def function(model, backbone_name, layer_name, images):
        backbone = model.get_layer(backbone_name)
        name = backbone.layers[-1].name if slip == "backbone output" else layer_name
        inner = keras.Model(backbone.inputs, [backbone.get_layer(name).output, backbone.output])
        position = model.layers.index(backbone)
        with tf.GradientTape() as tape:
            h = tf.convert_to_tensor(images)
            if slip != "skip rescaling":
                for layer in model.layers[1:position]:
                    h = layer(h)
            a, h = inner(h)
            for layer in model.layers[position + 1 :]:
                h = layer(h)
            top = tf.argmax(h, axis=1)
            if slip == "first class":
                top = tf.fill(tf.shape(top), top[0])
            score = tf.reduce_sum(tf.gather(h, top, axis=1, batch_dims=1))
        grads = tape.gradient(score, a)
        axes = (0, 1, 2) if slip == "batch mean" else (1, 2)
        weighted = tf.reduce_sum(tf.reduce_mean(grads, axis=axes, keepdims=True) * a, axis=-1)
        maps = weighted.numpy() if slip == "no relu" else tf.nn.relu(weighted).numpy()
        if slip == "normalised":
            maps = maps / maps.max()
        if slip == "first image only":
            maps = maps[0]
        return maps

    return function


def test_nested_check_accepts_the_recipe_on_two_models():
    model, images, backbone, layer = lesson07.practice_nested_model()
    right = _gradcam_nested()
    assert lesson07.check_nested_gradcam(TODO).passed is None
    assert lesson07.check_nested_gradcam(right).passed is True
    # With the lesson's case given too (here the practice model again).
    assert lesson07.check_nested_gradcam(right, model, images, backbone, layer).passed is True
    # The practice model shows every slip: two top classes, negative weighted sums.
    logits = gw.predict(model, images)
    assert len(set(logits.argmax(axis=1).tolist())) > 1


@pytest.mark.parametrize(
    ("slip", "words"),
    [
        ("no relu", "ReLU"),
        ("batch mean", "batch axis"),
        ("normalised", "unnormalised"),
        ("first class", "own top class"),
        ("backbone output", "'p'"),
        ("skip rescaling", "'halve'"),
        ("first image only", "batch axis"),
    ],
)
def test_nested_check_refuses_each_slip_with_its_hint(slip, words):
    result = lesson07.check_nested_gradcam(_gradcam_nested(slip))
    assert result.passed is False, result.message
    assert words in result.message, result.message


def test_nested_check_refuses_the_shortcuts_and_restores_the_engine():
    keras = pytest.importorskip("keras")
    model, images, backbone, layer = lesson07.practice_nested_model()

    def engine(model, backbone_name, layer_name, images):
        return gw.gradcam(model, images, layer=f"{backbone_name}/{layer_name}")

    def explain(model, backbone_name, layer_name, images):
        found = gw.explain(model, images, [None], f"{backbone_name}/{layer_name}")
        return found.maps()[f"{backbone_name}/{layer_name}"]

    def copied_cell(model, backbone_name, layer_name, images):  # the Functional recipe
        sub = keras.Model(model.input, [model.get_layer(layer_name).output, model.output])
        return sub(images)

    def copied_cell_nested(model, backbone_name, layer_name, images):
        inner = model.get_layer(backbone_name).get_layer(layer_name)
        sub = keras.Model(model.inputs, [inner.output, model.output])
        return sub(images)

    def lesson_answer(model, backbone_name, layer_name, images):  # a value, not a function
        return np.ones((3, 12, 12))

    for shortcut in (engine, explain):
        result = lesson07.check_nested_gradcam(shortcut)
        assert result.passed is False
        assert "switched off" in result.message
    for copy in (copied_cell, copied_cell_nested):
        result = lesson07.check_nested_gradcam(copy)
        assert result.passed is False
        assert "raised ValueError" in result.message
    assert lesson07.check_nested_gradcam(lesson_answer).passed is False
    assert lesson07.check_nested_gradcam(np.ones((3, 12, 12))).passed is False
    todo = lesson07.check_nested_gradcam(lambda *args: TODO)
    assert todo.passed is None
    # The engine works again after every check, the refused ones included.
    assert gw.gradcam(model, images, layer=f"{backbone}/{layer}").shape == (3, 12, 12)


def test_quiz_1_backward_leaves_no_grad_on_the_activation(setup):
    net, x, layer = setup
    saved = {}
    handle = layer.register_forward_hook(lambda m, a, out: saved.update(A=out))
    try:
        logits = net(x)
    finally:
        handle.remove()
    logits.max(dim=1).values.sum().backward()
    with pytest.warns(UserWarning, match="not a leaf Tensor"):
        grad = saved["A"].grad
    assert grad is None
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=True)


def test_quiz_2_bytes_of_block2_outputs():
    one = torch.zeros(4, 16, 14, 14)
    megabytes = 250 * one.numel() * one.element_size() / 1e6
    question = lesson07.QUIZ[2]
    assert abs(megabytes - question.answer) < 1e-9
    assert lesson07.QUIZ.check(2, 12.5).passed is True
    assert lesson07.QUIZ.check(2, 50.176).passed is False  # kB per pass, not MB in all
    assert lesson07.QUIZ.check(2, 3.136).passed is False  # one image, not four


def test_quiz_5_position_gradients_change_nothing_before_gap(setup):
    net, x, _layer = setup

    def per_position(name):
        found = gw.explain(net, x, [None], name)
        a, g = found.activations[name], found.gradients[0][name]
        return np.maximum((a * g).sum(axis=1), 0), gw.gradcam(net, x, layer=name)

    before_gap, gradcam = per_position("1")  # the block, right before the pooling
    scale = gradcam.max()
    np.testing.assert_allclose(before_gap, gradcam, rtol=1e-4, atol=1e-5 * scale)
    inner, inner_gradcam = per_position("1.conv1")
    assert not np.allclose(inner, inner_gradcam, atol=1e-3 * inner_gradcam.max())
    assert lesson07.QUIZ.check(5, "a").passed is True


def test_quiz_6_sigmoid_map_is_the_logit_map_scaled(setup):
    net, x, _layer = setup
    sigmoid_net = torch.nn.Sequential(net, torch.nn.Sigmoid())
    # nn.Sigmoid is not a softmax: nothing is stepped over, the map is the sigmoid output's
    sigmoid_maps = gw.gradcam(sigmoid_net, x, layer="0.1", allow_probabilities=True)
    logit_maps = gw.gradcam(net, x, layer="1")
    with torch.no_grad():
        s = torch.sigmoid(net(x)).max(dim=1).values.numpy()
    assert logit_maps.max() > 0
    factor = (s * (1 - s))[:, None, None]
    np.testing.assert_allclose(
        sigmoid_maps, factor * logit_maps, rtol=1e-4, atol=1e-6 * logit_maps.max()
    )
    assert lesson07.QUIZ.check(6, "b").passed is True
    for wrong in "acd":
        assert lesson07.QUIZ.check(6, wrong).passed is False


def test_quiz_7_only_two_forward_passes_give_no_gradient():
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(conv)
    net = keras.Model(inputs, keras.layers.Dense(4, name="dense")(pooled))
    sub = keras.Model(net.input, [net.get_layer("conv").output, net.output])
    images = tf.random.uniform((2, 8, 8, 1), seed=0)

    def score_of(logits):
        return tf.reduce_sum(logits[:, 0])

    with tf.GradientTape() as tape:  # (a): the head run on A inside the tape
        a, _ = sub(images)
        score = score_of(net.get_layer("dense")(net.get_layer("gap")(a)))
    assert tape.gradient(score, a) is not None
    with tf.GradientTape() as tape:  # (b): sub built before, called inside
        a, logits = sub(images)
        score = score_of(logits)
    assert tape.gradient(score, a) is not None
    with tf.GradientTape() as tape:  # (c): two forward passes
        a, _ = sub(images)
        score = score_of(net(images))
    assert tape.gradient(score, a) is None
    with tf.GradientTape() as tape:  # (d): gradient asked after the with block
        a, logits = sub(images)
        score = score_of(logits)
    assert tape.gradient(score, a) is not None
    assert lesson07.QUIZ.check(7, "c").passed is True
    for wrong in "abd":
        assert lesson07.QUIZ.check(7, wrong).passed is False


def test_quiz_has_seven_questions_each_with_an_explanation_and_no_leaked_answer():
    assert len(lesson07.QUIZ) == 7
    for number in range(1, 8):
        question = lesson07.QUIZ[number]
        assert question.explanation
        assert question.explanation not in repr(question)
    assert lesson07.QUIZ.check(3, 14).passed is True
    assert lesson07.QUIZ.check(3, 16).passed is False  # the grid's side, not the patch's
    assert lesson07.QUIZ.check(3, 257).passed is False
    assert lesson07.QUIZ.check(1, "b").passed is True
    assert lesson07.QUIZ.check(1, "a").passed is False
