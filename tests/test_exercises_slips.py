"""The diagnose exercises of lessons 03 and 04: a colleague's Grad-CAM with a slip drawn
at random. Each slip is checked against an independent computation (autograd by hand),
and the check accepts the drawn slip's letter only."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import assert_not_done

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.exercises import TODO, lesson03, lesson04  # noqa: E402
from gradcam_widgets.exercises._slips import SLIPS, broken_gradcam, candidates  # noqa: E402
from gradcam_widgets.exercises.mysteries import Mystery  # noqa: E402


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
    names = module.COLLEAGUE_SLIPS
    assert len(names) >= 4
    assert tuple(SLIPS[name].choice for name in names) == module.COLLEAGUE_CHOICES
    for index, name in enumerate(names):
        colleague = Mystery("test", module.COLLEAGUE_CANDIDATES, index)
        np.testing.assert_array_equal(
            colleague(model, x, target=2, layer="3"),
            broken_gradcam(name, model, x, target=2, layer="3"),
        )
        letter = "abcde"[index]
        shown = repr(colleague)
        assert not any(SLIPS[n].choice in shown or n in shown for n in names)  # no answer
        assert_not_done(module.check_diagnosis(colleague, TODO))
        assert module.check_diagnosis(colleague, f"({letter.upper()})")
        others = [i for i in range(len(names)) if i != index]
        for other in others[:2]:  # a wrong letter: the experiment that would refute it
            result = module.check_diagnosis(colleague, "abcde"[other])
            assert result.passed is False
            assert SLIPS[names[other]].test in result.message
            assert SLIPS[name].choice not in result.message
            assert SLIPS[name].explanation not in result.message
        # after two wrong letters the colleague answers no more, even the right letter
        refused = module.check_diagnosis(colleague, letter)
        assert refused.passed is False
        assert "draw a new one" in refused.message
        fresh = Mystery("test", module.COLLEAGUE_CANDIDATES, index)
        for shortcut in ("f", "ab", "", 7, True):
            assert module.check_diagnosis(fresh, shortcut).passed is False, shortcut
        assert module.check_diagnosis(broken_gradcam, letter).passed is False  # not a mystery


@pytest.mark.parametrize("module", [lesson03, lesson04])
def test_the_slip_is_drawn_at_random(case, module):
    model, inputs = case
    x = inputs.numpy()[:1]
    outputs = set()
    for seed in range(40):
        colleague = module.draw_colleague(random.Random(seed))
        outputs.add(np.round(colleague(model, x, target=1, layer="3"), 5).tobytes())
    # the five slips give five different maps here, and forty draws meet them all
    assert len(outputs) == len(module.COLLEAGUE_SLIPS)
    with pytest.raises(ValueError, match="unknown slips"):
        candidates(("batch", "typo"))


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
