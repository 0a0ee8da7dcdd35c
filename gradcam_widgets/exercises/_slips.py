"""Classic slips of a hand-written Grad-CAM, for the diagnose exercises of lessons 03-04.

Each lesson draws a colleague's Grad-CAM (a :class:`.mysteries.Mystery`, called with the
arguments of ``gw.gradcam`` for one layer) with one of these slips, at random when the
learner runs the cell: reading the source shows every candidate but not the one drawn,
so the learner probes the function's outputs against ``gw.gradcam`` to tell.

The slips, each a mistake found in published Grad-CAM code:

- ``"batch"``: the gradients are averaged over the images of the batch too
  (``reduce_mean(grads, axis=(0, 1, 2))``), so every image gets the same weights;
- ``"softmax"``: the softmax probability is differentiated instead of the score
  before it, ``dp_c/dA = p_c (dy_c/dA - sum_j p_j dy_j/dA)``;
- ``"no_relu"``: the weighted sum is returned without the ReLU;
- ``"layer"``: the map is computed at the nearest candidate layer (the one before if
  possible) whose map differs from the one asked for;
- ``"axis"``: the gradients are averaged over the channels instead of the positions,
  giving one weight per cell: ``ReLU(mean_k(dy/dA^k_ij) sum_k A^k_ij)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .mysteries import Candidate

__all__ = ["SLIPS", "broken_gradcam", "candidates"]


@dataclass(frozen=True)
class Slip:
    """One classic slip: how the exercise words it, why it does what it does, how to test it."""

    choice: str
    explanation: str
    test: str


SLIPS: dict[str, Slip] = {
    "batch": Slip(
        choice="It averages the gradients over the images of the batch, not only over the "
        "positions.",
        explanation="every image of a batch gets the same channel weights, a mix of all the "
        "images' gradients; for a batch of one it agrees with gw.gradcam. The keras.io "
        "example's reduce_mean over axes (0, 1, 2) has this slip.",
        test="run it on one image alone, then on a batch of several: if that were the slip, "
        "the single image would agree with gw.gradcam and the batch would not.",
    ),
    "softmax": Slip(
        choice="It differentiates the softmax probability instead of the score before the "
        "softmax.",
        explanation="the gradient of a probability is p_c (dy_c/dA - sum_j p_j dy_j/dA): "
        "tiny when the network is sure (p_c near 1) and a contrast with the other likely "
        "classes otherwise, so its maps shrink and change shape with the confidence.",
        test="if that were the slip, how far its values are from gw.gradcam's would depend "
        "on how sure the network is. Compare the ratio of the maxima on a confident and an "
        "unsure image.",
    ),
    "no_relu": Slip(
        choice="It leaves out the ReLU.",
        explanation="without the ReLU the map keeps its negative cells, the evidence against "
        "the class; where gw.gradcam's map is positive the two agree.",
        test="if that were the slip, its maps would have negative values wherever the "
        "weighted sum is negative. Look at their smallest value, on several pictures.",
    ),
    "layer": Slip(
        choice="It computes the map at another layer than the one asked for.",
        explanation="its map is gw.gradcam's map of the neighbouring layer, exactly: always "
        "compare a map with the reference at several layers, not only at the one you asked.",
        test="if that were the slip, its map would equal gw.gradcam's at some other layer. "
        "Compare with every candidate layer of the same resolution.",
    ),
    "axis": Slip(
        choice="It averages the gradients over the channels instead of over the positions.",
        explanation="the mean over the wrong axis gives one weight per cell instead of one "
        "per channel, so the map becomes (mean gradient at the cell) x (summed activation "
        "at the cell), whatever the channels mean.",
        test="if that were the slip, its map would differ from gw.gradcam's even on one "
        "image, by a similar amount whether the network is sure or not.",
    ),
}


#: How many of the most probable classes the softmax slip sums over.
_SOFTMAX_CLASSES = 20


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _neighbour_layer(model: Any, inputs: Any, layer: str, target: Any) -> str:
    """The nearest candidate layer (earlier first) whose map differs from ``layer``'s.

    A block's output and its last sub-module's can be the same tensor, and then the same
    map: such a neighbour would hide the slip.
    """
    from ..engine import candidate_layers, gradcam

    layers = candidate_layers(model, inputs)
    index = layers.index(layer)
    order = sorted((i for i in range(len(layers)) if i != index), key=lambda i: (abs(i - index), i))
    maps = gradcam(model, inputs, target=target, layer=layers)
    asked = maps[layer]
    for i in order:
        other = maps[layers[i]]
        scale = 1e-4 * max(float(np.abs(asked).max()), 1e-12)
        if other.shape != asked.shape or not np.allclose(other, asked, rtol=1e-3, atol=scale):
            return layers[i]
    return layers[order[0]]


def broken_gradcam(
    slip: str,
    model: Any,
    inputs: Any,
    target: int | Sequence[int] | None = None,
    layer: str | None = None,
) -> np.ndarray:
    """Grad-CAM maps ``(N, h, w)`` computed with the named slip (see the module docstring)."""
    from ..engine import explain, gradcam
    from ..parts import gradcam_parts

    parts = gradcam_parts(model, inputs, target=target, layer=layer)
    activations, gradients = parts.activations, parts.gradients  # (N, K, h, w)
    if slip == "batch":
        weights = gradients.mean(axis=(0, 2, 3))
        maps = np.einsum("k,nkhw->nhw", weights, activations)
    elif slip == "no_relu":
        return parts.weighted_sum.astype(np.float32)
    elif slip == "layer":
        other = _neighbour_layer(model, inputs, parts.layer, target)
        return np.asarray(gradcam(model, inputs, target=target, layer=other), np.float32)
    elif slip == "axis":
        maps = gradients.mean(axis=1) * activations.sum(axis=1)
    elif slip == "softmax":
        p = _softmax(explain(model, inputs, [None], parts.layer).logits)
        # sum_j p_j dy_j/dA over the most probable classes: exact for 10 digits, and
        # for 1,000 ImageNet classes the rest carry almost no probability
        classes = [int(c) for c in np.argsort(-p.max(axis=0))[:_SOFTMAX_CLASSES]]
        found = explain(model, inputs, [[int(t) for t in parts.targets], *classes], parts.layer)
        per_class = np.stack([g[parts.layer] for g in found.gradients[1:]], axis=1)
        rows = np.arange(len(parts.targets))
        mixed = np.einsum("nc,nckhw->nkhw", p[:, classes], per_class)
        own = found.gradients[0][parts.layer]
        grads = p[rows, parts.targets][:, None, None, None] * (own - mixed)
        maps = np.einsum("nk,nkhw->nhw", grads.mean(axis=(2, 3)), found.activations[parts.layer])
    else:
        raise ValueError(f"unknown slip {slip!r}; expected one of {sorted(SLIPS)}.")
    return np.maximum(maps, 0.0).astype(np.float32)


def candidates(names: Sequence[str]) -> tuple[Candidate, ...]:
    """The named slips as :class:`.mysteries.Candidate` s, in the order given (letters a, b, ...).

    Each candidate is called like ``gw.gradcam(model, inputs, target, layer)`` for one
    layer; a wrong pick shows the experiment that would have ruled it out.
    """
    unknown = [name for name in names if name not in SLIPS]
    if unknown:
        raise ValueError(f"unknown slips {unknown}; expected names from {sorted(SLIPS)}.")
    return tuple(
        Candidate(SLIPS[name].choice, partial(broken_gradcam, name), SLIPS[name].test,
                  SLIPS[name].explanation)
        for name in names
    )
