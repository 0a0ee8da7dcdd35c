"""Where does a map put its mass? Shares of a map inside a region of the image.

Every measure here is one computation, :func:`region_share`::

    share(M, R) = sum_{(i, j) in R} M+(i, j) / sum_{(i, j)} M+(i, j)

where ``M+`` is the map resized to the image (bilinear, as ``gw.overlay`` draws it) with
its negative values set to 0, and ``R`` a region of image pixels: a box, or a mask such
as the digit's ink (:func:`ink_share`) or the top rows of the image (:func:`top_share`).

**All-zero maps.** A map with no positive value carries no evidence: its share of any
region is 0.0 (never NaN), and in the pointing game it points nowhere and misses
(:func:`gradcam_widgets.metrics.pointing_game`). The same rule holds in every module of
:mod:`gradcam_widgets.metrics`.

Boxes are ``(top, left, bottom, right)`` in pixels, with ``bottom`` and ``right``
exclusive, as numpy slices are: the box ``(0, 0, 8, 8)`` is ``image[0:8, 0:8]``.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

from ..render import resize_map
from ..typing import Box, Boxes, ImageSize

__all__ = [
    "CORNERS",
    "Box",
    "corner_box",
    "ink_share",
    "region_share",
    "top_share",
    "upsample_maps",
]

#: One box for all maps, one box per map ``(N, 4)``, or a boolean mask ``(H, W)`` /
#: ``(N, H, W)`` of image pixels.
Region: TypeAlias = Boxes | np.ndarray

#: Corner names accepted by :func:`corner_box` (and ``gw.datasets.add_mark``).
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def corner_box(image_size: ImageSize, extent: int, corner: str = "top-left") -> Box:
    """The square of side ``extent`` pixels in one corner of an image.

    Args:
        image_size: the image's side, or its ``(height, width)``.
        extent: the square's side in pixels.
        corner: one of :data:`CORNERS`.

    Returns:
        ``(top, left, bottom, right)``, bottom and right exclusive.
    """
    height, width = image_shape(image_size)
    if corner not in CORNERS:
        raise ValueError(f"unknown corner {corner!r}; choose one of {', '.join(CORNERS)}.")
    if not 0 < extent <= min(height, width):
        raise ValueError(f"extent must be between 1 and {min(height, width)}, got {extent}.")
    top = 0 if corner.startswith("top") else height - extent
    left = 0 if corner.endswith("left") else width - extent
    return (top, left, top + extent, left + extent)


def upsample_maps(heatmaps: np.ndarray, image_size: ImageSize) -> np.ndarray:
    """Resize maps ``(N, h, w)`` to the image (bilinear, as ``gw.overlay`` draws them).

    Negative values are set to 0 (Grad-CAM maps have none; a CAM may): ``M+ = max(M, 0)``.

    Args:
        heatmaps: ``(N, h, w)`` or one ``(h, w)`` map.
        image_size: the image's side or ``(height, width)``.

    Returns:
        float32 ``(N, H, W)``.
    """
    maps = np.asarray(heatmaps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[np.newaxis]
    if maps.ndim != 3:
        raise ValueError(f"heatmaps must be (N, h, w) or (h, w), got shape {maps.shape}.")
    size = image_shape(image_size)
    return np.stack([np.maximum(resize_map(m, size), 0.0) for m in maps]).astype(np.float32)


def region_share(heatmaps: np.ndarray, region: Region, image_size: ImageSize) -> np.ndarray:
    """The share of each map's mass that lies inside a region, from 0 to 1.

    ``share = sum(M+ inside the region) / sum(M+)``, where ``M+`` is the map resized to
    the image with negatives set to 0 (:func:`upsample_maps`), so the region is in image
    pixels. A map with no positive value has no mass to share: its share is 0.0.

    Args:
        heatmaps: ``(N, h, w)`` maps (or one ``(h, w)``), at any resolution.
        region: one box for every map, one box per map ``(N, 4)``, or a boolean mask of
            image pixels, ``(H, W)`` for every map or ``(N, H, W)``.
        image_size: the image's side or ``(height, width)``.

    Returns:
        float64 ``(N,)``.
    """
    maps = upsample_maps(heatmaps, image_size)
    masks = _masks(region, len(maps), maps.shape[1:])
    totals = maps.sum(axis=(1, 2), dtype=np.float64)
    inside = (maps * masks).sum(axis=(1, 2), dtype=np.float64)
    shares = np.zeros(len(maps), dtype=np.float64)
    np.divide(inside, totals, out=shares, where=totals > 0.0)
    return shares


def ink_share(maps: np.ndarray, images: np.ndarray, threshold: int = 50) -> np.ndarray:
    """For each map, the share of its mass that lies on the digit's ink.

    ``ink_share = region_share(maps, images > threshold)``: the region is the set of
    pixels brighter than ``threshold``. A map that covers the image evenly scores the
    image's ink area (about 16 % for MNIST); one that sits only on the strokes scores 1.

    Args:
        maps: ``(N, h, w)`` maps at any resolution, as ``gw.gradcam`` returns.
        images: the ``(N, H, W)`` uint8 grayscale images they explain (a single
            channel axis, first or last, is accepted).
        threshold: the gray level above which a pixel counts as ink.

    Returns:
        float64 ``(N,)`` shares in [0, 1]; 0.0 for an all-zero map.
    """
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim == 4 and 1 in (array.shape[1], array.shape[-1]):
        array = array[:, 0] if array.shape[1] == 1 else array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"images must be (N, H, W) grayscale, got shape {np.shape(images)}.")
    count = 1 if np.ndim(maps) == 2 else len(maps)
    if len(array) != count:
        raise ValueError(f"{count} maps but {len(array)} images.")
    return region_share(maps, array > threshold, array.shape[1:])


def top_share(maps: np.ndarray, rows: int = 10, image_size: ImageSize = 28) -> np.ndarray:
    """For each map, the share of its mass in the top ``rows`` pixel rows of the image.

    ``top_share = region_share(maps, (0, 0, rows, width))``. On a 28 x 28 digit, the top
    10 rows (about a third of the image) hold the bar of a 7 and the loop of a 9.

    Args:
        maps: ``(N, h, w)`` maps at any resolution.
        rows: how many pixel rows, from the top, count.
        image_size: the image's side or ``(height, width)`` (MNIST's 28 by default).

    Returns:
        float64 ``(N,)`` shares in [0, 1]; 0.0 for an all-zero map.
    """
    height, width = image_shape(image_size)
    if not 0 <= rows <= height:
        raise ValueError(f"rows must be between 0 and {height}, got {rows}.")
    return region_share(maps, (0, 0, rows, width), (height, width))


def image_shape(image_size: ImageSize) -> tuple[int, int]:
    """``(height, width)`` from an image's side or its ``(height, width)``."""
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    height, width = (int(v) for v in image_size)
    return height, width


def as_boxes(boxes: Boxes, count: int) -> np.ndarray:
    """``(count, 4)`` int64 boxes from one box or one box per map, checked."""
    array = np.asarray(boxes, dtype=np.int64)
    if array.shape == (4,):
        array = np.tile(array, (count, 1))
    if array.shape != (count, 4):
        raise ValueError(
            f"boxes must be one (top, left, bottom, right) box or one per map ({count}, 4), "
            f"got shape {array.shape}."
        )
    return array


def _masks(region: Region, count: int, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean ``(count, H, W)`` masks from boxes or masks."""
    array = np.asarray(region)
    if array.dtype == bool:
        if array.ndim == 2:
            array = np.broadcast_to(array, (count, *array.shape))
        if array.shape != (count, *shape):
            raise ValueError(
                f"a mask region must be (H, W) or (N, H, W) = ({count}, {shape[0]}, "
                f"{shape[1]}), got shape {np.shape(region)}."
            )
        return array
    masks = np.zeros((count, *shape), dtype=bool)
    for mask, (top, left, bottom, right) in zip(masks, as_boxes(region, count)):
        mask[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = True
    return masks
