"""Model-parameter randomisation: does a saliency map depend on the model's weights?

Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018: replace the trained
weights by random ones, layer after layer from the top (:func:`cascading_randomization`),
and measure how much the map changes with the Spearman rank correlation
(:func:`rank_correlation`)::

    rho(a, b) = Pearson(rank(a), rank(b))

A map that explains *the model* must change when the model is destroyed; a map that
stays the same, like an edge detector's (:func:`edge_map`), only describes the image.
The user's model is never changed: every step works on a copy (:func:`randomized_copy`),
and the random weights come from ``numpy.random.default_rng(seed)``: no global random
state is touched.

Nothing here imports a framework at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends import backend_for
from ..typing import Inputs, Model, Target

__all__ = [
    "CascadeResult",
    "cascading_randomization",
    "edge_map",
    "randomized_copy",
    "rank_correlation",
    "weighted_layers",
]

#: ``f(model, inputs) -> (N, h, w)`` maps.
Explainer = Callable[[Model, Inputs], np.ndarray]


def weighted_layers(model: Model) -> list[str]:
    """Names of the layers that hold weights, from the input to the output.

    Torch: the modules with parameters of their own, named as in ``named_modules()``, in
    the order the model registers them (the forward order for ``nn.Sequential``). Keras:
    the layers with weights, nested models' layers named ``outer/inner``, in the model's
    layer order.

    Args:
        model: a ``torch.nn.Module`` or a ``keras.Model``.

    Returns:
        layer names; :func:`cascading_randomization` walks them in reverse.
    """
    return backend_for(model).weighted_layers(model)


def _randomize_array(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """New random values for one weight tensor, at the trained tensor's scale.

    Kernels (2-D and more) are drawn from a normal distribution with the trained
    kernel's mean and standard deviation; 1-D tensors (biases, normalisation scales and
    statistics) are shuffled, which keeps a variance positive; scalars stay.
    """
    if values.ndim >= 2:
        drawn = rng.normal(float(values.mean()), float(values.std()), size=values.shape)
        return drawn.astype(values.dtype)
    if values.ndim == 1:
        return rng.permutation(values)
    return values


def randomized_copy(model: Model, layers: Sequence[str], seed: int = 0) -> Model:
    """A copy of ``model`` in which the weights of ``layers`` are random.

    The copy has the trained weights everywhere else; ``model`` itself is not changed.
    Each weight tensor of a named layer gets new values at its own scale (see
    :func:`_randomize_array`), from ``numpy.random.default_rng(seed)``: the same seed
    gives the same copy, and no global random state is touched.

    Args:
        model: a ``torch.nn.Module``, or a Keras Sequential or Functional model (a
            subclassed Keras model must be rebuildable from its ``get_config()``).
        layers: names from :func:`weighted_layers`.
        seed: seeds the new weights.

    Returns:
        the copy (PyTorch: in eval mode).

    Raises:
        ValueError: a name is not a layer with weights.
        TypeError: the model cannot be copied.
    """
    backend = backend_for(model)
    available = backend.weighted_layers(model)
    unknown = [name for name in layers if name not in available]
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))}: not a layer with weights. Layers with weights: "
            f"{', '.join(available)}."
        )
    rng = np.random.default_rng(seed)
    return backend.randomized_copy(model, layers, lambda values: _randomize_array(values, rng))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation between two maps of the same shape.

    The two maps are flattened and their values replaced by their ranks (ties get the
    average rank); the result is the Pearson correlation of the ranks: 1 when both maps
    order the positions alike, about 0 when the orders are unrelated. It ignores the
    maps' scale, which differs between models.

    A map with one value everywhere (all zero, say) ranks nothing and carries no
    evidence: its correlation with any map, itself included, is 0.0 (the all-zero rule
    of :mod:`gradcam_widgets.metrics`; scipy would return NaN).

    Args:
        a: a map.
        b: a map of the same shape.

    Returns:
        a float in [-1, 1].
    """
    from scipy.stats import spearmanr

    first = np.asarray(a, dtype=np.float64).ravel()
    second = np.asarray(b, dtype=np.float64).ravel()
    if first.shape != second.shape:
        raise ValueError(f"maps of different shapes: {np.shape(a)} and {np.shape(b)}.")
    if np.ptp(first) == 0.0 or np.ptp(second) == 0.0:
        return 0.0
    if np.array_equal(first, second):
        return 1.0  # exactly, where scipy's float arithmetic may give 0.9999999999999999
    return float(spearmanr(first, second).statistic)


def edge_map(images: np.ndarray) -> np.ndarray:
    """The Sobel edge magnitude of each image: a "saliency map" that ignores the model.

    Adebayo et al. showed that such edge maps look much like some saliency methods'
    output; since it never looks at the model, it cannot pass a randomisation test.

    Args:
        images: ``(N, H, W)`` grayscale, uint8 or float, or ``(N, 1, H, W)`` /
            ``(N, H, W, 1)``; one ``(H, W)`` image is a batch of one.

    Returns:
        float32 ``(N, H, W)``.
    """
    from skimage.filters import sobel

    array = np.asarray(images)
    if array.ndim == 4 and 1 in (array.shape[1], array.shape[-1]):
        array = array[:, 0] if array.shape[1] == 1 else array[..., 0]
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise ValueError(
            f"edge_map takes grayscale (N, H, W) images, got shape {np.shape(images)}."
        )
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return np.stack([sobel(image.astype(np.float64) / scale) for image in array]).astype(np.float32)


@dataclass
class CascadeResult:
    """What :func:`cascading_randomization` measured.

    Attributes:
        steps: ``"original"``, then the name of the layer randomised at each step (every
            step keeps the layers randomised before it).
        maps: one ``(N, h, w)`` batch of maps per step.
        correlations: ``(steps, N)``: each map's rank correlation with the original map
            of the same image (the first row is all 1).
    """

    steps: list[str]
    maps: list[np.ndarray]
    correlations: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """The mean correlation over the images, one value per step."""
        return self.correlations.mean(axis=1)


def cascading_randomization(
    model: Model,
    inputs: Inputs,
    target: Target = None,
    layer: str | None = None,
    *,
    method: str = "gradcam",
    explain: Explainer | None = None,
    layers: Sequence[str] | None = None,
    seed: int = 0,
) -> CascadeResult:
    """Adebayo et al.'s cascading randomisation test, on copies of ``model``.

    Step 0 explains the trained model. Step ``s`` explains a copy whose top ``s`` layers
    with weights (counting from the output) are random. Each map is compared with the
    original map of the same image by :func:`rank_correlation`. The class explained is
    fixed at the start (by default each image's top class under the trained model), so
    that only the weights change between steps.

    Args:
        model: a ``torch.nn.Module`` or a Keras Sequential / Functional model; it is not
            changed.
        inputs: a batch in the model's layout.
        target: the class to explain: ``None`` for each image's top class under the
            trained model, an int, or one int per image.
        layer: the Grad-CAM layer (``None``: the last candidate layer).
        method: ``"gradcam"``, ``"gradcam++"`` or ``"hirescam"``.
        explain: instead of Grad-CAM, any ``f(model, inputs) -> (N, h, w)`` maps (for a
            baseline such as an edge detector, which ignores the model).
        layers: the layers to randomise, in order; default :func:`weighted_layers`
            reversed (from the output down).
        seed: seeds the random weights.

    Returns:
        a :class:`CascadeResult`.
    """
    backend_for(model)  # a clear TypeError for an object that is not a model
    order = list(reversed(weighted_layers(model))) if layers is None else list(layers)
    if explain is None:
        from ..engine import gradcam, predict

        if target is None:
            target = [int(c) for c in predict(model, inputs).argmax(axis=1)]

        def explain(net: Any, batch: Any) -> np.ndarray:
            return gradcam(net, batch, target=target, layer=layer, method=method)

    original = np.asarray(explain(model, inputs), dtype=np.float32)
    maps = [original]
    steps = ["original"]
    for count in range(1, len(order) + 1):
        clone = randomized_copy(model, order[:count], seed=seed)
        maps.append(np.asarray(explain(clone, inputs), dtype=np.float32))
        steps.append(order[count - 1])
        del clone
    correlations = np.array(
        [[rank_correlation(ref, m) for ref, m in zip(original, step)] for step in maps]
    )
    return CascadeResult(steps=steps, maps=maps, correlations=correlations)
