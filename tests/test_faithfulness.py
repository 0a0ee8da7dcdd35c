"""Deletion and insertion (Petsiuk et al. 2018) on models whose evidence is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradcam_widgets.metrics import faithfulness as fm


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


class PixelWeights(nn.Module):
    """logit_0 = sum_ij a_ij x_ij, logit_1 = 0: p_0 = sigmoid(a . x), known exactly."""

    def __init__(self, weights: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("a", torch.as_tensor(weights, dtype=torch.float32)[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (x * self.a).sum(dim=(1, 2, 3))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


class RegionNet(nn.Module):
    """A small CNN whose class-0 score is the evidence inside one known square."""

    def __init__(self, side: int = 16, box: tuple[int, int, int, int] = (1, 6, 2, 7)) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        with torch.no_grad():  # positive evidence: bright pixels raise the score
            self.conv.weight.abs_().div_(self.conv.weight.abs().sum(dim=(1, 2, 3), keepdim=True))
            self.conv.bias.zero_()
        mask = torch.zeros(1, 1, side, side)
        top, bottom, left, right = box
        mask[..., top:bottom, left:right] = 1.0
        self.register_buffer("mask", mask)
        self.dropout = nn.Dropout(0.5)  # train mode would make it random: must be eval

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(x))
        features = self.dropout(features)
        inside = (features * self.mask).sum(dim=(1, 2, 3)) / self.mask.sum()
        return torch.stack([4.0 * (inside - 0.5), torch.zeros_like(inside)], dim=1)


def test_hand_made_deletion_and_insertion_exact():
    a = np.array([[3.0, 1.0], [0.0, 0.0]])
    model = PixelWeights(a)
    x = torch.ones(1, 1, 2, 2)
    heat = np.array([[[4.0, 3.0], [2.0, 1.0]]])  # ranks (0,0), (0,1), (1,0), (1,1)
    gone = fm.deletion(model, x, heat, target=0, steps=4, baseline="zero")
    expected = [sigmoid(4), sigmoid(1), 0.5, 0.5, 0.5]
    np.testing.assert_allclose(gone.curve, expected, rtol=1e-6)
    np.testing.assert_allclose(gone.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    area = 0.25 * sum((expected[k] + expected[k + 1]) / 2 for k in range(4))
    assert gone.auc == pytest.approx(area, rel=1e-6)
    assert gone.baseline == "zero"
    assert gone.steps == 4
    assert gone.kind == "deletion"

    back = fm.insertion(model, x, heat, target=0, steps=4, baseline="zero")
    expected = [0.5, sigmoid(3), sigmoid(4), sigmoid(4), sigmoid(4)]
    np.testing.assert_allclose(back.curve, expected, rtol=1e-6)
    assert back.auc == pytest.approx(
        0.25 * sum((expected[k] + expected[k + 1]) / 2 for k in range(4)), rel=1e-6
    )


def test_uneven_steps_and_a_small_map_resized():
    a = np.zeros((4, 4))
    a[:2, :2] = 1.0  # the top-left quarter is the evidence
    model = PixelWeights(a)
    x = torch.ones(1, 1, 4, 4)
    heat = np.array([[[1.0, 0.0], [0.0, 0.0]]])  # 2 x 2: bilinear to 4 x 4
    result = fm.deletion(model, x, heat, target=0, steps=3)  # ceil(16 / 3) = 6 px a step
    np.testing.assert_allclose(result.fractions, [0, 6 / 16, 12 / 16, 1.0])
    assert len(result.curve) == 4
    assert result.curve[0] == pytest.approx(sigmoid(4))
    # The 4 top-left pixels rank first (the resized map is largest there): after step 1
    # all of the evidence is gone.
    assert result.curve[1] == pytest.approx(0.5)


def test_target_defaults_to_top_class_and_batch_is_per_image():
    model = PixelWeights(np.array([[1.0, -1.0], [0.0, 0.0]]))
    x = torch.tensor([[[[2.0, 0.0], [0.0, 0.0]]], [[[0.0, 2.0], [0.0, 0.0]]]])
    heat = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]])
    result = fm.deletion(model, x, heat, steps=4)
    # image 0: score +2 -> class 0 is top; image 1: score -2 -> class 1 is top.
    assert list(result.targets) == [0, 1]
    assert result.curves.shape == (2, 5)
    np.testing.assert_allclose(result.curves[:, 0], [sigmoid(2), sigmoid(2)], rtol=1e-6)
    np.testing.assert_allclose(result.curves[:, 1], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(result.curve, result.curves.mean(axis=0))
    assert result.auc == pytest.approx(result.aucs.mean())
    one = fm.deletion(model, x[1:], heat[1:], target=1, steps=4)
    np.testing.assert_allclose(one.curve, result.curves[1])


def test_chunked_batches_give_the_same_curve():
    model = RegionNet()
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    heat = fm.random_map((1, 16, 16), seed=3)
    whole = fm.insertion(model, x, heat, target=0, steps=10, batch_size=11)
    chunked = fm.insertion(model, x, heat, target=0, steps=10, batch_size=3)
    np.testing.assert_allclose(whole.curve, chunked.curve, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_the_right_map_beats_shuffled_inverted_random_and_centre(kind):
    box = (1, 6, 2, 7)
    model = RegionNet(box=box)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) + 0.5
    right = np.zeros((1, 16, 16), dtype=np.float32)
    right[0, box[0] : box[1], box[2] : box[3]] = 1.0
    right += 0.01 * fm.random_map((1, 16, 16), seed=9)  # no ties: a real map's texture
    shuffled = fm.random_map((1, 16, 16), seed=1)
    shuffled[0] = np.random.default_rng(2).permutation(right[0].ravel()).reshape(16, 16)
    others = {
        "inverted": right.max() - right,
        "shuffled": shuffled,
        "random": fm.random_map((1, 16, 16), seed=5),
        "centre": fm.centre_map((1, 16, 16)),
    }
    run = fm.deletion if kind == "deletion" else fm.insertion
    # The model reads brightness, which a blur keeps: zero is the baseline that removes it.
    good = run(model, x, right, target=0, steps=16, baseline="zero").auc
    for name, heat in others.items():
        worse = run(model, x, heat, target=0, steps=16, baseline="zero").auc
        if kind == "deletion":
            assert good < worse - 0.02, (name, good, worse)
        else:
            assert good > worse + 0.02, (name, good, worse)


def test_baselines():
    x = np.random.default_rng(0).random((2, 3, 64, 64)).astype(np.float32)
    axes = (2, 3)
    zero, name = fm._baseline("zero", x, axes)
    assert name == "zero"
    assert not zero.any()
    mean, _ = fm._baseline("mean", x, axes)
    np.testing.assert_allclose(mean[:, :, 5, 7], x.mean(axis=(2, 3)), rtol=1e-6)
    blur, _ = fm._baseline("blur", x, axes)
    assert blur.shape == x.shape
    assert blur.std() < 0.5 * x.std()  # smoothed
    np.testing.assert_allclose(blur.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=0.05)
    # channels are not mixed: a blur of one channel alone gives the same channel
    alone, _ = fm._baseline("blur", x[:, :1], axes)
    np.testing.assert_allclose(alone[:, 0], blur[:, 0], rtol=1e-6)
    constant, name = fm._baseline(0.25, x, axes)
    assert name == "constant 0.25"
    assert np.all(constant == 0.25)
    _given, name = fm._baseline(x * 0, x, axes)
    assert name == "array"
    with pytest.raises(ValueError, match="unknown baseline"):
        fm._baseline("gray", x, axes)
    with pytest.raises(ValueError, match="same layout"):
        fm._baseline(np.zeros((2, 64, 64, 3)), x, axes)


def test_reference_maps():
    centre = fm.centre_map((2, 7, 9))
    assert centre.shape == (2, 7, 9)
    assert np.unravel_index(centre[0].argmax(), (7, 9)) == (3, 4)
    assert centre[0, 3, 4] == pytest.approx(1.0)
    assert centre[0, 0, 0] < 0.1
    noise = fm.random_map((1, 5, 5), seed=0)
    np.testing.assert_array_equal(noise, fm.random_map((1, 5, 5), seed=0))
    assert not np.array_equal(noise, fm.random_map((1, 5, 5), seed=1))


def test_model_untouched_and_bad_input():
    model = RegionNet()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 3, 16, 16)
    first = fm.deletion(model, x, fm.centre_map((1, 16, 16)), target=0, steps=4)
    second = fm.deletion(model, x, fm.centre_map((1, 16, 16)), target=0, steps=4)
    np.testing.assert_array_equal(first.curve, second.curve)  # eval mode: no dropout
    assert model.training
    assert model.dropout.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert not model._forward_hooks
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="one map per image"):
        fm.deletion(model, x, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="positive integer"):
        fm.insertion(model, x, np.zeros((1, 4, 4)), steps=0)
    with pytest.raises(ValueError, match="one per image"):
        fm.insertion(model, x, np.zeros((1, 4, 4)), target=[0, 1])
    with pytest.raises(ValueError, match="out of range"):
        fm.insertion(model, x, np.zeros((1, 4, 4)), target=7)


def test_final_softmax_is_looked_through():
    a = np.array([[3.0, 1.0], [0.0, 0.0]])
    plain = PixelWeights(a)
    wrapped = nn.Sequential(PixelWeights(a), nn.Softmax(dim=1))
    x = torch.ones(1, 1, 2, 2)
    heat = np.array([[[4.0, 3.0], [2.0, 1.0]]])
    np.testing.assert_allclose(
        fm.deletion(wrapped, x, heat, target=0, steps=4).curve,
        fm.deletion(plain, x, heat, target=0, steps=4).curve,
        rtol=1e-6,
    )


def test_keras_model_channels_last():
    keras = pytest.importorskip("keras")
    inputs = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(2, use_bias=False, activation="softmax")
    model = keras.Model(inputs, dense(flat))
    # Flatten of (2, 2, 1) is row-major: pixel (0,0), (0,1), (1,0), (1,1).
    dense.set_weights([np.array([[3.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])])
    x = np.ones((1, 2, 2, 1), dtype=np.float32)
    heat = np.array([[[4.0, 3.0], [2.0, 1.0]]])
    result = fm.deletion(model, x, heat, target=0, steps=4)
    np.testing.assert_allclose(result.curve, [sigmoid(4), sigmoid(1), 0.5, 0.5, 0.5], rtol=1e-5)


def test_exported_as_gw_metrics():
    import inspect

    import gradcam_widgets as gw

    for name in ("deletion", "insertion", "random_map", "centre_map"):
        assert getattr(gw.metrics, name) is getattr(fm, name)
    signature = inspect.signature(gw.metrics.deletion)
    assert list(signature.parameters)[:4] == ["model", "inputs", "heatmap", "target"]
    assert signature.parameters["steps"].kind is inspect.Parameter.KEYWORD_ONLY
    assert signature.parameters["baseline"].kind is inspect.Parameter.KEYWORD_ONLY
