"""The pointing game: does a map's maximum fall on the object?

Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016. On images
where the object's box is known, a map scores a *hit* when its maximum (after resizing
to the image) lies inside the box, enlarged by ``tolerance`` pixels on each side::

    hit = (top - t <= i* < bottom + t) and (left - t <= j* < right + t),
    (i*, j*) = argmax M+

Its mean over the images is compared with :func:`random_baseline`, the hit rate of a
point drawn uniformly at random. A map with no positive value points nowhere: it is a
miss (the all-zero rule of :mod:`gradcam_widgets.metrics`).
"""

from __future__ import annotations

import numpy as np

from ..typing import Boxes, ImageSize
from .regions import as_boxes, image_shape, upsample_maps

__all__ = ["pointing_game", "random_baseline"]


def pointing_game(
    heatmaps: np.ndarray,
    boxes: Boxes,
    image_size: ImageSize,
    tolerance: int = 0,
) -> np.ndarray:
    """Hits of the pointing game: does each map's maximum fall inside its box?

    The map is resized to the image (bilinear) before its maximum is taken; a map with
    no positive value points nowhere and misses.

    Args:
        heatmaps: ``(N, h, w)`` maps (or one ``(h, w)``).
        boxes: one box for every map, or one per map, ``(N, 4)``.
        image_size: the image's side or ``(height, width)``.
        tolerance: pixels by which each box is enlarged on each side (Zhang et al. used
            15 on ImageNet-sized images).

    Returns:
        bool ``(N,)``; its mean is the pointing-game accuracy.
    """
    maps = upsample_maps(heatmaps, image_size)
    hits = np.zeros(len(maps), dtype=bool)
    for index, (heat, box) in enumerate(zip(maps, as_boxes(boxes, len(maps)))):
        if heat.max() <= 0.0:
            continue
        row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
        top, left, bottom, right = (int(v) for v in box)
        hits[index] = (
            top - tolerance <= row < bottom + tolerance
            and left - tolerance <= col < right + tolerance
        )
    return hits


def random_baseline(boxes: Boxes, image_size: ImageSize, tolerance: int = 0) -> float:
    """The expected pointing-game accuracy of a point drawn uniformly at random.

    A random point lands in a box with probability ``area(box) / (H * W)``; averaged
    over the images, that is the score any method must clearly beat. With a tolerance,
    each box first grows by ``tolerance`` pixels on every side, clipped to the image (a
    point on the image cannot land outside it), as :func:`pointing_game` counts hits.

    Args:
        boxes: ``(N, 4)`` boxes (or one box).
        image_size: the image's side or ``(height, width)``.
        tolerance: pixels by which each box is enlarged on each side, as in
            :func:`pointing_game`.

    Returns:
        the mean of (grown, clipped) box area / image area.
    """
    array = np.atleast_2d(np.asarray(boxes, dtype=np.float64))
    if array.ndim != 2 or array.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {np.shape(boxes)}.")
    height, width = image_shape(image_size)
    if tolerance:
        grown = array + np.array([-1.0, -1.0, 1.0, 1.0]) * tolerance
        array = np.clip(grown, 0.0, np.array([height, width, height, width], dtype=np.float64))
    areas = (array[:, 2] - array[:, 0]).clip(min=0) * (array[:, 3] - array[:, 1]).clip(min=0)
    return float(np.mean(areas / (height * width)))
