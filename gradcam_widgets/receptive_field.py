"""Receptive fields: how many input pixels one cell of a feature map can see.

A cell of a layer's output depends on a square of input pixels, its *receptive field*.
Along a plain chain of convolutions and poolings it grows by the rule (Araujo et al.,
"Computing Receptive Fields of Convolutional Neural Networks", Distill 2019)::

    r_out = r_in + (k - 1) * j_in        j_out = j_in * s

where ``k`` is the layer's kernel size (dilation included: ``(k - 1) * d + 1``), ``s`` its
stride, ``j`` the distance in input pixels between neighbouring cells (the *jump*), and
the input starts at ``r = 1, j = 1``. :func:`measured` checks the rule independently,
with gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import backend_for, is_model

__all__ = ["Field", "grow", "measured", "near_share", "receptive_fields", "seen_by"]


@dataclass(frozen=True)
class Field:
    """The receptive field of one layer's cells.

    Attributes:
        size: the side of the square of input pixels one cell sees.
        jump: the distance, in input pixels, between two neighbouring cells.
    """

    size: int
    jump: int


def grow(stack: Sequence[tuple[int, int]]) -> list[Field]:
    """Receptive fields after each layer of a chain of ``(kernel, stride)`` pairs.

    Args:
        stack: one ``(kernel size, stride)`` per convolution or pooling, in order.

    Returns:
        one :class:`Field` per layer of ``stack``.

    Example:
        ``grow([(3, 1), (2, 2)])`` gives sizes 3 then 4, jumps 1 then 2.
    """
    size, jump, fields = 1, 1, []
    for kernel, stride in stack:
        if kernel < 1 or stride < 1:
            raise ValueError(f"kernel and stride must be >= 1, got ({kernel}, {stride}).")
        size += (kernel - 1) * jump
        jump *= stride
        fields.append(Field(size, jump))
    return fields


def seen_by(field: Field, cell: int) -> tuple[int, int]:
    """The first and last input pixel (along one axis) that cell ``cell`` of a layer sees.

    For a chain of ``same``-padded convolutions with odd kernels and poolings whose
    kernel equals their stride (the lessons' digit networks), cell ``i`` is centred on
    pixel ``jump * i + (jump - 1) / 2`` and sees ``size`` pixels around it:

    ``first = jump * i - (size - jump) / 2``, ``last = first + size - 1``.

    Pixels outside the image (negative, or past its side) are the padding's zeros.

    Args:
        field: the layer's :class:`Field` (from :func:`receptive_fields`).
        cell: the cell's index along the axis (a map row or a map column).

    Returns:
        ``(first, last)`` input pixel indices, inclusive.

    Raises:
        ValueError: ``size - jump`` is odd, so the field has no centred placement.
    """
    if (field.size - field.jump) % 2:
        raise ValueError(
            f"a field of size {field.size} and jump {field.jump} is not centred on its cell; "
            "seen_by() covers same-padded chains (odd kernels, pooling kernel = stride)."
        )
    first = field.jump * int(cell) - (field.size - field.jump) // 2
    return first, first + field.size - 1


def _backend(model: Any) -> Any:
    """The engine's adapter for ``model``; the framework-specific reading lives there."""
    if not is_model(model):
        raise TypeError(f"expected a Keras or torch model, got {type(model).__name__}.")
    return backend_for(model)


def receptive_fields(model: Any) -> dict[str, Field]:
    """The receptive field of every convolution and pooling of a plain chain model.

    Reads kernel sizes and strides from a Keras ``Sequential`` model or a torch
    ``nn.Sequential`` (the backend's ``layer_geometry``) and applies :func:`grow`.
    Layers after the first one that is not a convolution, a pooling or an element-wise
    layer (a ``Flatten``, say) are left out: their cells see the whole image.

    Args:
        model: a Keras ``Sequential`` or a torch ``nn.Sequential``.

    Returns:
        ``{layer name: Field}`` in forward order.

    Raises:
        TypeError: the model is neither.
        ValueError: a non-square kernel, stride or dilation.
    """
    geometry = _backend(model).layer_geometry(model)
    chain: list[tuple[str, tuple[int, int]]] = []
    for name, step in geometry:
        if step is None:
            if chain:
                break
            continue
        chain.append((name, step))
    fields = grow([step for _, step in chain])
    return {name: field for (name, _), field in zip(chain, fields, strict=True)}


def measured(model: Any, inputs: Any, layer: str) -> tuple[int, int]:
    """The receptive field of ``layer``'s centre cell, measured with gradients.

    Differentiates the centre cell (summed over channels) with respect to the input and
    returns the height and width of the box of input pixels where the gradient is not
    zero, over all images of the batch: an independent check of :func:`grow`. A ReLU or
    a max-pooling passes gradient to only some pixels for one image; the union over many
    images fills the field (it can never exceed it).

    Args:
        model: a torch or Keras model.
        inputs: a batch in the model's layout (torch N,C,H,W; Keras N,H,W,C).
        layer: the name of a layer with a spatial output (a map in any layout the
            engine decides: channels first or last, or a token grid).

    Returns:
        ``(rows, columns)`` of input pixels the centre cell depends on.
    """
    backend = _backend(model)
    gradient = backend.cell_gradient(model, backend.prepare(model, inputs), layer)
    support = np.abs(gradient).sum(axis=(0, 1)) > 0  # (N, C, H, W) -> (H, W)
    rows, cols = np.nonzero(support)
    if rows.size == 0:
        return (0, 0)
    return (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))


def near_share(maps: np.ndarray, mask: np.ndarray, distance: int) -> np.ndarray:
    """For each map, the share of its total within ``distance`` pixels of the mask.

    ``share = sum_{p in D} L~(p) / sum_p L~(p)``,

    where ``L~`` is the map resized (bilinear) to the mask's size with negatives clipped,
    and ``D`` is the mask grown by ``distance`` pixels in every direction (a square,
    like a receptive field). ``distance=0`` is the share on the mask itself.

    Args:
        maps: ``(N, h, w)`` maps at any resolution.
        mask: ``(N, H, W)`` booleans (e.g. a digit's ink pixels).
        distance: how far from the mask a pixel may be, in pixels (Chebyshev distance).

    Returns:
        float ``(N,)`` shares in [0, 1]; NaN for an all-zero map.
    """
    from scipy import ndimage

    from .render import resize_map

    mask = np.asarray(mask, dtype=bool)
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or mask.ndim != 3 or len(maps) != len(mask):
        raise ValueError(
            f"expected (N, h, w) maps and (N, H, W) masks, got {maps.shape} and {mask.shape}."
        )
    if distance < 0:
        raise ValueError(f"distance must be >= 0, got {distance}.")
    size = mask.shape[1:]
    structure = np.ones((2 * distance + 1, 2 * distance + 1), dtype=bool)
    shares = np.full(len(maps), np.nan)
    for i, (heat, region) in enumerate(zip(maps, mask, strict=True)):
        resized = np.maximum(resize_map(heat, size), 0.0)
        grown = ndimage.binary_dilation(region, structure) if distance else region
        total = resized.sum()
        if total > 0:
            shares[i] = resized[grown].sum() / total
    return shares
