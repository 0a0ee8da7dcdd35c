"""Deletion and insertion: does the model's score follow the pixels the map ranks first?

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018, section 4.2.

* **Deletion** starts from the image and replaces its pixels, most important first (as
  the map ranks them), by a baseline; the class probability is recorded after each step.
  A faithful map makes it fall fast: a *low* area under the curve.
* **Insertion** starts from the baseline and puts the image's pixels back in the same
  order. A faithful map makes the probability rise fast: a *high* area.

Conventions here (all documented in the functions):

* The map is resized to the input with :func:`gradcam_widgets.render.resize_map`
  (bilinear, the resize used to draw it) and its pixels are ranked by decreasing value;
  equal values keep raster order (a stable sort), so every result is reproducible.
* ``steps`` steps of ``ceil(H * W / steps)`` pixels each; the curve has ``steps + 1``
  points, the first before any change, the last with every pixel changed. Its x-axis is
  the fraction of pixels changed, from 0 to 1.
* The probability is the softmax of the model's pre-softmax scores (a final softmax
  layer is looked through, as in the engine).
* The area is the trapezoid rule on [0, 1], so it lies in [0, 1].
* Baselines, as in the RISE paper: deletion replaces pixels by ``"zero"`` (in a
  normalised input, zero is the dataset's mean colour), insertion starts from ``"blur"``
  (a Gaussian blur, sigma 5 px at 224 px, scaled with the image, at least 1 px). ``"mean"`` (the
  image's mean colour), a number, or an array of the input's shape are accepted too.
* Batched: each image's ``steps + 1`` perturbed copies go through the model in batches
  of ``batch_size``, with no gradients.

The model is never changed: a PyTorch model runs in eval mode and every module's
``training`` flag is restored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import render
from ..backends import backend_for, to_numpy
from ..classes import softmax

__all__ = [
    "DEFAULT_STEPS",
    "FaithfulnessCurve",
    "centre_map",
    "deletion",
    "insertion",
    "random_map",
]

#: Steps of a curve unless told otherwise: 32 forwards' worth, 33 points.
DEFAULT_STEPS = 32

#: Blur of the insertion baseline: sigma in pixels for a 224-pixel image (RISE's
#: implementation blurs with an 11 x 11 kernel of sigma 5); scaled with the image, and at
#: least 1 pixel so that small images (a 28-pixel digit) are blurred too.
BLUR_SIGMA_AT_224 = 5.0


@dataclass(frozen=True)
class FaithfulnessCurve:
    """The result of :func:`deletion` or :func:`insertion`.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        curve: ``(steps + 1,)`` the class probability after each step, averaged over the
            images; ``curve[0]`` is before any change.
        auc: area under ``curve`` against ``fractions`` (trapezoid rule), in [0, 1].
        fractions: ``(steps + 1,)`` the fraction of pixels changed at each point, 0 to 1.
        curves: ``(N, steps + 1)`` one curve per image.
        aucs: ``(N,)`` one area per image (their mean is ``auc``).
        targets: ``(N,)`` the class followed in each image.
        baseline: how the baseline was made (``"zero"``, ``"blur"``, ...).
        steps: the number of steps.
    """

    kind: str
    curve: np.ndarray
    auc: float
    fractions: np.ndarray
    curves: np.ndarray
    aucs: np.ndarray
    targets: np.ndarray
    baseline: str
    steps: int

    def __repr__(self) -> str:
        return (
            f"FaithfulnessCurve({self.kind}, auc={self.auc:.3f}, steps={self.steps}, "
            f"baseline={self.baseline!r}, images={len(self.aucs)})"
        )


def deletion(
    model: Any,
    inputs: Any,
    heatmap: Any,
    target: int | Any = None,
    *,
    steps: int = DEFAULT_STEPS,
    baseline: str | float | np.ndarray = "zero",
    batch_size: int = 33,
) -> FaithfulnessCurve:
    """Deletion curve: remove the map's most important pixels first (Petsiuk et al. 2018).

    ``p_k = softmax(f(x_k))_c`` where ``x_k`` is the image with its ``n_k`` top-ranked
    pixels replaced by the baseline, ``n_k = min(k * ceil(HW / steps), HW)``,
    ``k = 0 .. steps``. Area: ``sum_k (t_{k+1} - t_k) (p_k + p_{k+1}) / 2`` with
    ``t_k = n_k / HW``. Lower means a more faithful map.

    Args:
        model: a ``torch.nn.Module`` or ``keras.Model``; it is not changed.
        inputs: a batch in the model's layout (torch N,C,H,W; Keras N,H,W,C).
        heatmap: ``(N, h, w)`` (or ``(h, w)`` for one image), any resolution: resized
            to the input bilinearly, then its pixels are ranked.
        target: ``None`` for each image's top class (on the unchanged image), an int for
            all, or one class per image.
        steps: number of steps (the curve has ``steps + 1`` points).
        baseline: what replaces removed pixels: ``"zero"`` (default, as in RISE),
            ``"blur"``, ``"mean"``, a number, or an array shaped like ``inputs``.
        batch_size: perturbed images per forward pass.

    Returns:
        A :class:`FaithfulnessCurve`.
    """
    return _curve("deletion", model, inputs, heatmap, target, steps, baseline, batch_size)


def insertion(
    model: Any,
    inputs: Any,
    heatmap: Any,
    target: int | Any = None,
    *,
    steps: int = DEFAULT_STEPS,
    baseline: str | float | np.ndarray = "blur",
    batch_size: int = 33,
) -> FaithfulnessCurve:
    """Insertion curve: put the map's most important pixels back first (Petsiuk et al. 2018).

    As :func:`deletion`, but ``x_k`` is the *baseline* with the image's ``n_k`` top-ranked
    pixels put back; ``x_0`` is the baseline, ``x_steps`` the image. Higher area means a
    more faithful map.

    Args:
        model: as in :func:`deletion`.
        inputs: as in :func:`deletion`.
        heatmap: as in :func:`deletion`.
        target: as in :func:`deletion` (the top class is taken on the unchanged image).
        steps: as in :func:`deletion`.
        baseline: the starting image: ``"blur"`` (default, as in RISE: a Gaussian blur
            of sigma 5 px at 224 px, scaled with the image), ``"zero"``, ``"mean"``, a
            number, or an array shaped like ``inputs``.
        batch_size: as in :func:`deletion`.

    Returns:
        A :class:`FaithfulnessCurve`.
    """
    return _curve("insertion", model, inputs, heatmap, target, steps, baseline, batch_size)


def random_map(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A map of uniform noise: the ranking a map with no information gives.

    Args:
        shape: ``(N, h, w)`` or ``(h, w)``.
        seed: for :func:`numpy.random.default_rng`.

    Returns:
        float32 array of ``shape``, values in [0, 1).
    """
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def centre_map(shape: tuple[int, ...]) -> np.ndarray:
    """A Gaussian bump at the centre: the ranking "the object is in the middle" gives.

    Photos are usually framed on their subject, so a fixed central map is a baseline a
    real map should beat. Sigma is a quarter of each side.

    Args:
        shape: ``(N, h, w)`` or ``(h, w)``.

    Returns:
        float32 array of ``shape``, 1 at the centre, falling off outwards.
    """
    height, width = shape[-2], shape[-1]
    ys = (np.arange(height) - (height - 1) / 2.0) / (height / 4.0)
    xs = (np.arange(width) - (width - 1) / 2.0) / (width / 4.0)
    bump = np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2)).astype(np.float32)
    return np.broadcast_to(bump, shape).copy()


# ----------------------------------------------------------------- implementation


def _as_numpy(inputs: Any) -> np.ndarray:
    return np.asarray(to_numpy(inputs), dtype=np.float32)


def _baseline(kind: str | float | np.ndarray, images: np.ndarray, axes: tuple[int, int]):
    """The baseline batch for ``images`` and a short description of it."""
    if isinstance(kind, str):
        if kind == "zero":
            return np.zeros_like(images), "zero"
        if kind == "mean":
            return np.broadcast_to(images.mean(axis=axes, keepdims=True), images.shape), "mean"
        if kind == "blur":
            from scipy.ndimage import gaussian_filter

            side = max(images.shape[axes[0]], images.shape[axes[1]])
            sigma = max(1.0, BLUR_SIGMA_AT_224 * side / 224.0)
            per_axis = [0.0] * images.ndim
            per_axis[axes[0]] = per_axis[axes[1]] = sigma
            return gaussian_filter(images, sigma=per_axis, mode="nearest"), "blur"
        raise ValueError(
            f"unknown baseline {kind!r}: use 'zero', 'blur', 'mean', a number or an array "
            "shaped like the inputs."
        )
    if isinstance(kind, (int, float)):
        return np.full_like(images, float(kind)), f"constant {float(kind):g}"
    array = _as_numpy(kind)
    if array.shape != images.shape:
        raise ValueError(
            f"the baseline array has shape {array.shape}, the inputs {images.shape}: give "
            "one baseline per input, in the same layout."
        )
    return array, "array"


def _logits_fn(model: Any):
    """A function from a numpy batch (the model's layout) to pre-softmax scores."""
    backend = backend_for(model)
    return backend, lambda array: backend.logits(model, backend.prepare(model, array))


def _ranks(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Each pixel's rank (0 = most important) after resizing the map to ``size``."""
    resized = render.resize_map(np.nan_to_num(heatmap.astype(np.float32)), size)
    order = np.argsort(-resized.ravel(), kind="stable")
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size)
    return ranks.reshape(size)


def _targets(target: Any, count: int) -> np.ndarray | None:
    if target is None:
        return None
    array = np.asarray(to_numpy(target))
    if array.ndim == 0:
        return np.full(count, int(array), dtype=np.int64)
    if array.shape != (count,):
        raise ValueError(
            f"target has {array.size} classes for {count} images: give one per image, an "
            "int for all, or None for each image's top class."
        )
    return array.astype(np.int64)


def _curve(
    kind: str,
    model: Any,
    inputs: Any,
    heatmap: Any,
    target: Any,
    steps: int,
    baseline: str | float | np.ndarray,
    batch_size: int,
) -> FaithfulnessCurve:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    backend, logits_of = _logits_fn(model)
    images = _as_numpy(inputs)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"inputs have shape {images.shape}: give a batch of images.")
    channels_first = not backend.channels_last
    axes = (2, 3) if channels_first else (1, 2)
    height, width = images.shape[axes[0]], images.shape[axes[1]]
    maps = _as_numpy(heatmap)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or maps.shape[0] != images.shape[0]:
        raise ValueError(
            f"heatmap has shape {maps.shape} for {images.shape[0]} images: give (N, h, w), "
            "one map per image."
        )
    bases, described = _baseline(baseline, images, axes)
    targets = _targets(target, images.shape[0])
    if targets is None:
        targets = logits_of(images).argmax(axis=1)

    pixels = height * width
    per_step = math.ceil(pixels / steps)
    changed = np.minimum(np.arange(steps + 1) * per_step, pixels)
    fractions = changed / pixels
    curves = np.empty((images.shape[0], steps + 1), dtype=np.float64)
    for i in range(images.shape[0]):
        ranks = _ranks(maps[i], (height, width))
        # masks[k] is True where step k has changed the pixel: (steps + 1, H, W).
        masks = ranks[None] < changed[:, None, None]
        masks = masks[:, None] if channels_first else masks[..., None]
        start, end = (images[i], bases[i]) if kind == "deletion" else (bases[i], images[i])
        probabilities = []
        for first in range(0, steps + 1, batch_size):
            chunk = masks[first : first + batch_size]
            perturbed = np.where(chunk, end[None], start[None]).astype(np.float32)
            logits = logits_of(perturbed)
            if not 0 <= targets[i] < logits.shape[1]:
                raise ValueError(
                    f"class {int(targets[i])} is out of range: the model has "
                    f"{logits.shape[1]} classes (valid indices 0..{logits.shape[1] - 1})."
                )
            probabilities.append(softmax(logits)[:, targets[i]])
        curves[i] = np.concatenate(probabilities)
    aucs = np.trapezoid(curves, fractions, axis=1)
    curve = curves.mean(axis=0)
    return FaithfulnessCurve(
        kind=kind,
        curve=curve,
        auc=float(np.trapezoid(curve, fractions)),
        fractions=fractions,
        curves=curves,
        aucs=aucs,
        targets=targets,
        baseline=described,
        steps=int(steps),
    )
