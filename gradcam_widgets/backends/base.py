"""What every framework adapter provides, and the framework-free checks they share."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from .layout import (
    Layout,
    LayoutGuess,
    describe_outputs,
    guess_layout,
    to_channels_first,
    width_axis_layout,
)

__all__ = [
    "NO_CONTRAST",
    "TOP_CLASS",
    "Backend",
    "Capture",
    "Head",
    "LayerCache",
    "LayerInfo",
    "LayerStep",
    "Layout",
    "LayoutGuess",
    "Reshape",
    "TargetSet",
    "centre_cell",
    "check_logits_shape",
    "check_not_probabilities",
    "describe_outputs",
    "guess_layout",
    "map_info",
    "normalize_target_spec",
    "resolve_target_set",
    "resolve_targets",
    "square",
    "to_channels_first",
    "validate_pixels",
    "width_axis_layout",
]

#: Marks "this image's own top class" in a resolved target array.
TOP_CLASS = -1
#: Marks "no contrast class" in a contrast array.
NO_CONTRAST = -1

#: One layer of a plain chain, for receptive fields: its name and ``(kernel size,
#: stride)`` (the kernel's span with dilation, ``(k - 1) * d + 1``), or None for a layer
#: that is neither a convolution nor a pooling (a ``Flatten``: the field ends there).
LayerStep = tuple[str, tuple[int, int] | None]

#: A user's ``reshape=`` callable: the layer's output (a framework tensor) -> a feature map
#: in the model's own layout (torch ``(N, C, h, w)``, Keras ``(N, h, w, C)``).
Reshape = Callable[[Any], Any]


@dataclass(frozen=True)
class LayerInfo:
    """One layer seen during a forward pass.

    Attributes:
        name: the name the engine accepts (torch module path, Keras ``outer/inner``).
        shape: the output's shape, batch axis included, or ``None`` if not a tensor.
        spatial: ``(h, w)`` of the map the output is, else ``None``.
        calls: how often the layer ran in one forward pass.
        overwritten: a later in-place op (``ReLU(inplace=True)``) changes the output, so
            the backend must capture a copy of it.
        layout: how the output is a map (channels first or last, or a token sequence);
            ``None`` with ``spatial`` set means the framework's own layout.
        note: why the output is not a map (or which layouts it could be), for messages.
        hidden: accepted by name but not listed among the candidates (Keras layer inputs,
            ``"name:input"``, which mostly repeat another layer's output).
    """

    name: str
    shape: tuple[int, ...] | None
    spatial: tuple[int, int] | None
    calls: int = 1
    overwritten: bool = False
    layout: Layout | None = None
    note: str = ""
    hidden: bool = False

    @property
    def is_map(self) -> bool:
        """A feature map with height and width > 1, produced once per forward."""
        return (
            self.spatial is not None
            and self.spatial[0] > 1
            and self.spatial[1] > 1
            and self.calls == 1
        )

    @property
    def is_candidate(self) -> bool:
        """A feature map that is listed (and can be the default layer)."""
        return self.is_map and not self.hidden


@dataclass
class Head:
    """The dense layer that produced the logits, for CAM.

    Attributes:
        features: ``(N, K)``, the pooled features the head starts from (the dense
            layer's input, or the input of a layer norm before it).
        weight: ``(C, K)``, the dense weight matrix (classes by features); or
            ``(N, C, K)`` when a per-image normalisation is folded into it.
        centre: ``(N,)`` subtracted from every activation before weighting (a folded
            layer norm's mean), or None.
        tolerance: the relative precision at which ``features`` must equal the pooled
            maps (looser for float16 and bfloat16 models).
    """

    features: np.ndarray
    weight: np.ndarray
    centre: np.ndarray | None = None
    tolerance: float = 1e-4


@dataclass(frozen=True)
class TargetSet:
    """One score to differentiate: ``y^target - y^contrast`` for each image.

    Attributes:
        classes: ``(N,)`` class indices, ``TOP_CLASS`` for the image's own top class.
        contrast: ``(N,)`` class indices subtracted, or ``None`` for no contrast.
    """

    classes: np.ndarray
    contrast: np.ndarray | None = None

    def stacked(self) -> np.ndarray:
        """``(2, N)``: the classes, then the contrast (``NO_CONTRAST`` where there is none)."""
        contrast = self.contrast
        if contrast is None:
            contrast = np.full_like(self.classes, NO_CONTRAST)
        return np.stack([self.classes, contrast]).astype(np.int64)


@dataclass
class Capture:
    """What one forward (and backward) pass returns, as numpy, channels first.

    Attributes:
        logits: ``(N, C)`` pre-softmax scores.
        activations: layer name -> ``(N, K, h, w)``.
        targets: one resolved ``(N,)`` class array per requested target set.
        gradients: one dict per target set, layer name -> ``(N, K, h, w)``.
        head: the final dense layer, when asked for.
        contrasts: one resolved ``(N,)`` contrast array (or None) per target set.
    """

    logits: np.ndarray
    activations: dict[str, np.ndarray]
    targets: list[np.ndarray]
    gradients: list[dict[str, np.ndarray]] = field(default_factory=list)
    head: Head | None = None
    contrasts: list[np.ndarray | None] = field(default_factory=list)


class LayerCache:
    """Per-model layer descriptions, held weakly so that models can be freed.

    The one place where backends keep what a shape probe found; :meth:`clear` forgets a
    model (after its architecture changed in place) or everything.
    """

    _all: ClassVar[list[LayerCache]] = []

    def __init__(self) -> None:
        self._store: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        LayerCache._all.append(self)

    def get(self, model: Any, key: Any) -> list[LayerInfo] | None:
        """The cached description of ``model`` for ``key``, or None."""
        return self._store.get(model, {}).get(key)

    def put(self, model: Any, key: Any, infos: list[LayerInfo]) -> None:
        """Remember ``infos`` for ``model`` and ``key``."""
        self._store.setdefault(model, {})[key] = infos

    def forget(self, model: Any | None = None) -> None:
        """Forget ``model``, or every model when None."""
        if model is None:
            self._store.clear()
        else:
            self._store.pop(model, None)

    @classmethod
    def clear_all(cls, model: Any | None = None) -> None:
        """Forget ``model`` (or everything) in every backend's cache."""
        for cache in cls._all:
            cache.forget(model)


class Backend(Protocol):
    """One adapter per framework; the engine and the package talk only to this.

    Attributes:
        name: the framework's name, for messages.
        channels_last: the model's own image layout is ``(N, H, W, C)`` (Keras) rather
            than ``(N, C, H, W)`` (torch).
    """

    name: str
    channels_last: bool

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A tensor of this framework as a numpy array (bfloat16 as float32)."""

    def prepare(self, model: Any, inputs: Any) -> Any:
        """Check ``inputs`` against ``model`` and return a batch tensor."""

    def describe_layers(self, model: Any, batch: Any) -> list[LayerInfo]:
        """Every named layer, in the order its forward call finished."""

    def layer_name(self, model: Any, layer: Any) -> str | None:
        """The engine's name of a layer object of ``model``, or None if it is not one."""

    def logits(self, model: Any, batch: Any) -> np.ndarray:
        """Pre-softmax scores ``(N, C)``: one plain forward, no gradients, no probe.

        Works for any classifier, with or without a spatial layer.
        """

    def capture(
        self,
        model: Any,
        batch: Any,
        layers: Sequence[str],
        targets: Sequence[TargetSet],
        *,
        with_gradients: bool = True,
        with_head: bool = False,
        reshape: Reshape | None = None,
    ) -> Capture:
        """Run the model once, returning activations and, per target set, gradients.

        ``layers`` may be empty: then only the logits are computed.
        """

    def weighted_layers(self, model: Any) -> list[str]:
        """Names of the layers that hold weights of their own, input to output."""

    def layer_geometry(self, model: Any) -> list[LayerStep]:
        """The top-level layers of a plain chain model, input to output, as :data:`LayerStep`.

        Element-wise layers (activations, batch norm, dropout, identity) are left out:
        they do not change a receptive field.

        Raises:
            ValueError: a non-square kernel, stride or dilation.
        """

    def cell_gradient(self, model: Any, batch: Any, layer: str) -> np.ndarray:
        """``d (sum_k A^k_ij) / d x`` for the centre cell ``(i, j)`` of ``layer``'s map.

        One forward in eval mode; the layer's map in any layout the engine decides
        (channels first or last, token grid). Returns the input gradient as numpy
        ``(N, C, H, W)``, channels first whatever the model's own layout.
        """

    def randomized_copy(
        self,
        model: Any,
        layers: Sequence[str],
        randomize: Callable[[np.ndarray], np.ndarray],
    ) -> Any:
        """A copy of ``model`` whose named layers' weights are ``randomize(weights)``."""


def square(value: Any, what: str) -> int:
    """One side of a square kernel, stride or dilation given as an int or a pair."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or values[0] != values[1]:
        raise ValueError(f"non-square {what} is not supported: {values}.")
    return int(values[0])


def centre_cell(tensor: Any, layout: Layout) -> Any:
    """The centre cell ``(N, K)`` of a map held in ``layout``, by indexing alone.

    Indexing is spelled the same in every framework, so the tensor stays the
    framework's own (and differentiable).
    """
    h, w = layout.grid
    row, column = h // 2, w // 2
    if layout.kind == "channels_last":
        return tensor[:, row, column, :]
    if layout.kind == "tokens":
        return tensor[:, layout.prefix + row * w + column, :]
    if len(tensor.shape) == 3:  # a flattened channels-first map (N, C, h*w)
        return tensor[:, :, row * w + column]
    return tensor[:, :, row, column]


def map_info(infos: Sequence[LayerInfo], layer: str) -> tuple[LayerInfo, Layout]:
    """The description of ``layer`` and its layout; it must hold one map of a decided layout."""
    info = next((info for info in infos if info.name == layer), None)
    if info is None:
        candidates = [i.name for i in infos if i.is_candidate]
        raise ValueError(f"unknown layer {layer!r}. Candidate layers: {candidates}.")
    if not info.is_map or info.layout is None:
        raise ValueError(
            f"layer {layer!r} has output shape {info.shape}, not a feature map with a "
            f"centre cell ({info.note or 'height and width must be > 1'})."
        )
    return info, info.layout


def validate_pixels(array: np.ndarray) -> None:
    """Reject an empty batch and non-finite values with a message that says what to do."""
    if array.shape[0] == 0:
        raise ValueError("inputs is an empty batch (0 images): pass at least one image.")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            "inputs contain NaN or infinite values: clean or re-preprocess the image "
            "(for example np.nan_to_num) before asking for a map."
        )


def normalize_target_spec(target: Any, batch_size: int, *, what: str = "target") -> np.ndarray:
    """Turn the public ``target`` argument into an ``(N,)`` int array.

    ``None`` becomes ``TOP_CLASS`` for every image, an int (or a 0-d integer array) is
    repeated, a sequence or 1-d integer array must hold one int per image. Framework
    tensors are turned into numpy arrays by the caller.
    """
    if target is None:
        return np.full(batch_size, TOP_CLASS, dtype=np.int64)
    if isinstance(target, (bool, np.bool_)):
        raise TypeError(f"{what} must be None, a class index or a list of class indices.")
    if isinstance(target, np.ndarray) and target.ndim == 0:
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"{what} is a {target.dtype} scalar: give an integer class index.")
        target = int(target)
    if isinstance(target, (int, np.integer)):
        if target < 0:
            raise ValueError(f"{what} {target} is negative: class indices start at 0.")
        return np.full(batch_size, int(target), dtype=np.int64)
    try:
        values = np.asarray(list(target))
    except TypeError:
        raise TypeError(
            f"{what} must be None, an int or a sequence of ints, not {type(target).__name__}."
        ) from None
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"{what} must be None, an int or a sequence of ints (one per image).")
    if len(values) != batch_size:
        raise ValueError(
            f"{what} has {len(values)} classes for a batch of {batch_size} images: give one "
            "class per image, a single int for all, or None for each image's top class."
        )
    if np.any(values < 0):
        raise ValueError(f"{what} holds a negative class index: class indices start at 0.")
    return values.astype(np.int64)


def resolve_targets(spec: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Replace ``TOP_CLASS`` by each image's top class and check the range."""
    num_classes = logits.shape[1]
    resolved = np.where(spec == TOP_CLASS, logits.argmax(axis=1), spec)
    bad = resolved[resolved >= num_classes]
    if bad.size:
        raise ValueError(
            f"class {int(bad[0])} is out of range: the model has {num_classes} classes "
            f"(valid indices 0..{num_classes - 1})."
        )
    return resolved


def resolve_target_set(
    target_set: TargetSet, logits: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The resolved classes and contrast of one target set, range-checked.

    Raises:
        ValueError: a class out of range, or a contrast equal to the class it is compared
            with (the difference of a score with itself is zero everywhere).
    """
    classes = resolve_targets(target_set.classes, logits)
    if target_set.contrast is None:
        return classes, None
    contrast = resolve_targets(target_set.contrast, logits)
    same = np.flatnonzero(contrast == classes)
    if same.size:
        raise ValueError(
            f"image {int(same[0])}: contrast class {int(contrast[same[0]])} is the target class "
            "itself, so y^target - y^contrast is zero: choose another contrast class."
        )
    return classes, contrast


def check_not_probabilities(scores: np.ndarray) -> None:
    """Refuse an output that is a probability (or log-probability) vector per image.

    Grad-CAM's ``y^c`` is the score before the softmax (Selvaraju et al. 2017): the
    gradient of a probability ``p_c = softmax(y)_c`` is ``p_c (dy_c - sum_j p_j dy_j)``,
    which mixes in every other class and vanishes where the model is confident. A final
    softmax *module* or *layer* is stepped over by the backends; a softmax written inside
    ``forward`` (``return torch.softmax(self.net(x), 1)``) can only be recognised from the
    values: every row non-negative and summing to 1, or (log-softmax) every row
    non-positive with ``log sum exp = 0``. Logits do that only by a vanishing chance.
    Tolerances allow for float16 and bfloat16 rounding.

    Raises:
        ValueError: with what to do: pass a model that returns logits, or opt in with
            ``allow_probabilities=True``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2 or scores.size == 0:
        return
    tolerance = 1e-2
    rows = scores.sum(axis=1)
    is_probability = bool(
        np.all(scores >= -1e-6) and np.all(np.abs(rows - 1.0) <= tolerance)
    )
    kind = "probabilities (every row is non-negative and sums to 1)"
    if not is_probability and np.all(scores <= 1e-6):
        peak = scores.max(axis=1, keepdims=True)
        log_total = peak[:, 0] + np.log(np.exp(scores - peak).sum(axis=1))
        is_probability = bool(np.all(np.abs(log_total) <= tolerance))
        kind = "log-probabilities (every row's exp sums to 1)"
    if is_probability:
        raise ValueError(
            f"the model's output looks like {kind}: a softmax inside forward. Grad-CAM "
            "explains the score before the softmax. Pass the logits: a model without the "
            "softmax (or ending in an nn.Softmax module, which the engine steps over). To "
            "explain the output as it is, pass allow_probabilities=True."
        )


def check_logits_shape(shape: tuple[int, ...]) -> None:
    """The engine explains classifiers: the output must be ``(N, classes)``."""
    if len(shape) != 2:
        raise ValueError(
            f"the model's output has shape {tuple(shape)}; Grad-CAM here needs a classifier "
            "whose output is (batch, classes). Wrap the model so it returns one score per class."
        )
