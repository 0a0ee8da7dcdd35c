"""The diagnose exercises of lessons 03 and 04: a colleague's Grad-CAM with a slip drawn
at random. Each slip is checked against an independent computation (autograd by hand),
and the check accepts the drawn slip's letter only."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_not_done

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.exercises import TODO, lesson03, lesson04  # noqa: E402
from gradcam_widgets.exercises._slips import SLIPS, HiddenSlip, broken_gradcam  # noqa: E402


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 6 * 6, 5),
    ).eval()
    inputs = torch.randn(3, 1, 6, 6)
    return model, inputs


def _by_hand(model, inputs, target, layer_index, probability=False):
    """Activations and gradients of one layer by autograd, independent of the engine."""
    captured = {}
    layer = model[layer_index]
    handle = layer.register_forward_hook(lambda m, a, out: captured.setdefault("A", out))
    try:
        out = model(inputs)
    finally:
        handle.remove()
    if probability:
        out = torch.softmax(out, dim=1)
    activations = captured["A"]
    (grads,) = torch.autograd.grad(out[torch.arange(len(target)), target].sum(), activations)
    return activations.detach().numpy(), grads.numpy()


def test_each_slip_against_autograd_by_hand(case):
    model, inputs = case
    target = [1, 3, 0]
    x = inputs.numpy()
    ours = gw.gradcam(model, x, target=target, layer="3")
    acts, grads = _by_hand(model, inputs, target, 3)

    weighted = np.einsum("nk,nkhw->nhw", grads.mean(axis=(2, 3)), acts)
    np.testing.assert_allclose(np.maximum(weighted, 0), ours, rtol=1e-4, atol=1e-6)

    batch = broken_gradcam("batch", model, x, target=target, layer="3")
    shared = np.einsum("k,nkhw->nhw", grads.mean(axis=(0, 2, 3)), acts)
    np.testing.assert_allclose(batch, np.maximum(shared, 0), rtol=1e-4, atol=1e-6)
    one = broken_gradcam("batch", model, x[:1], target=1, layer="3")
    np.testing.assert_allclose(one, ours[:1], rtol=1e-4, atol=1e-6)  # a batch of one agrees
    assert not np.allclose(batch, ours, rtol=1e-3)

    no_relu = broken_gradcam("no_relu", model, x, target=target, layer="3")
    np.testing.assert_allclose(no_relu, weighted, rtol=1e-4, atol=1e-6)
    assert no_relu.min() < 0

    axis = broken_gradcam("axis", model, x, target=target, layer="3")
    np.testing.assert_allclose(
        axis, np.maximum(grads.mean(axis=1) * acts.sum(axis=1), 0), rtol=1e-4, atol=1e-6
    )

    p_acts, p_grads = _by_hand(model, inputs, target, 3, probability=True)
    softmax = broken_gradcam("softmax", model, x, target=target, layer="3")
    expected = np.maximum(np.einsum("nk,nkhw->nhw", p_grads.mean(axis=(2, 3)), p_acts), 0)
    np.testing.assert_allclose(softmax, expected, rtol=1e-4, atol=1e-7)

    layer = broken_gradcam("layer", model, x, target=target, layer="3")
    np.testing.assert_allclose(layer, gw.gradcam(model, x, target=target, layer="2"), rtol=1e-5)
    first = broken_gradcam("layer", model, x, target=target, layer="0")  # the first: the next
    np.testing.assert_allclose(first, gw.gradcam(model, x, target=target, layer="1"), rtol=1e-5)

    with pytest.raises(ValueError, match="unknown slip"):
        broken_gradcam("typo", model, x, target=target, layer="3")


@pytest.mark.parametrize("module", [lesson03, lesson04])
def test_the_check_accepts_the_drawn_slip_only(case, module):
    model, inputs = case
    x = inputs.numpy()
    names = module.DIAGNOSIS.names
    assert len(names) >= 4
    try:
        for index, name in enumerate(names):
            module.DIAGNOSIS.redraw(name)
            np.testing.assert_array_equal(
                module.colleague_gradcam(model, x, target=2, layer="3"),
                broken_gradcam(name, model, x, target=2, layer="3"),
            )
            letter = "abcde"[index]
            assert module.check_diagnosis(letter)
            assert module.check_diagnosis(f"({letter.upper()})")
            for other, wrong in enumerate(names):
                if other == index:
                    continue
                result = module.check_diagnosis("abcde"[other])
                assert result.passed is False
                assert SLIPS[wrong].test in result.message  # how to refute that option
                assert SLIPS[name].choice not in result.message  # never the answer
                assert SLIPS[name].explanation not in result.message
            assert_not_done(module.check_diagnosis(TODO))
            for shortcut in ("f", "ab", "", 7, True, index):
                # no letter out of range, no two letters, no number standing for the index
                result = module.check_diagnosis(shortcut)
                if isinstance(shortcut, int) and not isinstance(shortcut, bool):
                    continue  # an index is how Question accepts choices; tested below
                assert result.passed is False, shortcut
    finally:
        module.DIAGNOSIS.redraw()


def test_the_slip_is_drawn_at_random_and_hidden_from_the_printed_question():
    drawn = {HiddenSlip(("batch", "softmax", "no_relu", "layer"), "q?")._slip for _ in range(200)}
    assert drawn == {"batch", "softmax", "no_relu", "layer"}
    hidden = HiddenSlip(("batch", "softmax", "no_relu", "layer"), "What is wrong?", draw="layer")
    shown = repr(hidden) + hidden._repr_markdown_()
    assert "What is wrong?" in shown
    assert all(SLIPS[name].choice in shown for name in hidden.names)
    assert not any(SLIPS[name].explanation in shown for name in hidden.names)
    with pytest.raises(ValueError, match="unknown slips"):
        HiddenSlip(("batch", "typo"), "q?")
    with pytest.raises(ValueError, match="slip must be one of"):
        hidden.redraw("axis")


def test_keras_lecture_network_slips_differ_from_gradcam():
    # On the lesson's own kind of network (MNIST lecture CNN, untrained here) every slip
    # gives maps that differ from gw.gradcam's somewhere: none is invisible.
    pytest.importorskip("keras")
    from gradcam_widgets.zoo import digits

    model = digits.torch_lecture_cnn(seed=1)
    images, _ = gw.datasets.load_mnist("test")
    x = digits.to_torch_input(images[:4])
    ours = gw.gradcam(model, x, target=[0, 1, 2, 3], layer="conv3")
    for name in SLIPS:
        theirs = broken_gradcam(name, model, x, target=[0, 1, 2, 3], layer="conv3")
        assert theirs.shape == ours.shape
        assert not np.allclose(theirs, ours, rtol=1e-3, atol=1e-6 * ours.max()), name


def test_the_layer_slip_skips_a_neighbour_with_the_same_map():
    # Dropout in eval mode passes the ReLU's output through: layers "1" and "2" have the
    # same map, so "another layer" must be one whose map differs, or the slip is invisible.
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 6 * 6, 5),
    ).eval()
    x = torch.randn(2, 1, 6, 6).numpy()
    layers = gw.candidate_layers(model, x)
    if "1" not in layers or "2" not in layers:
        pytest.skip(f"the engine does not list both layers: {layers}")
    np.testing.assert_allclose(
        gw.gradcam(model, x, target=1, layer="1"), gw.gradcam(model, x, target=1, layer="2")
    )
    theirs = broken_gradcam("layer", model, x, target=1, layer="2")
    assert not np.allclose(theirs, gw.gradcam(model, x, target=1, layer="2"), rtol=1e-3)
    others = [name for name in layers if name not in ("1", "2")]
    matches = [n for n in others if np.allclose(theirs, gw.gradcam(model, x, target=1, layer=n))]
    assert matches
