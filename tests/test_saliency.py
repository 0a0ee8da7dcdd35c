"""Guided Backpropagation: exact values on a hand-set network, the model left untouched."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402


def hand_set_net(head: nn.Module | None = None) -> nn.Sequential:
    """x (1, 1, 1, 2) -> 1x1 conv with kernels +1 and -1 -> ReLU -> Flatten -> Linear(4, 2).

    For x = [2, -3] the four units are [2, -3, -2, 3], of which units 0 and 3 are active.
    """
    layers = OrderedDict(
        conv=nn.Conv2d(1, 2, kernel_size=1),
        relu=nn.ReLU(),
        flatten=nn.Flatten(),
        scores=nn.Linear(4, 2),
    )
    if head is not None:
        layers["head"] = head
    net = nn.Sequential(layers)
    with torch.no_grad():
        net.conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
        net.conv.bias.zero_()
        net.scores.weight.copy_(torch.tensor([[1.5, 4.0, 7.0, -2.0], [-1.0, 0.5, 2.0, 3.0]]))
        net.scores.bias.copy_(torch.tensor([0.25, -0.5]))
    return net


X = np.array([2.0, -3.0], dtype=np.float32).reshape(1, 1, 1, 2)


def test_exact_values_on_a_hand_set_network():
    net = hand_set_net()
    # Class 0: the ReLU receives the row [1.5, 4, 7, -2]. Guided: active units (0 and 3)
    # with a positive signal (only unit 0, 1.5) pass it; the conv kernel of unit 0 is +1
    # on pixel a. Plain backprop would give [1.5, 2] (unit 3: -2 times kernel -1 on b).
    guided = gw.saliency.guided_backprop(net, X, target=0)
    assert guided.shape == (1, 1, 1, 2)
    assert guided.dtype == np.float32
    np.testing.assert_array_equal(guided.reshape(2), [1.5, 0.0])
    # Class 1: the row [-1, 0.5, 2, 3]; unit 0 is negative (blocked), unit 3 passes 3,
    # through the kernel -1 on pixel b.
    np.testing.assert_array_equal(
        gw.saliency.guided_backprop(net, X, target=1).reshape(2), [0.0, -3.0]
    )


def test_plain_gradient_differs_so_the_rule_is_applied():
    net = hand_set_net()
    x = torch.tensor(X, requires_grad=True)
    (plain,) = torch.autograd.grad(net(x)[0, 0], x)
    np.testing.assert_array_equal(plain.numpy().reshape(2), [1.5, 2.0])


def test_top_class_and_one_target_per_image():
    net = hand_set_net()
    batch = np.concatenate([X, -X])  # the second image: units [-2, 3, 2, -3] -> 1 and 2 active
    # Scores: image 0: 1.5*2 - 2*3 + 0.25 = -2.75 vs -1*2 + 3*3 - 0.5 = 6.5 -> top class 1.
    top = gw.saliency.guided_backprop(net, batch[:1])
    np.testing.assert_array_equal(top.reshape(2), [0.0, -3.0])
    both = gw.saliency.guided_backprop(net, batch, target=[0, 0])
    np.testing.assert_array_equal(both[0].reshape(2), [1.5, 0.0])
    # Image 1, class 0: active units 1 (weight 4, kernel +1 on b) and 2 (7, kernel -1 on a).
    np.testing.assert_array_equal(both[1].reshape(2), [-7.0, 4.0])


def test_score_before_the_softmax():
    with_softmax = hand_set_net(head=nn.Softmax(dim=1))
    np.testing.assert_array_equal(
        gw.saliency.guided_backprop(with_softmax, X, target=0),
        gw.saliency.guided_backprop(hand_set_net(), X, target=0),
    )


class FunctionalNet(nn.Module):
    """The same network with ``torch.relu`` called in ``forward`` and an in-place ReLU."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        reference = hand_set_net()
        self.conv = reference.conv
        self.scores = reference.scores
        self.inplace = inplace

    def forward(self, x):
        h = self.conv(x)
        h = nn.functional.relu(h, inplace=True) if self.inplace else torch.relu(h)
        return self.scores(h.flatten(1))


@pytest.mark.parametrize("inplace", [False, True])
def test_functional_and_in_place_relus(inplace):
    np.testing.assert_array_equal(
        gw.saliency.guided_backprop(FunctionalNet(inplace), X, target=0).reshape(2), [1.5, 0.0]
    )


def backward_hook_reference(net: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """A second, independent implementation: the classic ReLU backward hook."""
    handles = [
        m.register_full_backward_hook(lambda m, gin, gout: (gin[0].clamp(min=0),))
        for m in net.modules()
        if isinstance(m, nn.ReLU)
    ]
    try:
        x = x.clone().requires_grad_(True)
        net(x)[:, target].sum().backward()
        return x.grad.numpy()
    finally:
        for handle in handles:
            handle.remove()


def test_matches_the_backward_hook_implementation_on_a_deeper_network():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    ).eval()
    x = torch.randn(2, 3, 6, 6)
    expected = backward_hook_reference(net, x, target=2)
    got = gw.saliency.guided_backprop(net, x, target=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    x_grad = x.clone().requires_grad_(True)
    net(x_grad)[:, 2].sum().backward()
    assert not np.allclose(got, x_grad.grad.numpy())  # not the plain gradient


def test_the_model_is_left_untouched():
    net = hand_set_net()
    net.train()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    modules_before = [type(m) for m in net.modules()]
    gw.saliency.guided_backprop(net, X, target=0)
    assert net.training
    assert all(m.training for m in net.modules())
    assert [type(m) for m in net.modules()] == modules_before
    for name, p in net.named_parameters():
        assert torch.equal(p, before[name])
        assert p.grad is None
    assert all(not m._forward_hooks and not m._backward_hooks for m in net.modules())
    # After the call, the ReLU has its ordinary gradient again.
    x = torch.tensor(X, requires_grad=True)
    (plain,) = torch.autograd.grad(net(x)[0, 0], x)
    np.testing.assert_array_equal(plain.numpy().reshape(2), [1.5, 2.0])


def test_a_model_without_relu_is_refused():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no ReLU"):
        gw.saliency.guided_backprop(net, X)


def test_bad_targets_are_refused():
    with pytest.raises(ValueError, match="out of range"):
        gw.saliency.guided_backprop(hand_set_net(), X, target=5)


def test_not_a_model():
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        gw.saliency.guided_backprop(object(), X)


def test_keras_gets_a_clear_error():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(2, 1, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    with pytest.raises(TypeError, match="PyTorch models only"):
        gw.saliency.guided_backprop(model, np.zeros((1, 4, 4, 1), dtype=np.float32))
