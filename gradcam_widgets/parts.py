"""The parts a Grad-CAM map is made of: feature maps, channel weights, their weighted sum.

``gw.gradcam`` returns only the finished map ``ReLU(sum_k alpha_k A^k)``. Lessons that
ask *why* a map looks as it does need the pieces: which channels carry it (the weights
``alpha_k`` and each channel's contribution ``alpha_k sum_ij A^k_ij``), and the weighted
sum before the ReLU (an all-zero map is one whose sum is negative everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core

__all__ = ["GradcamParts", "gradcam_parts"]


@dataclass(frozen=True)
class GradcamParts:
    """Activations, gradients and channel weights of one layer, for one class per image.

    Attributes:
        layer: the layer's name.
        targets: ``(N,)`` the class explained for each image.
        scores: ``(N,)`` the explained score ``y^c`` of each image (before any softmax).
        activations: ``(N, K, h, w)`` the layer's feature maps ``A^k``, channels first
            in both frameworks.
        gradients: ``(N, K, h, w)`` ``d y^c / d A^k_ij``.
    """

    layer: str
    targets: np.ndarray
    scores: np.ndarray
    activations: np.ndarray
    gradients: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        """``(N, K)`` Grad-CAM channel weights ``alpha_k = (1/Z) sum_ij dy^c/dA^k_ij``."""
        return _core.gradcam_weights(self.activations, self.gradients)

    @property
    def contributions(self) -> np.ndarray:
        """``(N, K)`` each channel's part of the map's total, ``alpha_k sum_ij A^k_ij``.

        Their sum over ``k`` is the sum over all cells of the weighted sum before the
        ReLU, so the channels with the largest contributions are the ones that carry the
        map.
        """
        return self.weights * self.activations.sum(axis=(2, 3))

    @property
    def weighted_sum(self) -> np.ndarray:
        """``(N, h, w)`` ``sum_k alpha_k A^k`` before the ReLU (it can be negative)."""
        return np.einsum("nk,nkhw->nhw", self.weights, self.activations)

    @property
    def heatmap(self) -> np.ndarray:
        """``(N, h, w)`` the Grad-CAM map, ``ReLU(weighted_sum)``, as ``gw.gradcam`` gives."""
        return _core.weighted_sum(self.activations, self.weights)


def gradcam_parts(
    model: Any,
    inputs: Any,
    target: int | Sequence[int] | None = None,
    layer: str | None = None,
    *,
    contrast: int | Sequence[int] | None = None,
) -> GradcamParts:
    """Open up one Grad-CAM computation: the feature maps, the gradients, the weights.

    One forward and one backward pass (``gw.explain``); its map is
    ``gradcam_parts(...).heatmap``, the same as ``gw.gradcam`` with the same arguments.
    Selvaraju et al., ICCV 2017.

    Args:
        model: a ``torch.nn.Module`` or a ``keras.Model``; it is not changed.
        inputs: a batch in the model's layout, as for ``gw.gradcam``.
        target: ``None`` (each image's top class), a class index, or one per image.
        layer: one layer name; ``None`` for the last candidate layer.
        contrast: as for ``gw.gradcam``: the score becomes ``y^target - y^contrast``.

    Returns:
        a :class:`GradcamParts`.

    Raises:
        ValueError: as ``gw.gradcam`` (unknown layer, class out of range, bad inputs).
        TypeError: ``layer`` is a list; this function opens up one layer at a time.
    """
    from .engine import explain

    if isinstance(layer, (list, tuple)):
        raise TypeError("gradcam_parts takes one layer name; call it once per layer.")
    found = explain(model, inputs, [target], layer, contrasts=[contrast])
    (name,) = found.layers
    targets = found.targets[0]
    rows = np.arange(len(targets))
    scores = found.logits[rows, targets]
    if found.contrasts[0] is not None:
        scores = scores - found.logits[rows, found.contrasts[0]]
    return GradcamParts(
        layer=name,
        targets=targets,
        scores=scores.astype(np.float32),
        activations=found.activations[name],
        gradients=found.gradients[0][name],
    )
