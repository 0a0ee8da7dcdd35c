"""How a Keras model's tensors are laid out as maps: shapes first, then the layers.

Keras holds images channels-last, but not every 4-D tensor of a Keras model is an image
grid: a vision transformer's attention scores are ``(N, heads, T, T)`` and its blocks
work on token sequences ``(N, T, C)``. The layout is decided as the torch adapter decides
it, in this order:

1. the shapes (:func:`~.layout.describe_outputs`, framework-free): most tensors read one
   way only, and a ``T``-token model's ``(N, heads, T, T)`` tensors are not maps;
2. the layer: a layer with a ``data_format`` (convolutions, poolings, padding,
   up-sampling) holds a 4-D tensor in that format, a ``BatchNormalization`` has its
   channels on ``axis``; ``Dense``, ``EinsumDense``, ``LayerNormalization`` and
   ``MultiHeadAttention`` act on the last axis, which picks channels-last (4-D) or a
   token sequence (3-D) among the readings the shape allows;
3. the tensor's neighbours: the same tensor object seen elsewhere (a layer's output is
   the next layer's input), element-wise layers (activations, dropout, ``Add``,
   ``Multiply``), whose output keeps their input's layout, a ``Concatenate`` along the
   channel axis, and a ``Reshape`` between a channels-last map ``(N, h, w, C)`` and its
   tokens ``(N, h*w, C)``;
4. a second pass on a wider input, where only a grid's width axis grows
   (:func:`~.layout.width_axis_layout`), when the model accepts another size.

What stays open is not a candidate, and naming it asks for ``reshape=``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from .layout import Layout, LayoutGuess, describe_outputs, width_axis_layout

# Layers whose output has their (first) input's layout: they act element by element,
# or per channel on a channel axis they do not move.
ELEMENTWISE: tuple[type, ...] = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.Identity,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Rescaling,
    keras.layers.Normalization,
    keras.layers.BatchNormalization,
)

# Element-wise layers with several inputs: a receptive field is the union of theirs.
MERGES: tuple[type, ...] = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
)

# Layers that act on the last axis of their input: features (or channels) last.
_LAST_AXIS: tuple[type, ...] = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.LayerNormalization,
    keras.layers.MultiHeadAttention,
)


@dataclass
class Entry:
    """One tensor the engine can name: a layer's output, or (``"name:input"``) its input.

    Attributes:
        name: the engine's name.
        layer: the layer that produced (or, for an input, received) the tensor.
        tensor: the tensor object of the first call (compared by identity only).
        source: for an output, the layer's first input tensor (an element-wise layer's
            output keeps its layout); None for an input.
        shape: the tensor's shape, or None when it is not a tensor.
        calls: how often the layer ran in the pass.
        is_input: the entry is a layer's input.
    """

    name: str
    layer: Any
    tensor: Any
    source: Any
    shape: tuple[int, ...] | None
    calls: int = 1
    is_input: bool = False


def _axis_of(layer: Any) -> int | None:
    axis = getattr(layer, "axis", None)
    if isinstance(axis, (list, tuple)):
        axis = axis[0] if len(axis) == 1 else None
    return axis if isinstance(axis, int) else None


def _declared(entry: Entry) -> Layout | None:
    """The layout a layer states for a 4-D tensor: its ``data_format``, or a batch norm's axis.

    Decisive whatever the shape says (a pooling's fixed output size need not keep the
    input's aspect), as a convolution's output is channels-first in the torch adapter.
    """
    shape, layer = entry.shape, entry.layer
    if shape is None or len(shape) != 4:
        return None
    data_format = getattr(layer, "data_format", None)
    if isinstance(layer, keras.layers.BatchNormalization):
        axis = _axis_of(layer)
        data_format = {3: "channels_last", 1: "channels_first"}.get(
            axis % 4 if axis is not None else -1
        )
    if data_format == "channels_last":
        return Layout("channels_last", (shape[1], shape[2]))
    if data_format == "channels_first":
        return Layout("channels_first", (shape[2], shape[3]))
    return None


def _last_axis(entry: Entry, options: tuple[Layout, ...]) -> Layout | None:
    """Among ``options``, the reading of a layer acting on the last axis.

    Its 4-D tensors are channels-last and its 3-D tensors token sequences.
    """
    shape, layer = entry.shape, entry.layer
    if shape is None or not options or not isinstance(layer, _LAST_AXIS):
        return None
    if isinstance(layer, keras.layers.LayerNormalization):
        axis = _axis_of(layer)
        if axis is None or axis % len(shape) != len(shape) - 1:
            return None
    kind = "channels_last" if len(shape) == 4 else "tokens"
    matching = [option for option in options if option.kind == kind]
    return matching[0] if len(matching) == 1 else None


def _spread(entries: list[Entry], layouts: list[Layout | None]) -> None:
    """Give undecided entries the layout of the same tensor, or of an element-wise input."""
    changed = True
    while changed:
        changed = False
        by_tensor: dict[int, Layout] = {}
        for entry, layout in zip(entries, layouts, strict=True):
            if layout is not None and entry.tensor is not None:
                by_tensor.setdefault(id(entry.tensor), layout)
        for index, entry in enumerate(entries):
            if layouts[index] is not None or entry.shape is None:
                continue
            found = by_tensor.get(id(entry.tensor)) if entry.tensor is not None else None
            if (
                found is None
                and not entry.is_input
                and isinstance(entry.layer, ELEMENTWISE)
                and entry.source is not None
                and shape_of(entry.source) == entry.shape
            ):
                found = by_tensor.get(id(entry.source))
            if found is None and isinstance(entry.layer, keras.layers.Concatenate):
                source = by_tensor.get(id(entry.source)) if entry.source is not None else None
                found = _concatenated(source, entry.layer, entry.shape)
            if found is None and isinstance(entry.layer, keras.layers.Reshape):
                source = by_tensor.get(id(entry.source)) if entry.source is not None else None
                found = _reshaped(source, shape_of(entry.source), entry.shape)
            if found is not None:
                layouts[index] = found
                if entry.tensor is not None:  # forward order: a chain settles in one pass
                    by_tensor.setdefault(id(entry.tensor), found)
                changed = True


def _concatenated(source: Layout | None, layer: Any, shape: tuple[int, ...]) -> Layout | None:
    """Maps joined along their channel axis keep their layout (DenseNet, Inception)."""
    axis = _axis_of(layer)
    if source is None or source.kind == "tokens" or axis is None or len(shape) != 4:
        return None
    channel_axis = 3 if source.kind == "channels_last" else 1
    grid = (shape[1], shape[2]) if channel_axis == 3 else (shape[2], shape[3])
    return source if axis % 4 == channel_axis and grid == source.grid else None


def _reshaped(
    source: Layout | None, before: tuple[int, ...] | None, after: tuple[int, ...]
) -> Layout | None:
    """A ``Reshape`` between a channels-last map and its token sequence keeps the grid.

    ``(N, h, w, C) -> (N, h*w, C)`` is how a Keras ViT turns its patch embedding into
    tokens (row by row, channels kept last), and the reverse lays tokens out as a map.
    """
    if source is None or before is None or source.prefix:
        return None
    h, w = source.grid
    if source.kind == "channels_last" and after == (before[0], h * w, before[3]):
        return Layout("tokens", (h, w))
    if source.kind == "tokens" and after == (before[0], h, w, before[2]):
        return Layout("channels_last", (h, w))
    return None


def shape_of(tensor: Any) -> tuple[int, ...] | None:
    """A tensor's shape as ints; None for what is not a tensor or has an unknown size."""
    shape = getattr(tensor, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(size) for size in shape)
    except TypeError:  # an unknown (None) size
        return None


def decide(
    entries: list[Entry],
    image: tuple[int, int],
    wider: Callable[[], dict[str, tuple[int, ...] | None]] | None,
) -> list[tuple[Layout | None, str]]:
    """Each entry's layout (or None) and, when None, why, for messages.

    Args:
        entries: every tensor of one pass over one image, in the order seen.
        image: ``(H, W)`` of that image.
        wider: runs the model on a wider image and returns each entry's shape there
            (raising if the model does not accept it); called only if some shape stays
            ambiguous.
    """
    guesses: list[LayoutGuess] = describe_outputs([e.shape for e in entries], image, 1)
    layouts: list[Layout | None] = []
    for entry, guess in zip(entries, guesses, strict=True):
        layout = _declared(entry) or guess.layout or _last_axis(entry, guess.options)
        layouts.append(layout)
    _spread(entries, layouts)
    open_ = [i for i, guess in enumerate(guesses) if guess.options and layouts[i] is None]
    if open_ and wider is not None:
        try:
            shapes = wider()
        except Exception:  # a model built for one size: no second look
            shapes = {}
        for index in open_:
            entry = entries[index]
            other = shapes.get(entry.name)
            if other is not None and entry.shape is not None:
                layouts[index] = width_axis_layout(guesses[index].options, entry.shape, other)
        _spread(entries, layouts)
    results = []
    for layout, guess in zip(layouts, guesses, strict=True):
        note = "" if layout is not None else guess.reason
        if layout is None and guess.options:
            note += "; reshape= decides it"
        results.append((layout, note))
    return results


def wider_image(batch: np.ndarray) -> np.ndarray:
    """The image made half again as wide (its left half appended on the right)."""
    half = max(1, batch.shape[2] // 2)
    return np.concatenate([batch, batch[:, :, :half]], axis=2)
