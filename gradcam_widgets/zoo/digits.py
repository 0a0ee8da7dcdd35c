"""Small MNIST networks in Keras and PyTorch, framework-free parts (lessons 01-03).

Two architectures (:data:`ARCHITECTURES`), each built alike in both frameworks, with the
same layer names:

* a **GAP network** for CAM (lessons 01-02): three 3x3 convolutions with ReLU and two
  2x2 max-poolings, then global average pooling (GAP) and one dense layer::

      conv1(16) - pool1 - conv2(32) - pool2 - conv3(64) -> 7x7x64 - gap - scores(10)

* the **lecture CNN** (lesson 03), the network of the GIST Grad-CAM lecture: three 3x3
  convolutions of 32, 64 and 64 filters, each followed by a 2x2 max-pooling, then a
  Flatten + Dense head; 130,890 parameters::

      conv1(32) - pool1 - conv2(64) - pool2 - conv3(64) - pool3 -> 3x3x64
      - flatten(576) - dense(128, ReLU) - scores(10)

Keras models end in ``Dense(10, activation="softmax")`` as Keras code usually does;
PyTorch models return the pre-softmax scores (logits), as PyTorch code usually does.

This module holds the specification, the input conversions and the helpers that work
for both frameworks (:func:`accuracy`, :func:`predict_classes`, through ``gw.predict``).
The builders are in :mod:`.digits_keras` (:func:`keras_gap_net`, :func:`keras_lecture_cnn`,
:func:`train_keras`) and :mod:`.digits_torch` (:func:`torch_gap_net`,
:func:`torch_lecture_cnn`, :func:`train_torch`, :func:`torch_from_keras`, ``ConvReLU``);
they are reachable from here too (``digits.keras_gap_net``), imported on first use: a
Keras lesson never imports torch and a PyTorch lesson never imports TensorFlow.

Every builder and trainer takes a ``seed`` and touches no global random state: the same
seed gives the same initial weights and the same order of training batches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from ..typing import Model

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .digits_keras import keras_gap_net, keras_lecture_cnn, train_keras
    from .digits_torch import (
        torch_from_keras,
        torch_gap_net,
        torch_lecture_cnn,
        train_torch,
    )

__all__ = [
    "ARCHITECTURES",
    "CLASS_NAMES",
    "SIZE",
    "LayerSpec",
    "accuracy",
    "bar_rows",
    "erase_rows",
    "keras_gap_net",
    "keras_lecture_cnn",
    "predict_classes",
    "to_keras_input",
    "to_torch_input",
    "torch_from_keras",
    "torch_gap_net",
    "torch_lecture_cnn",
    "train_keras",
    "train_torch",
]

#: Names of the ten classes, index ``d`` is the digit ``d``.
CLASS_NAMES: list[str] = [str(digit) for digit in range(10)]

#: The side of an MNIST digit in pixels.
SIZE = 28

#: One layer of an architecture: ``(kind, name, size)``. Kinds: ``"conv"`` (3x3,
#: ``padding="same"``, ReLU; size = filters), ``"pool"`` (2x2 max-pooling), ``"gap"``
#: (global average pooling), ``"flatten"``, ``"dense"`` (ReLU; size = units) and
#: ``"scores"`` (the last dense layer; size = classes). Size is 0 where unused.
LayerSpec = tuple[str, str, int]

#: The two architectures, input to output. Both builders read them.
ARCHITECTURES: dict[str, tuple[LayerSpec, ...]] = {
    "gap_net": (
        ("conv", "conv1", 16),
        ("pool", "pool1", 0),
        ("conv", "conv2", 32),
        ("pool", "pool2", 0),
        ("conv", "conv3", 64),
        ("gap", "gap", 0),
        ("scores", "scores", 10),
    ),
    "lecture_cnn": (
        ("conv", "conv1", 32),
        ("pool", "pool1", 0),
        ("conv", "conv2", 64),
        ("pool", "pool2", 0),
        ("conv", "conv3", 64),
        ("pool", "pool3", 0),
        ("flatten", "flatten", 0),
        ("dense", "dense", 128),
        ("scores", "scores", 10),
    ),
}

_LAZY = {
    "keras_gap_net": "digits_keras",
    "keras_lecture_cnn": "digits_keras",
    "train_keras": "digits_keras",
    "torch_gap_net": "digits_torch",
    "torch_lecture_cnn": "digits_torch",
    "train_torch": "digits_torch",
    "torch_from_keras": "digits_torch",
    "ConvReLU": "digits_torch",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def as_digits(images: np.ndarray) -> np.ndarray:
    """Check and return ``images`` as ``(N, 28, 28)``; one ``(28, 28)`` image becomes N=1."""
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim == 4 and 1 in (array.shape[1], array.shape[-1]):
        array = array.reshape(array.shape[0], SIZE, SIZE) if array.size else array
    if array.ndim != 3 or array.shape[1:] != (SIZE, SIZE):
        raise ValueError(
            f"digits have shape {np.asarray(images).shape}: give (N, 28, 28) images as "
            "gw.datasets.load_mnist returns them, or one (28, 28) image."
        )
    return array


def scale(array: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]; floats must already be in [0, 1]."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    scaled = array.astype(np.float32)
    if scaled.size and (scaled.min() < 0.0 or scaled.max() > 1.0):
        raise ValueError(
            "float digits must already be in [0, 1]; pass uint8 images (0-255) to have them scaled."
        )
    return scaled


def to_keras_input(images: np.ndarray) -> np.ndarray:
    """Scale uint8 digits to [0, 1] and add the channel axis last: ``(N, 28, 28, 1)``.

    Args:
        images: uint8 ``(N, 28, 28)`` (or one ``(28, 28)`` digit), or floats already in
            [0, 1].

    Returns:
        float32 ``(N, 28, 28, 1)``, the layout Keras convolutions expect (N, H, W, C).
    """
    return scale(as_digits(images))[..., np.newaxis]


def to_torch_input(images: np.ndarray) -> torch.Tensor:
    """Scale uint8 digits to [0, 1] and add the channel axis first: ``(N, 1, 28, 28)``.

    Args:
        images: uint8 ``(N, 28, 28)`` (or one ``(28, 28)`` digit), or floats already in
            [0, 1].

    Returns:
        a float32 ``torch.Tensor`` ``(N, 1, 28, 28)``, the layout PyTorch expects
        (N, C, H, W).
    """
    import torch

    return torch.from_numpy(np.ascontiguousarray(scale(as_digits(images))[:, np.newaxis]))


def _channels_last(model: Model) -> bool:
    """The model's image layout, as its backend declares it."""
    from ..backends import backend_for

    return bool(backend_for(model).channels_last)


def accuracy(model: Model, images: np.ndarray, labels: np.ndarray, batch_size: int = 100) -> float:
    """The fraction of ``images`` that ``model`` classifies as ``labels``.

    Args:
        model: a Keras or PyTorch digit classifier.
        images: uint8 ``(N, 28, 28)`` digits (prepared here in the model's layout).
        labels: int ``(N,)``.
        batch_size: images per forward pass (bounds the memory used: a lesson training
            networks in two frameworks keeps every freed block in the allocator).

    Returns:
        accuracy in [0, 1].
    """
    return float(np.mean(predict_classes(model, images, batch_size) == np.asarray(labels)))


def predict_classes(model: Model, images: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """The predicted digit of each image, in batches, through ``gw.predict``.

    Args:
        model: a Keras or PyTorch digit classifier (any framework ``gw.predict`` takes).
        images: uint8 ``(N, 28, 28)`` digits.
        batch_size: images per forward pass.

    Returns:
        int64 ``(N,)``.
    """
    from ..engine import predict

    digits = scale(as_digits(images))
    batch = digits[..., np.newaxis] if _channels_last(model) else digits[:, np.newaxis]
    predictions = [
        predict(model, batch[start : start + batch_size]).argmax(axis=1)
        for start in range(0, len(batch), batch_size)
    ]
    return np.concatenate(predictions).astype(np.int64)


def bar_rows(images: np.ndarray, rows: int = 5, threshold: int = 50) -> np.ndarray:
    """Where the bar of a 7 is: a band of pixel rows around the upper half's inkiest row.

    For each image, the row of the upper half (rows ``0`` to ``SIZE // 2 - 1``) with the
    most ink pixels (brighter than ``threshold``) is the bar's centre ``r``; the band is
    rows ``r - rows // 2`` to ``r + rows // 2`` (moved inside the image if needed).

    Args:
        images: uint8 ``(N, 28, 28)`` digits.
        rows: the band's height in pixel rows (odd keeps ``r`` in the middle).
        threshold: the brightness above which a pixel is ink.

    Returns:
        int ``(N, 4)`` boxes ``(top, left, bottom, right)`` covering the full width, the
        form ``gw.metrics.region_share`` takes.
    """
    digits = as_digits(images)
    ink_per_row = (digits[:, : SIZE // 2] > threshold).sum(axis=2)
    centre = ink_per_row.argmax(axis=1)
    top = np.clip(centre - rows // 2, 0, SIZE - rows)
    return np.stack(
        [top, np.zeros_like(top), top + rows, np.full_like(top, SIZE)], axis=1
    ).astype(np.int64)


def erase_rows(images: np.ndarray, boxes: np.ndarray, shift: int = 0) -> np.ndarray:
    """Copies of ``images`` with each image's band of rows set to black (0).

    Args:
        images: uint8 ``(N, 28, 28)`` digits.
        boxes: ``(N, 4)`` boxes ``(top, left, bottom, right)``, as :func:`bar_rows` gives.
        shift: move each band down by this many rows first (a control band elsewhere);
            the band is cut at the image's bottom edge.

    Returns:
        uint8 ``(N, 28, 28)``; ``images`` is not changed.
    """
    erased = as_digits(images).copy()
    for image, (top, left, bottom, right) in zip(erased, np.asarray(boxes), strict=True):
        image[top + shift : bottom + shift, left:right] = 0
    return erased
