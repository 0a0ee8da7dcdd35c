"""The public engine: ``candidate_layers``, ``gradcam`` and ``cam``.

Framework details live in ``backends``; the maths in ``_core``. This module resolves
the user's arguments, asks the backend for one pass, and applies the maths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from .backends import LayerInfo, backend_for
from .backends.base import normalize_target_spec

__all__ = ["candidate_layers", "gradcam", "gradcam_multi", "cam"]


def _layer_infos(model: Any, inputs: Any) -> tuple[Any, Any, list[LayerInfo]]:
    backend = backend_for(model)
    if inputs is None:
        inputs = _example_input(model)
    batch = backend.prepare(model, inputs)
    return backend, batch, backend.describe_layers(model, batch)


def _example_input(model: Any) -> np.ndarray:
    """A zero batch of one for a Keras model whose input shape is known statically."""
    shape = None
    try:
        if model.inputs:
            shape = tuple(model.inputs[0].shape)
    except (AttributeError, ValueError):
        shape = None
    if shape is None or any(size is None for size in shape[1:]):
        raise ValueError(
            "this model's layer shapes cannot be read without running it: pass an example "
            "batch, e.g. candidate_layers(model, inputs)."
        )
    return np.zeros((1, *shape[1:]), dtype=np.float32)


def candidate_layers(model: Any, inputs: Any = None) -> list[str]:
    """Names of the layers whose output is a spatial feature map, in forward order.

    A candidate's output is 4-D with height and width both greater than 1, and the layer
    runs once per forward pass (a module reused at several places has no single map).

    Args:
        model: a ``torch.nn.Module`` or a ``keras.Model``.
        inputs: an example batch; needed for PyTorch models and for Keras models whose
            shapes are not static (subclassed, or Sequential without an Input).

    Returns:
        Layer names: torch names from ``named_modules()``, Keras names with nested
        models as ``outer/inner``.
    """
    _, _, infos = _layer_infos(model, inputs)
    return [info.name for info in infos if info.is_candidate]


def _resolve_layers(layer: str | Sequence[str] | None, infos: list[LayerInfo]) -> list[str]:
    candidates = [info.name for info in infos if info.is_candidate]
    if not candidates:
        raise ValueError(
            "the model has no layer with a spatial output (4-D, height and width > 1); "
            "Grad-CAM needs a convolutional feature map."
        )
    if layer is None:
        return [candidates[-1]]
    names = [layer] if isinstance(layer, str) else list(layer)
    if not names:
        raise ValueError("layer is an empty list: name at least one layer.")
    by_name = {info.name: info for info in infos}
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"layer names are strings, got {type(name).__name__}.")
        info = by_name.get(name)
        if info is None:
            raise ValueError(
                f"unknown layer {name!r}. Candidate layers: {', '.join(candidates)}."
            )
        if info.calls > 1:
            raise ValueError(
                f"layer {name!r} runs {info.calls} times in one forward pass, so it has no "
                f"single feature map. Candidate layers: {', '.join(candidates)}."
            )
        if not info.is_candidate:
            raise ValueError(
                f"layer {name!r} has output shape {info.shape}, not a spatial feature map "
                f"(4-D with height and width > 1). Candidate layers: {', '.join(candidates)}."
            )
    return list(dict.fromkeys(names))


def _check_method(method: str) -> None:
    if method not in _core.METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(_core.METHODS)}.")


def gradcam(
    model: Any,
    inputs: Any,
    target: int | Sequence[int] | None = None,
    layer: str | Sequence[str] | None = None,
    *,
    method: str = "gradcam",
) -> np.ndarray | dict[str, np.ndarray]:
    """Gradient-weighted class activation maps.

    ``L^c = ReLU(sum_k alpha_k^c A^k)`` with ``alpha_k^c = (1/Z) sum_ij dy^c / dA^k_ij``,
    where ``A^k`` is channel ``k`` of the layer's output, ``Z = h*w`` and ``y^c`` the
    pre-softmax score of class ``c``. Selvaraju et al., "Grad-CAM: Visual Explanations
    from Deep Networks via Gradient-based Localization", ICCV 2017.

    ``method="gradcam++"`` (Chattopadhay et al., WACV 2018) and ``"hirescam"`` (Draelos &
    Carin, 2020) change only how the gradients weigh the channels; see ``_core``.

    Args:
        model: a ``torch.nn.Module`` or a ``keras.Model``; it is not changed.
        inputs: a batch in the model's layout (torch N,C,H,W; Keras N,H,W,C) as numpy or
            a framework tensor; one image without a batch axis is a batch of one.
        target: ``None`` for each image's top class, an int for every image, or one int
            per image.
        layer: ``None`` for the last candidate layer, a name, or a list of names (all
            computed from one forward and one backward pass).
        method: ``"gradcam"``, ``"gradcam++"`` or ``"hirescam"``.

    Returns:
        float32 ``(N, h, w)`` at the layer's resolution, not normalised; for a list of
        layers, ``{name: array}``.

    Raises:
        ValueError: unknown or non-spatial layer, class out of range, inputs that do not
            fit the model. Nothing is changed when it raises.
    """
    maps = gradcam_multi(model, inputs, [target], layer, method=method)[0]
    if layer is None or isinstance(layer, str):
        return next(iter(maps.values()))
    return maps


def gradcam_multi(
    model: Any,
    inputs: Any,
    targets: Sequence[int | Sequence[int] | None],
    layer: str | Sequence[str] | None = None,
    *,
    method: str = "gradcam",
) -> list[dict[str, np.ndarray]]:
    """Grad-CAM for several target sets from ONE forward pass (one backward each).

    The Explorer uses it to prepare the top-k classes of an image at once.

    Args:
        model: as in :func:`gradcam`.
        inputs: as in :func:`gradcam`.
        targets: a list of ``target`` arguments as :func:`gradcam` takes them.
        layer: as in :func:`gradcam`.
        method: as in :func:`gradcam`.

    Returns:
        One ``{layer name: (N, h, w) array}`` per entry of ``targets``.
    """
    _check_method(method)
    backend, batch, infos = _layer_infos(model, inputs)
    names = _resolve_layers(layer, infos)
    specs = [normalize_target_spec(t, int(batch.shape[0])) for t in targets]
    captured = backend.capture(model, batch, names, specs)
    compute = _core.METHODS[method]
    return [
        {name: compute(captured.activations[name], grads[name]) for name in names}
        for grads in captured.gradients
    ]


def predict(model: Any, inputs: Any) -> np.ndarray:
    """Pre-softmax scores ``(N, classes)`` of ``model``, computed as the engine sees them."""
    backend, batch, infos = _layer_infos(model, inputs)
    names = _resolve_layers(None, infos)
    spec = normalize_target_spec(None, int(batch.shape[0]))
    return backend.capture(model, batch, names, [spec], with_gradients=False).logits


def cam(
    model: Any,
    inputs: Any,
    target: int | Sequence[int] | None = None,
    layer: str | None = None,
) -> np.ndarray:
    """Class activation maps for a global-average-pooling + dense head.

    ``M_c = sum_k w_k^c A^k``, where ``A^k`` are the maps that are globally averaged and
    ``w^c`` the dense layer's weights for class ``c``; no gradients are needed. Zhou et
    al., "Learning Deep Features for Discriminative Localization", CVPR 2016.

    Args:
        model: a network whose logits are ``Dense(GAP(A))`` (torch ``nn.Linear``, Keras
            ``Dense``, optionally followed by a softmax).
        inputs: as in :func:`gradcam`.
        target: as in :func:`gradcam`.
        layer: the layer that is pooled; ``None`` for the last candidate layer.

    Returns:
        float32 ``(N, h, w)``, not normalised and not rectified (CAM can be negative).

    Raises:
        ValueError: the head is not GAP then one dense layer on ``layer``'s output; use
            :func:`gradcam` there.
    """
    if layer is not None and not isinstance(layer, str):
        raise TypeError("cam() takes one layer name: only the pooled layer has a CAM.")
    backend, batch, infos = _layer_infos(model, inputs)
    (name,) = _resolve_layers(layer, infos)
    spec = normalize_target_spec(target, int(batch.shape[0]))
    captured = backend.capture(model, batch, [name], [spec], with_gradients=False, with_head=True)
    activations = captured.activations[name]
    head = captured.head
    if head is None:
        raise ValueError(
            "CAM needs a head made of global average pooling and one dense layer that "
            "produces the scores; this model's scores come from elsewhere. Use gradcam(), "
            "which works for any head."
        )
    pooled = activations.mean(axis=(2, 3))
    if head.features.shape != pooled.shape or not np.allclose(
        head.features, pooled, rtol=1e-4, atol=1e-5 * (1.0 + np.abs(pooled).max())
    ):
        raise ValueError(
            f"CAM needs the dense layer's input to be the global average of the maps of layer "
            f"{name!r}, and here it is not (a Flatten head, extra layers between, or another "
            "layer pooled). Use gradcam(), or give the pooled layer's name."
        )
    class_weights = head.weight[captured.targets[0]]
    return _core.class_activation_map(activations, class_weights)
