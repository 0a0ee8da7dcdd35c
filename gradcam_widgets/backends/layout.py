"""How a layer's output is laid out as a map, decided from shapes alone (framework-free).

Grad-CAM needs ``(N, K, h, w)``: channels, then an image grid. Networks hold their
feature maps in three layouts:

- ``channels_first``: ``(N, C, h, w)``, PyTorch's convolutions;
- ``channels_last``: ``(N, h, w, C)``, Keras, and the Swin / ConvNeXt / EdgeNeXt stages
  of PyTorch models, which permute to apply ``LayerNorm`` and ``Linear`` to channels;
- ``tokens``: ``(N, P + h*w, C)``, a vision transformer's sequence: ``P`` prefix tokens
  (class, distillation, register tokens) then one token per patch in raster order.

:func:`guess_layout` reads which of these a shape can be, given the input image's size:
an image grid keeps the input's aspect (``h ~ H/s`` and ``w ~ W/s`` for one stride
``s``), its batch axis holds one entry per image, and a token count is ``P + h*w`` for a
grid of that kind. A shape that fits one reading is decided; one that fits two (a
``(N, 64, 64, 64)`` tensor) is ambiguous and the backend must settle it with other
evidence (the module type, or a second probe at another width: see
:func:`width_axis_layout`); one that fits none is not a map (attention internals such as
``(N, heads, tokens, d)``, windows or patches folded into the batch axis). A reshape
following the token convention of the ViT Grad-CAM literature (drop the prefix tokens,
lay the rest out row by row) is what pytorch-grad-cam's ``reshape_transform`` examples do.

:func:`to_channels_first` is the one place where any decided layout becomes the
``(N, K, h, w)`` numpy array the methods read.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["channels_first", "channels_last", "tokens"]

#: The most prefix tokens looked for: class + distillation + up to 14 register tokens.
MAX_PREFIX = 16


@dataclass(frozen=True)
class Layout:
    """Where the channels and the grid are in a layer's output.

    Attributes:
        kind: ``"channels_first"``, ``"channels_last"`` or ``"tokens"``.
        grid: ``(h, w)``, the map's height and width.
        prefix: tokens before the patch tokens (class, distillation, registers),
            dropped from the map; 0 for the other kinds.
    """

    kind: Kind
    grid: tuple[int, int]
    prefix: int = 0

    def describe(self) -> str:
        """A short phrase for messages: ``"(N, h, w, C) channels-last"`` and so on."""
        h, w = self.grid
        if self.kind == "channels_first":
            return f"(N, C, {h}, {w}) channels-first"
        if self.kind == "channels_last":
            return f"(N, {h}, {w}, C) channels-last"
        prefix = f"{self.prefix} prefix + " if self.prefix else ""
        return f"(N, {prefix}{h}*{w} tokens, C) token sequence"


@dataclass(frozen=True)
class LayoutGuess:
    """What the shapes say about one output.

    Attributes:
        layout: the decided layout, or None.
        options: when undecided but the output could be a map, the layouts it fits
            (two or more: ambiguous); empty when it is not a map.
        reason: why it is not a map, or what is ambiguous, for messages.
    """

    layout: Layout | None
    options: tuple[Layout, ...] = ()
    reason: str = ""


@functools.lru_cache(maxsize=4096)
def fits_input(grid: tuple[int, int], image: tuple[int, int], *, shrink: bool = True) -> bool:
    """True when an ``(h, w)`` grid is the ``(H, W)`` image at one integer stride.

    Each side is ``H/s`` rounded down (no padding) or up (padding), for one integer
    stride ``s``; with ``shrink``, less the same margin ``d`` on both sides, the pixels
    that unpadded convolutions take off (``h = H/s - d``, ``w = W/s - d``).

    Args:
        grid: ``(h, w)``.
        image: ``(H, W)``, the input's height and width.
        shrink: allow the margin lost to unpadded convolutions.
    """
    h, w = grid
    big_h, big_w = image
    if h < 1 or w < 1 or h > big_h or w > big_w:
        return False
    most = max(2, min(h, w)) if shrink else 0
    first = max(1, big_h // (h + most + 1))
    last = big_h // max(h - 1, 1) + 1
    for stride in range(first, last + 1):
        for side_h in {big_h // stride, -(-big_h // stride)}:
            for side_w in {big_w // stride, -(-big_w // stride)}:
                margin = side_h - h
                if margin == side_w - w and 0 <= margin <= most:
                    return True
    return False


def token_grids(tokens: int, image: tuple[int, int]) -> list[tuple[int, int, int]]:
    """Every ``(prefix, h, w)`` with ``prefix + h*w == tokens`` whose grid fits the image.

    Grids of height or width 1 are not counted: they are not maps.
    """
    found = []
    for prefix in range(min(MAX_PREFIX, tokens - 4) + 1):
        count = tokens - prefix
        for side in range(2, math.isqrt(count) + 1):
            if count % side:
                continue
            for h, w in {(side, count // side), (count // side, side)}:
                if is_patch_grid((h, w), image):
                    found.append((prefix, h, w))
    return found


def is_patch_grid(grid: tuple[int, int], image: tuple[int, int]) -> bool:
    """True when ``(h, w)`` is the ``(H, W)`` image cut into ``s x s`` patches.

    One integer ``s`` for both axes, both sides rounded down (no padding) or both up.
    """
    h, w = grid
    big_h, big_w = image
    for stride in range(max(1, big_h // (h + 1)), big_h // max(h - 1, 1) + 2):
        floor = (big_h // stride, big_w // stride)
        ceil = (-(-big_h // stride), -(-big_w // stride))
        if (h, w) in (floor, ceil):
            return True
    return False


def _tokens_reading(tokens: int, image: tuple[int, int]) -> list[Layout]:
    # The fewest prefix tokens first: with several grids per prefix, the squarest-fitting.
    grids = token_grids(tokens, image)
    if not grids:
        return []
    fewest = min(prefix for prefix, _, _ in grids)
    return [Layout("tokens", (h, w), p) for p, h, w in grids if p == fewest]


def guess_layout(
    shape: Sequence[int] | None,
    image: tuple[int, int],
    batch: int,
    *,
    token_lengths: Iterable[int] = (),
) -> LayoutGuess:
    """Read a layer's output shape as a map, if the shape allows exactly one reading.

    Args:
        shape: the output's shape with its batch axis, or None (not a tensor).
        image: ``(H, W)`` of the input images.
        batch: the number of images in the pass.
        token_lengths: token counts of sequences already found in the model; a 4-D
            tensor with such an axis is an attention internal ``(N, heads, T, T)``.

    Returns:
        A decided layout, the layouts it could be (ambiguous), or the reason it is not
        a map.
    """
    if shape is None:
        return LayoutGuess(None, reason="its output is not a tensor")
    shape = tuple(int(size) for size in shape)
    if len(shape) not in (3, 4):
        return LayoutGuess(None, reason=f"its output is {len(shape)}-D, not an image grid")
    if shape[0] != batch:
        return LayoutGuess(
            None,
            reason=(
                f"its batch axis holds {shape[0]} entries for {batch} image(s): windows, "
                "patches or heads folded into the batch, not one map per image"
            ),
        )
    if len(shape) == 3:
        return _guess_sequence(shape, image)
    return _guess_map(shape, image, set(token_lengths))


def _guess_sequence(shape: tuple[int, ...], image: tuple[int, int]) -> LayoutGuess:
    _, length, channels = shape
    as_tokens = _tokens_reading(length, image)
    # (N, C, h*w): a flattened channels-first map competes with the token reading.
    flattened = [t for t in _tokens_reading(channels, image) if t.prefix == 0]
    options = tuple(as_tokens) + tuple(
        Layout("channels_first", t.grid) for t in flattened
    )
    # Prefix tokens are evidence of a sequence that a flattened map cannot give.
    if len(as_tokens) == 1 and (not flattened or as_tokens[0].prefix > 0):
        return LayoutGuess(as_tokens[0])
    if not options:
        return LayoutGuess(
            None,
            reason=(
                f"{length} is not a token count (prefix tokens + h*w) for a "
                f"{image[0]}x{image[1]} input"
            ),
        )
    readings = " or ".join(option.describe() for option in options)
    return LayoutGuess(None, options, reason=f"its shape {shape} could be {readings}")


def _guess_map(shape: tuple[int, ...], image: tuple[int, int], lengths: set[int]) -> LayoutGuess:
    _, a, b, c = shape
    options = []
    if fits_input((b, c), image):
        options.append(Layout("channels_first", (b, c)))
    if fits_input((a, b), image):
        options.append(Layout("channels_last", (a, b)))
    options = [o for o in options if not lengths.intersection(o.grid)]
    if not options:
        reason = (
            f"neither (N, C, h, w) nor (N, h, w, C) fits the {image[0]}x{image[1]} input's "
            "aspect (attention internals such as (N, heads, tokens, d) look like this)"
        )
        if lengths.intersection(shape[1:]):
            reason = f"an axis is a token count {sorted(lengths)}: attention internals"
        return LayoutGuess(None, reason=reason)
    if len(options) == 1:
        return LayoutGuess(options[0])
    readings = " or ".join(option.describe() for option in options)
    return LayoutGuess(None, tuple(options), reason=f"its shape {shape} could be {readings}")


def describe_outputs(
    shapes: Sequence[Sequence[int] | None], image: tuple[int, int], batch: int
) -> list[LayoutGuess]:
    """:func:`guess_layout` for every output of one model, with what the model as a whole says.

    A vision transformer keeps one token count ``T`` through its blocks: once some
    output is decided to be a ``T``-token sequence, a 4-D output with a ``T`` axis is an
    attention internal (``(N, heads, T, T)``), and an ambiguous 3-D output of length ``T``
    is a token sequence too.
    """
    first = [guess_layout(shape, image, batch) for shape in shapes]
    lengths = {
        int(shape[1])
        for shape, guess in zip(shapes, first, strict=True)
        if shape is not None and guess.layout is not None and guess.layout.kind == "tokens"
    }
    if not lengths:
        return first
    settled = []
    for shape, guess in zip(shapes, first, strict=True):
        if shape is not None and len(shape) == 4:
            guess = guess_layout(shape, image, batch, token_lengths=lengths)
        elif shape is not None and guess.options and int(shape[1]) in lengths:
            tokens = [o for o in guess.options if o.kind == "tokens"]
            if len(tokens) == 1:
                guess = LayoutGuess(tokens[0])
        settled.append(guess)
    return settled


def width_axis_layout(
    options: Sequence[Layout], shape: Sequence[int], wider: Sequence[int]
) -> Layout | None:
    """Settle an ambiguous output from its shape at a second, wider input.

    The grid's width axis grows with the input width and the channel axis does not:
    channels-first maps grow on axis 3, channels-last on axis 2, token sequences on
    axis 1 and flattened channels-first maps on axis 2.

    Returns:
        The one option whose width axis alone changed, or None.
    """
    if len(shape) != len(wider):
        return None
    changed = {axis for axis in range(1, len(shape)) if shape[axis] != wider[axis]}
    grows = {
        ("channels_first", 4): {3},
        ("channels_last", 4): {2},
        ("tokens", 3): {1},
        ("channels_first", 3): {2},
    }
    matching = [o for o in options if grows.get((o.kind, len(shape))) == changed]
    return matching[0] if len(matching) == 1 else None


def to_channels_first(array: np.ndarray, layout: Layout | None) -> np.ndarray:
    """An output in ``layout`` as ``(N, K, h, w)``; ``None`` means already channels-first.

    Token sequences lose their prefix tokens and the rest is laid out row by row, as the
    patch embedding produced them.
    """
    if layout is None:
        return array
    if layout.kind == "channels_first":
        if array.ndim == 3:  # a flattened channels-first map (N, C, h*w)
            return array.reshape(array.shape[0], array.shape[1], *layout.grid)
        return array
    if layout.kind == "channels_last":
        return np.ascontiguousarray(np.transpose(array, (0, 3, 1, 2)))
    h, w = layout.grid
    patches = array[:, layout.prefix :, :]
    if patches.shape[1] != h * w:
        raise ValueError(
            f"expected {layout.prefix} prefix + {h}*{w} tokens, got {array.shape[1]} tokens."
        )
    grid = patches.reshape(array.shape[0], h, w, array.shape[2])
    return np.ascontiguousarray(np.transpose(grid, (0, 3, 1, 2)))
