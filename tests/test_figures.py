"""Static grids: the right number of axes, maps from one engine call, honest titles."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from models import gap_net
from torch import nn

import gradcam_widgets as gw
from gradcam_widgets import figures


def tiny_net(in_channels: int = 3, classes: int = 5) -> nn.Module:
    return gap_net(in_channels, classes, width=6)


@pytest.fixture
def count_engine(monkeypatch):
    """Count the engine's passes that compute maps (a capture with gradients)."""
    from gradcam_widgets.backends.torch import TorchBackend

    calls = {"map passes": 0}
    original = TorchBackend.capture

    def counted(self, model, batch, layers, targets, *, with_gradients=True, **kwargs):
        calls["map passes"] += int(with_gradients)
        return original(
            self, model, batch, layers, targets, with_gradients=with_gradients, **kwargs
        )

    monkeypatch.setattr(TorchBackend, "capture", counted)
    return calls


def titles(figure: Figure) -> list[str]:
    return [axis.get_title() for axis in figure.axes]


def test_layer_grid(count_engine):
    x = torch.rand(1, 3, 16, 16)
    names = ["ant", "bee", "cat", "dog", "eel"]
    figure = figures.layer_grid(tiny_net(), x, class_names=names)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 1 + 4  # the input, then layers 0..3
    assert titles(figure)[1:] == ["0\n16x16", "1\n16x16", "2\n8x8", "3\n8x8"]
    assert count_engine["map passes"] == 1
    top = int(gw.predict(tiny_net(), x)[0].argmax())
    assert f"{top}: {names[top]}" in figure._suptitle.get_text()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layer_grid_draws_the_engines_overlay():
    net = tiny_net()
    x = torch.rand(1, 3, 16, 16)
    picture = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    figure = figures.layer_grid(net, x, layers=["2"], target=1, image=picture, alpha=0.3)
    assert len(figure.axes) == 2
    shown = figure.axes[1].images[0].get_array()
    expected = gw.overlay(picture, gw.gradcam(net, x, target=1, layer="2")[0], alpha=0.3)
    np.testing.assert_array_equal(np.asarray(shown), expected)
    np.testing.assert_array_equal(np.asarray(figure.axes[0].images[0].get_array()), picture)


@pytest.mark.parametrize("method", ["gradcam++", "hirescam"])
def test_grids_draw_the_method_they_are_given(count_engine, method):
    net = tiny_net()
    x = torch.rand(1, 3, 16, 16)
    picture = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    figure = figures.layer_grid(net, x, layers=["0"], target=2, image=picture, method=method)
    heat = gw.gradcam(net, x, target=2, layer="0", method=method)[0]
    expected = gw.overlay(picture, heat, alpha=0.5)
    np.testing.assert_array_equal(np.asarray(figure.axes[1].images[0].get_array()), expected)
    assert figure._suptitle.get_text().startswith(gw.METHODS[method].label + " of class 2")
    assert count_engine["map passes"] == 2  # the figure's one pass, and the check's


def test_class_grid(count_engine):
    x = torch.rand(1, 3, 16, 16)
    figure = figures.class_grid(tiny_net(), x, top_k=3)
    assert len(figure.axes) == 1 + 3
    assert count_engine["map passes"] == 1  # every class from one pass
    order = np.argsort(-gw.predict(tiny_net(), x)[0])
    assert [t.split(" (")[0] for t in titles(figure)[1:]] == [str(c) for c in order[:3]]
    figure = figures.class_grid(tiny_net(), x, targets=[4, 0], layer="1", columns=2)
    assert len(figure.axes) == 3
    assert "layer 1" in figure._suptitle.get_text()


def test_image_grid_one_row_per_image(count_engine):
    digits, labels = gw.datasets.load_mnist("test")
    picks = [int(np.flatnonzero(labels == d)[0]) for d in (1, 7, 9)]
    x = torch.from_numpy(digits[picks, None].astype(np.float32) / 255.0)
    net = tiny_net(in_channels=1, classes=10)
    figure = figures.image_grid(
        net, x, layers=["0", "2"], images=digits[picks], row_labels=["1", "7", "9"]
    )
    assert len(figure.axes) == 3 * (1 + 2)
    assert count_engine["map passes"] == 1
    assert titles(figure)[0].startswith("1\nclass ")
    np.testing.assert_array_equal(
        np.asarray(figure.axes[3].images[0].get_array())[..., 0], digits[picks[1]]
    )
    same = figures.image_grid(net, x, target=7)  # one class for every image
    assert len(same.axes) == 3 * 2
    assert all("class 7 (" in title for title in titles(same)[::2])


def test_image_grid_rejects_mismatched_pictures():
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="2 images"):
        figures.image_grid(tiny_net(), x, images=[np.zeros((16, 16))])


def test_layer_grid_wraps_into_rows():
    figure = figures.layer_grid(tiny_net(), torch.rand(1, 3, 16, 16), columns=2)
    assert len(figure.axes) == 5  # 3 rows of 2, the sixth cell removed
    rows = {round(axis.get_position().y0, 3) for axis in figure.axes}
    assert len(rows) == 3


def test_grids_show_as_png_in_jupyter():
    figure = figures.class_grid(tiny_net(), torch.rand(1, 3, 16, 16), top_k=2)
    assert isinstance(figure, Figure)
    assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_top_channels_ranks_by_contribution():
    maps = np.zeros((2, 2, 4))
    maps[..., 0], maps[..., 1], maps[..., 2], maps[..., 3] = 1.0, 2.0, 3.0, 4.0
    weights = np.array([5.0, -1.0, 1.0, 0.5])  # contributions 5, -2, 3, 2
    assert list(gw.figures.top_channels(maps, weights, top=3)) == [0, 2, 3]
    with pytest.raises(ValueError, match="channels last"):
        gw.figures.top_channels(maps, weights[:3])


def test_weighted_sum_panels_add_up_to_the_map():
    rng = np.random.default_rng(0)
    maps = rng.random((7, 7, 12))
    weights = rng.normal(size=12)
    figure = gw.figures.weighted_sum(maps, weights, top=3, relu=True, symbol="alpha")
    parts = [  # the bottom row's weighted maps, titled "alpha_k A^k" or "+ alpha_k A^k"
        np.asarray(axis.images[0].get_array())
        for axis in figure.axes
        if axis.get_title().lstrip("+ ").startswith("$\\alpha_")
    ]
    rest = next(a for a in figure.axes if "other" in a.get_title()).images[0].get_array()
    total = next(a for a in figure.axes if a.get_title().startswith("$=")).images[0].get_array()
    assert len(parts) == 3
    np.testing.assert_allclose(sum(parts) + np.asarray(rest), maps @ weights, atol=1e-12)
    np.testing.assert_allclose(np.asarray(total), maps @ weights)
    relu_axis = next(a for a in figure.axes if a.get_title().startswith("ReLU(sum)"))
    relu = relu_axis.images[0].get_array()
    np.testing.assert_allclose(np.asarray(relu), np.maximum(maps @ weights, 0))
    top = gw.figures.top_channels(maps, weights, top=3)
    titles = [a.get_title() for a in figure.axes if a.get_title().startswith("$A^")]
    assert titles == [f"$A^{{{k}}}$\n$\\alpha_{{{k}}}$ = {weights[k]:.3g}" for k in top]
    assert figure._repr_png_().startswith(b"\x89PNG")
