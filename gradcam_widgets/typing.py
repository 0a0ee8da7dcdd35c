"""Type aliases for the package's public signatures.

The frameworks are optional (torch, Keras), so their types are named here without being
imported: a model, a tensor or a layer object is ``Any`` to the type checker, and the
alias says which objects are meant. Arrays are numpy's.

    from gradcam_widgets.typing import Model, Inputs, Target

    def my_check(model: Model, inputs: Inputs, target: Target = None) -> FloatArray: ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "Array",
    "Box",
    "Boxes",
    "FloatArray",
    "ImageSize",
    "Inputs",
    "IntArray",
    "Layer",
    "LayerRef",
    "Model",
    "Target",
    "Tensor",
]

#: A ``torch.nn.Module`` or a ``keras.Model`` (Keras 3 on any backend).
Model: TypeAlias = Any

#: A framework's tensor: ``torch.Tensor``, ``tf.Tensor``, a JAX array.
Tensor: TypeAlias = Any

#: A layer object of a model: a ``torch.nn.Module`` or a ``keras.layers.Layer``.
Layer: TypeAlias = Any

#: A layer by its name (as ``gw.candidate_layers`` lists it) or as the object itself.
LayerRef: TypeAlias = str | Layer

#: Any numpy array.
Array: TypeAlias = npt.NDArray[Any]

#: A float array (maps, scores, images scaled to [0, 1]).
FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]

#: An integer array (labels, class indices, boxes).
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]

#: A batch in the model's own layout: a numpy array or a tensor of its framework.
Inputs: TypeAlias = npt.ArrayLike | Tensor

#: The class(es) to explain: ``None`` for each image's top class, one int for all, or
#: one int per image.
Target: TypeAlias = int | Sequence[int] | None

#: ``(top, left, bottom, right)`` in pixels; bottom and right are exclusive.
Box: TypeAlias = tuple[int, int, int, int]

#: One box, or one box per image (a sequence or an ``(N, 4)`` array).
Boxes: TypeAlias = Box | Sequence[Box] | npt.NDArray[np.integer[Any]]

#: An image's side in pixels, or its ``(height, width)``.
ImageSize: TypeAlias = int | tuple[int, int]
