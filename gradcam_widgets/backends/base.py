"""What every framework adapter provides, and the framework-free checks they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: Marks "this image's own top class" in a resolved target array.
TOP_CLASS = -1


@dataclass(frozen=True)
class LayerInfo:
    """One layer seen during a forward pass.

    Attributes:
        name: the name the engine accepts (torch module path, Keras ``outer/inner``).
        shape: the output's shape, batch axis included, or ``None`` if not a tensor.
        spatial: ``(h, w)`` of a 4-D feature map, else ``None``.
        calls: how often the layer ran in one forward pass.
        overwritten: a later in-place op (``ReLU(inplace=True)``) changes the output, so
            the backend must capture a copy of it.
    """

    name: str
    shape: tuple[int, ...] | None
    spatial: tuple[int, int] | None
    calls: int = 1
    overwritten: bool = False

    @property
    def is_candidate(self) -> bool:
        """A feature map with height and width > 1, produced once per forward."""
        return (
            self.spatial is not None
            and self.spatial[0] > 1
            and self.spatial[1] > 1
            and self.calls == 1
        )


@dataclass
class Head:
    """The dense layer that produced the logits, for CAM.

    Attributes:
        features: ``(N, K)``, the dense layer's input.
        weight: ``(C, K)``, its weight matrix (classes by features).
    """

    features: np.ndarray
    weight: np.ndarray


@dataclass
class Capture:
    """What one forward (and backward) pass returns, as numpy, channels first.

    Attributes:
        logits: ``(N, C)`` pre-softmax scores.
        activations: layer name -> ``(N, K, h, w)``.
        targets: one resolved ``(N,)`` class array per requested target set.
        gradients: one dict per target set, layer name -> ``(N, K, h, w)``.
        head: the final dense layer, when asked for.
    """

    logits: np.ndarray
    activations: dict[str, np.ndarray]
    targets: list[np.ndarray]
    gradients: list[dict[str, np.ndarray]] = field(default_factory=list)
    head: Head | None = None


class Backend(Protocol):
    """One adapter per framework; the engine talks only to this."""

    name: str

    def prepare(self, model: Any, inputs: Any) -> Any:
        """Check ``inputs`` against ``model`` and return a batch tensor."""

    def describe_layers(self, model: Any, batch: Any) -> list[LayerInfo]:
        """Every named layer, in the order its forward call finished."""

    def capture(
        self,
        model: Any,
        batch: Any,
        layers: Sequence[str],
        targets: Sequence[np.ndarray],
        *,
        with_gradients: bool = True,
        with_head: bool = False,
    ) -> Capture:
        """Run the model once, returning activations and, per target set, gradients."""


def validate_pixels(array: np.ndarray) -> None:
    """Reject an empty batch and non-finite values with a message that says what to do."""
    if array.shape[0] == 0:
        raise ValueError("inputs is an empty batch (0 images): pass at least one image.")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            "inputs contain NaN or infinite values: clean or re-preprocess the image "
            "(for example np.nan_to_num) before asking for a map."
        )


def normalize_target_spec(target: Any, batch_size: int) -> np.ndarray:
    """Turn the public ``target`` argument into an ``(N,)`` int array.

    ``None`` becomes ``TOP_CLASS`` for every image, an int is repeated, a sequence must
    hold one int per image.
    """
    if target is None:
        return np.full(batch_size, TOP_CLASS, dtype=np.int64)
    if isinstance(target, (bool, np.bool_)):
        raise TypeError("target must be None, a class index or a list of class indices.")
    if isinstance(target, (int, np.integer)):
        if target < 0:
            raise ValueError(f"target {target} is negative: class indices start at 0.")
        return np.full(batch_size, int(target), dtype=np.int64)
    try:
        values = np.asarray(list(target))
    except TypeError:
        raise TypeError(
            f"target must be None, an int or a sequence of ints, not {type(target).__name__}."
        ) from None
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise TypeError("target must be None, an int or a sequence of ints (one per image).")
    if len(values) != batch_size:
        raise ValueError(
            f"target has {len(values)} classes for a batch of {batch_size} images: give one "
            "class per image, a single int for all, or None for each image's top class."
        )
    if np.any(values < 0):
        raise ValueError("target holds a negative class index: class indices start at 0.")
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


def check_logits_shape(shape: tuple[int, ...]) -> None:
    """The engine explains classifiers: the output must be ``(N, classes)``."""
    if len(shape) != 2:
        raise ValueError(
            f"the model's output has shape {tuple(shape)}; Grad-CAM here needs a classifier "
            "whose output is (batch, classes). Wrap the model so it returns one score per class."
        )
