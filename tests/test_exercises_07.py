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


def test_cam_check_accepts_cam_and_refuses_the_slips(setup):
    net, x, layer = setup
    right = gw.cam(net, x, layer="1")
    assert np.abs(right).max() > 0 and (right < 0).any()
    assert lesson07.check_cam_from_hooks(TODO, net, x, layer).passed is None
    assert lesson07.check_cam_from_hooks(right, net, x, layer).passed is True
    assert lesson07.check_cam_from_hooks(torch.from_numpy(right), net, x, layer).passed is True
    relu = lesson07.check_cam_from_hooks(np.maximum(right, 0), net, x, layer)
    assert relu.passed is False and "ReLU" in relu.message
    grad = lesson07.check_cam_from_hooks(gw.gradcam(net, x, layer="1"), net, x, layer)
    assert grad.passed is False
    scaled = lesson07.check_cam_from_hooks(right / np.abs(right).max(), net, x, layer)
    assert scaled.passed is False and "normalise" in scaled.message
    shape = lesson07.check_cam_from_hooks(right[0], net, x, layer)
    assert shape.passed is False and "(N, h, w)" in shape.message
    assert str(right.max()) not in repr(shape)


def test_cam_check_refuses_a_forgotten_hook(setup):
    net, x, layer = setup
    handle = layer.register_forward_hook(lambda m, a, out: None)
    try:
        result = lesson07.check_cam_from_hooks(gw.cam(net, x, layer="1"), net, x, layer)
    finally:
        handle.remove()
    assert result.passed is False and "still registered" in result.message


def test_broken_gradcam_is_right_on_one_image_and_wrong_on_a_batch(setup):
    net, x, _ = setup
    # conv1, not the block: right before the pooling the gradient is w^c / Z for every image
    # of a class, and averaging it over a batch of one class would change nothing.
    broken = lesson07.broken_gradcam(net, x, net[1].conv1)
    right = gw.gradcam(net, x, layer="1.conv1")
    assert not np.allclose(broken, right, atol=1e-3 * right.max())
    for i in range(len(x)):
        np.testing.assert_allclose(
            lesson07.broken_gradcam(net, x[i : i + 1], net[1].conv1),
            gw.gradcam(net, x[i : i + 1], layer="1.conv1"),
            rtol=1e-5,
            atol=1e-6 * right.max(),
        )
    assert not net[1].conv1._forward_hooks


def test_diagnosis():
    assert lesson07.check_diagnosis(TODO).passed is None
    assert lesson07.check_diagnosis("c").passed is True
    assert lesson07.check_diagnosis(2).passed is True
    for wrong in ("a", "b", "d"):
        result = lesson07.check_diagnosis(wrong)
        assert result.passed is False and "look again" in result.message
    assert lesson07.check_diagnosis("z").passed is False


def test_keras_tape_check():
    keras = pytest.importorskip("keras")
    from keras import layers

    inputs = keras.Input((6, 6, 1))
    h = layers.Conv2D(
        3,
        3,
        padding="same",
        activation="relu",
        name="conv1",
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
    )(inputs)
    model = keras.Model(
        inputs,
        layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=2))(
            layers.GlobalAveragePooling2D()(h)
        ),
    )
    x = np.random.default_rng(1).random((2, 6, 6, 1)).astype(np.float32)
    right = gw.gradcam(model, x, layer="conv1")
    assert right.max() > 0
    assert lesson07.check_keras_tape(TODO, model, x, "conv1").passed is None
    assert lesson07.check_keras_tape(right, model, x, "conv1").passed is True
    assert lesson07.check_keras_tape(right[:1], model, x, "conv1").passed is False
    assert lesson07.check_keras_tape(right * 2 + 1, model, x, "conv1").passed is False


def test_quiz_has_six_questions_each_with_an_explanation_and_no_leaked_answer():
    assert len(lesson07.QUIZ) == 6
    for number in range(1, 7):
        question = lesson07.QUIZ[number]
        assert question.explanation
        assert question.explanation not in repr(question)
    assert lesson07.QUIZ.check(3, 197).passed is True
    assert lesson07.QUIZ.check(3, 196).passed is False
    assert lesson07.QUIZ.check(1, "c").passed is True
