"""A dataset with a shortcut, and measures of where a map puts its mass (lesson 05).

A *shortcut* is a feature that predicts the label in the training data for the wrong
reason: the watermark that every "cat" photo of one stock agency carries, or the token a
hospital prints on its X-rays when its patients are sicker. A network learns whatever
separates the classes most easily, so it learns the shortcut and the test accuracy,
measured on data with the same shortcut, looks excellent.

This module builds such a dataset from MNIST digits: for a few classes, every image gets
a small textured mark in a corner (a different texture per class), like a watermark. It
also measures what a Grad-CAM map says about it: :func:`region_share` is the share of a
map's mass inside a box, :func:`peak_in_box` whether its maximum falls there.

Boxes are ``(top, left, bottom, right)`` in pixels, with ``bottom`` and ``right``
exclusive, as numpy slices are: the box ``(0, 0, 8, 8)`` is ``image[0:8, 0:8]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .render import resize_map

__all__ = [
    "Box",
    "PATTERNS",
    "DEFAULT_MARKS",
    "CORNERS",
    "mark_pattern",
    "corner_box",
    "add_mark",
    "make_shortcut_dataset",
    "upsample_maps",
    "region_share",
    "peak_in_box",
]

#: ``(top, left, bottom, right)``; bottom and right are exclusive.
Box = tuple[int, int, int, int]

#: The marks :func:`mark_pattern` draws. Textures (``checker``, ``dots``,
#: ``sparse_dots``) look like nothing in a handwritten digit; ``square`` and ``cross``
#: look like pen strokes, so the network's stroke detectors also respond to them.
PATTERNS: dict[str, str] = {
    "checker": "a checkerboard of single pixels",
    "dots": "a dot on every second pixel of every second row",
    "sparse_dots": "a dot on every third pixel of every third row",
    "square": "a filled white square",
    "cross": "the two diagonals, an X",
}

#: The shortcut of lesson 05: digits 2, 5 and 8 each carry their own texture.
DEFAULT_MARKS: dict[int, str] = {2: "checker", 5: "dots", 8: "sparse_dots"}

#: Corner names accepted by :func:`corner_box` and :func:`add_mark`.
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def mark_pattern(name: str, size: int = 6) -> np.ndarray:
    """A square mark, white (255) on black (0), as uint8 ``(size, size)``.

    Args:
        name: a key of :data:`PATTERNS`.
        size: the side in pixels (at least 2).

    Returns:
        uint8 ``(size, size)``.
    """
    if name not in PATTERNS:
        raise ValueError(f"unknown mark {name!r}; choose one of {', '.join(PATTERNS)}.")
    if int(size) < 2:
        raise ValueError(f"a mark needs a side of at least 2 pixels, got {size}.")
    rows, cols = np.indices((int(size), int(size)))
    if name == "checker":
        on = (rows + cols) % 2 == 1
    elif name == "dots":
        on = (rows % 2 == 0) & (cols % 2 == 0)
    elif name == "sparse_dots":
        on = (rows % 3 == 0) & (cols % 3 == 0)
    elif name == "square":
        on = np.ones_like(rows, dtype=bool)
    else:  # cross
        on = (rows == cols) | (rows + cols == size - 1)
    return (on * 255).astype(np.uint8)


def corner_box(image_size: int | tuple[int, int], extent: int, corner: str = "top-left") -> Box:
    """The square of side ``extent`` pixels in one corner of an image.

    Args:
        image_size: the image's side, or its ``(height, width)``.
        extent: the square's side in pixels.
        corner: one of :data:`CORNERS`.

    Returns:
        ``(top, left, bottom, right)``, bottom and right exclusive.
    """
    height, width = _size(image_size)
    if corner not in CORNERS:
        raise ValueError(f"unknown corner {corner!r}; choose one of {', '.join(CORNERS)}.")
    if not 0 < extent <= min(height, width):
        raise ValueError(f"extent must be between 1 and {min(height, width)}, got {extent}.")
    top = 0 if corner.startswith("top") else height - extent
    left = 0 if corner.endswith("left") else width - extent
    return (top, left, top + extent, left + extent)


def add_mark(
    images: np.ndarray, pattern: np.ndarray, *, corner: str = "top-left", margin: int = 1
) -> np.ndarray:
    """Stamp ``pattern`` into one corner of every image, ``margin`` pixels from the edges.

    The mark replaces the pixels under it, as a watermark printed over a photo does.

    Args:
        images: uint8 ``(N, H, W)`` (or one ``(H, W)`` image).
        pattern: uint8 ``(s, s)``, e.g. from :func:`mark_pattern`.
        corner: one of :data:`CORNERS`.
        margin: pixels between the mark and the image's edges.

    Returns:
        a marked copy, same shape and dtype; ``images`` is not changed.
    """
    marked = np.array(images, copy=True)
    single = marked.ndim == 2
    if single:
        marked = marked[np.newaxis]
    if marked.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (H, W), got shape {np.shape(images)}.")
    side = pattern.shape[0]
    top, left, bottom, right = corner_box(marked.shape[1:], side + 2 * margin, corner)
    marked[:, top + margin : bottom - margin, left + margin : right - margin] = pattern
    return marked[0] if single else marked


def make_shortcut_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    marks: Mapping[int, str] | None = None,
    *,
    size: int = 6,
    corner: str = "top-left",
    margin: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Give every image of some classes its class's mark: a shortcut to the label.

    Every image whose label is a key of ``marks`` gets that class's texture in the same
    corner; the other images are left as they are. In data built this way the mark
    alone tells those classes apart, perfectly.

    Args:
        images: uint8 ``(N, H, W)``.
        labels: int ``(N,)``.
        marks: class -> pattern name (:data:`PATTERNS`); default :data:`DEFAULT_MARKS`.
        size: the mark's side in pixels.
        corner: one of :data:`CORNERS`.
        margin: pixels between the mark and the image's edges.

    Returns:
        ``(marked_images, is_marked)``: a marked copy of ``images`` and a boolean ``(N,)``
        array, True where a mark was added.
    """
    marks = dict(DEFAULT_MARKS if marks is None else marks)
    array = np.asarray(images)
    labels = np.asarray(labels)
    if array.ndim != 3 or len(array) != len(labels):
        raise ValueError(
            f"expected (N, H, W) images and N labels, got {array.shape} and {labels.shape}."
        )
    marked = array.copy()
    is_marked = np.zeros(len(labels), dtype=bool)
    for cls, name in marks.items():
        members = labels == cls
        if members.any():
            marked[members] = add_mark(
                array[members], mark_pattern(name, size), corner=corner, margin=margin
            )
        is_marked |= members
    return marked, is_marked


def upsample_maps(heatmaps: np.ndarray, image_size: int | tuple[int, int]) -> np.ndarray:
    """Resize maps ``(N, h, w)`` to the image (bilinear, as ``gw.overlay`` draws them).

    Negative values are set to 0 (Grad-CAM maps have none; a CAM may).

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
    size = _size(image_size)
    return np.stack([np.maximum(resize_map(m, size), 0.0) for m in maps]).astype(np.float32)


def region_share(
    heatmaps: np.ndarray,
    boxes: Box | Sequence[Box] | np.ndarray,
    image_size: int | tuple[int, int],
) -> np.ndarray:
    """The share of each map's mass that lies inside a box, from 0 to 1.

    The map is resized to the image first (:func:`upsample_maps`), so the box is in
    image pixels. A map that is zero everywhere has no mass to share: its share is 0.

    Args:
        heatmaps: ``(N, h, w)`` maps (or one ``(h, w)``), at any resolution.
        boxes: one box for every map, or one box per map, ``(N, 4)``.
        image_size: the image's side or ``(height, width)``.

    Returns:
        float ``(N,)``: ``sum(map inside box) / sum(map)``.
    """
    maps = upsample_maps(heatmaps, image_size)
    shares = np.zeros(len(maps), dtype=np.float64)
    for index, (heat, box) in enumerate(zip(maps, _boxes(boxes, len(maps)))):
        total = float(heat.sum(dtype=np.float64))
        if total > 0.0:
            top, left, bottom, right = box
            shares[index] = float(heat[top:bottom, left:right].sum(dtype=np.float64)) / total
    return shares


def peak_in_box(
    heatmaps: np.ndarray,
    boxes: Box | Sequence[Box] | np.ndarray,
    image_size: int | tuple[int, int],
    tolerance: int = 0,
) -> np.ndarray:
    """Whether each map's maximum falls inside its box (a "hit" of the pointing game).

    The map is resized to the image first. A map with no positive value points nowhere
    and never hits.

    Args:
        heatmaps: ``(N, h, w)`` maps (or one ``(h, w)``).
        boxes: one box for every map, or one per map, ``(N, 4)``.
        image_size: the image's side or ``(height, width)``.
        tolerance: pixels by which the box is enlarged on each side (Zhang et al. used
            15 pixels on ImageNet-sized images).

    Returns:
        bool ``(N,)``.
    """
    maps = upsample_maps(heatmaps, image_size)
    hits = np.zeros(len(maps), dtype=bool)
    for index, (heat, box) in enumerate(zip(maps, _boxes(boxes, len(maps)))):
        if heat.max() <= 0.0:
            continue
        row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
        top, left, bottom, right = box
        hits[index] = (
            top - tolerance <= row < bottom + tolerance
            and left - tolerance <= col < right + tolerance
        )
    return hits


def _size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    height, width = (int(v) for v in image_size)
    return height, width


def _boxes(boxes: Box | Sequence[Box] | np.ndarray, count: int) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.int64)
    if array.shape == (4,):
        array = np.tile(array, (count, 1))
    if array.shape != (count, 4):
        raise ValueError(
            f"boxes must be one (top, left, bottom, right) box or one per map ({count}, 4), "
            f"got shape {array.shape}."
        )
    return array
