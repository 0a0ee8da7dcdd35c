"""Rendering: pixel-exact checks of overlay, colorize and PNG encoding."""

import io

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

import gradcam_widgets as gw
from gradcam_widgets import render


def test_overlay_blends_pixel_by_pixel():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    heatmap = np.array([[0.0, 1.0], [0.5, 2.0]])  # normalised: [[0, .5], [.25, 1]]
    result = gw.overlay(image, heatmap, alpha=0.25, colormap="viridis")
    colours = colormaps["viridis"](np.array([[0.0, 0.5], [0.25, 1.0]]), bytes=True)[..., :3]
    expected = np.round(0.75 * 100 + 0.25 * colours.astype(np.float32)).astype(np.uint8)
    assert result.dtype == np.uint8
    assert result.shape == (2, 2, 3)
    np.testing.assert_array_equal(result, expected)


def test_alpha_zero_and_one():
    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    heatmap = np.random.default_rng(0).random((2, 2))
    np.testing.assert_array_equal(gw.overlay(image, heatmap, alpha=0.0), image)
    resized = render.resize_map(heatmap, (4, 4))
    np.testing.assert_array_equal(gw.overlay(image, heatmap, alpha=1.0), render.colorize(resized))


def test_all_zero_map_gives_the_plain_image_never_nan():
    image = np.random.default_rng(0).random((5, 7))
    result = gw.overlay(image, np.zeros((3, 3)), alpha=0.6)
    np.testing.assert_array_equal(result, render.as_rgb_uint8(image))


def test_grayscale_float_and_uint8_agree():
    gray = np.random.default_rng(1).integers(0, 256, (6, 6)).astype(np.uint8)
    heatmap = np.eye(3)
    from_uint8 = gw.overlay(gray, heatmap)
    from_float = gw.overlay(gray / 255.0, heatmap)
    from_rgb = gw.overlay(np.repeat(gray[..., None], 3, axis=-1), heatmap)
    np.testing.assert_array_equal(from_uint8, from_float)
    np.testing.assert_array_equal(from_uint8, from_rgb)


def test_heatmap_resized_bilinearly_to_the_image():
    resized = render.resize_map(np.array([[0.0, 1.0]]), (1, 4))
    # Pillow's bilinear (pixel-centre aligned): 0, .25, .75, 1
    np.testing.assert_allclose(resized, [[0.0, 0.25, 0.75, 1.0]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gw.overlay(np.zeros((4, 4, 3)), np.ones((2, 2)), alpha=1.5), "alpha"),
        (lambda: gw.overlay(np.full((4, 4), 3.0), np.ones((2, 2))), r"\[0, 1\]"),
        (lambda: gw.overlay(np.zeros((4, 4, 3)), np.ones((2, 2)), colormap="nope"), "colormap"),
        (lambda: gw.overlay(np.zeros((3, 5, 5)), np.ones((2, 2))), "channels last"),
    ],
)
def test_bad_render_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_png_round_trip_and_scale():
    image = np.random.default_rng(2).integers(0, 256, (3, 5, 3)).astype(np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(render.to_png(image, scale=4))))
    assert decoded.shape == (12, 20, 3)
    np.testing.assert_array_equal(decoded[::4, ::4], image)
