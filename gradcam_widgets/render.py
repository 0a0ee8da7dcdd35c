"""Pure rendering functions: ndarray in, ndarray (or PNG bytes) out.

Colormaps are matplotlib's, resizing and PNG encoding Pillow's. No widget code here, so
figures, the command line and the Explorer all draw the same pixels.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib import colormaps
from PIL import Image

from ._core import normalize

__all__ = [
    "DEFAULT_COLORMAP",
    "as_rgb_uint8",
    "blend",
    "colorize",
    "image_from_inputs",
    "overlay",
    "resize_map",
    "to_png",
]

#: The default colour scale: perceptually uniform, read the same by the common kinds of
#: colour-vision deficiency and in grayscale print (matplotlib's viridis; Smith & van der
#: Walt, "A Better Default Colormap for Matplotlib", SciPy 2015). ``"jet"`` is not: its
#: bright cyan and yellow bands make edges that the data does not have.
DEFAULT_COLORMAP = "viridis"


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as uint8 RGB ``(H, W, 3)``.

    Args:
        image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped);
            uint8, or float in [0, 1].

    Raises:
        ValueError: another shape, or float values outside [0, 1].
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., :3] if array.shape[-1] != 1 else array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., np.newaxis], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(
            f"image has shape {np.asarray(image).shape}: give (H, W) grayscale or (H, W, 3) "
            "RGB, channels last."
        )
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.bool_):
        return array.astype(np.uint8) * 255
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise ValueError(
            "a float image must hold values in [0, 1]; divide 0-255 images by 255 or pass "
            "them as uint8."
        )
    return np.round(array * 255.0).astype(np.uint8)


def resize_map(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float map to ``size = (height, width)`` with Pillow."""
    array = np.asarray(heatmap, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (h, w), got shape {array.shape}.")
    height, width = size
    if array.shape == (height, width):
        return array
    resized = Image.fromarray(array, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """Map a 2-D map to uint8 RGB with a matplotlib colormap, after scaling to [0, 1]."""
    try:
        cmap = colormaps[colormap]
    except KeyError:
        raise ValueError(
            f"unknown colormap {colormap!r}; try 'jet', 'viridis', 'inferno' or 'magma'."
        ) from None
    rgba = cmap(normalize(heatmap), bytes=True)
    return np.asarray(rgba[..., :3])


def blend(rgb: np.ndarray, colour: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * rgb + alpha * colour``, rounded to uint8: the one blend of the package.

    Args:
        rgb: the picture, uint8 (or float 0-255) ``(H, W, 3)``.
        colour: the coloured map, same shape.
        alpha: the map's weight, 0 (picture only) to 1 (map only).
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}.")
    mixed = (1.0 - alpha) * np.asarray(rgb, dtype=np.float32) + alpha * np.asarray(
        colour, dtype=np.float32
    )
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def overlay(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4, colormap: str = "jet"
) -> np.ndarray:
    """Blend a coloured heatmap over an image: ``(1 - alpha) * image + alpha * colour``.

    The map is resized to the image (bilinear) and normalised by its maximum; an all-zero
    map gives the plain image (never NaN), since there is nothing to show.

    Args:
        image: RGB or grayscale, uint8 or float in [0, 1], ``(H, W[, C])``.
        heatmap: 2-D map at any resolution (a batch of one is accepted too).
        alpha: the heatmap's weight, 0 (image only) to 1 (heatmap only).
        colormap: a matplotlib colormap name.

    Returns:
        uint8 ``(H, W, 3)``.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}.")
    rgb = as_rgb_uint8(image)
    array = np.asarray(heatmap, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    resized = resize_map(array, rgb.shape[:2])
    if not np.any(normalize(resized) > 0):
        return rgb.copy()
    return blend(rgb, colorize(resized, colormap), alpha)


def to_png(image: np.ndarray, scale: int = 1, compress_level: int = 6) -> bytes:
    """Encode a uint8 RGB image as PNG bytes, optionally enlarged with nearest neighbour.

    Args:
        image: uint8 ``(H, W, 3)`` (or anything :func:`as_rgb_uint8` accepts).
        scale: integer enlargement, so that a 28-pixel digit is readable on screen.
        compress_level: zlib level 0-9. Interactive views use 1: on a 320 x 213 picture
            it encodes in about a third of the default level's time, for files about
            10 % larger.
    """
    picture = Image.fromarray(as_rgb_uint8(image))
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.Resampling.NEAREST
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def image_from_inputs(inputs: Any, channels_first: bool) -> np.ndarray:
    """A drawable picture from a model's input: float in [0, 1], ``(H, W)`` or ``(H, W, 3)``.

    The values are rescaled linearly from their minimum to their maximum, for display
    only. A per-channel normalisation (ImageNet's mean and standard deviation) is not
    undone exactly, so colours may look a little off: pass the original picture to see
    it as it was.

    Args:
        inputs: one image, ``(1, C, H, W)`` / ``(C, H, W)`` when ``channels_first``,
            ``(1, H, W, C)`` / ``(H, W, C)`` otherwise; numpy or a framework tensor.
        channels_first: the layout of ``inputs`` (torch: True; Keras: False).

    Raises:
        ValueError: a batch of several images, or a channel count that is neither 1 nor 3.
    """
    from .backends import to_numpy  # imports no framework

    array = np.asarray(to_numpy(inputs)).astype(np.float32)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(
                f"inputs hold {array.shape[0]} images; the Explorer shows one: pass "
                "inputs[:1] (a batch of one)."
            )
        array = array[0]
    if array.ndim == 3 and channels_first:
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(
            f"cannot draw an input of shape {array.shape} as a picture: pass the picture "
            "itself as image= (RGB or grayscale, H x W)."
        )
    low, high = float(array.min()), float(array.max())
    if high > low:
        return (array - low) / (high - low)
    return np.zeros_like(array)
