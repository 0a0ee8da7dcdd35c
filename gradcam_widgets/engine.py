"""The public engine: ``candidate_layers``, ``gradcam``, ``explain``, ``predict`` and ``cam``.

Framework details live behind ``backends``; the maths of each method in ``methods``
(the registry) and ``_core``. This module resolves the user's arguments (layers by
name or object, targets and contrasts as ints, lists or tensors), asks the backend for
one pass, and applies the chosen method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from . import _core
from .backends import Head, LayerInfo, TargetSet, backend_for, is_tensor, to_numpy
from .backends.base import (
    TOP_CLASS,
    LayerCache,
    Reshape,
    check_not_probabilities,
    normalize_target_spec,
)
from .methods import METHODS, Evidence, Method

__all__ = [
    "Explanation",
    "cam",
    "candidate_layers",
    "default_layer",
    "explain",
    "gradcam",
    "gradcam_multi",
    "predict",
]

#: How many candidate names an error message lists before it says how to see the rest.
_NAMES_SHOWN = 8
#: Name parts that torch.compile and DataParallel add; a name without them also works.
_WRAPPER_PARTS = ("_orig_mod", "module")
#: The default layer chosen on a token model, per model and input shape.
_DEFAULT_LAYERS = LayerCache()
#: How many token layers one pass checks for a gradient when choosing a ViT's default.
_DEFAULT_SEARCH = 16


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

    A candidate's output is a map with height and width both greater than 1, and the
    layer runs once per forward pass (a module reused at several places has no single
    map). A map is a channels-first ``(N, C, h, w)`` or channels-last ``(N, h, w, C)``
    tensor, or a vision transformer's token sequence ``(N, P + h*w, C)`` (``P`` class,
    distillation or register tokens), whenever the shape, the input's size and aspect,
    and the model leave one reading (see ``gradcam_widgets.backends.layout``). Tensors
    that are not an image grid (attention internals ``(N, heads, tokens, d)``, windows
    or patches folded into the batch axis) are not candidates, nor are shapes that read
    two ways: name those with ``reshape=``.

    Args:
        model: a ``torch.nn.Module`` or a ``keras.Model``.
        inputs: an example batch; needed for PyTorch models and for Keras models whose
            shapes are not static (subclassed, or Sequential without an Input).

    Returns:
        Layer names: torch names from ``named_modules()``, Keras names with nested
        models as ``outer/inner``. For a Keras model whose head (pooling or flattening)
        receives a map that no layer outputs (ConvNeXt's final residual ``add``), the
        last name is ``"<head layer>:input"``: that map. Any Keras layer's input can be
        named so; only that one is listed.
    """
    _, _, infos = _layer_infos(model, inputs)
    return [info.name for info in infos if info.is_candidate]


def default_layer(model: Any, inputs: Any = None) -> str:
    """The layer ``gradcam(..., layer=None)`` explains: see ``_default_layer``.

    The last candidate layer, except on a vision transformer whose head reads the class
    token: there the last token layer the score depends on (the last block's first
    norm), since later layers' maps are zero by construction. Front-ends (a layer
    slider) can start there.
    """
    backend, batch, infos = _layer_infos(model, inputs)
    (name,) = _resolve_layers(backend, model, None, infos, batch=batch)
    return name


def _listing(names: Sequence[str]) -> str:
    """Candidate names for an error message: all of a few, or the count and the last few."""
    if len(names) <= _NAMES_SHOWN:
        return ", ".join(names)
    last = ", ".join(names[-_NAMES_SHOWN:])
    return (
        f"{len(names)} layers; the last {_NAMES_SHOWN}: {last} "
        "(gw.candidate_layers(model, inputs) lists them all)"
    )


def _is_layer_list(layer: Any) -> bool:
    return isinstance(layer, (list, tuple))


def _layer_names(backend: Any, model: Any, layer: Any, candidates: Sequence[str]) -> list[str]:
    """The user's ``layer`` argument (names and/or layer objects) as a list of names."""
    items = list(layer) if _is_layer_list(layer) else [layer]
    if not items:
        raise ValueError("layer is an empty list: name at least one layer.")
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
            continue
        name = backend.layer_name(model, item)
        if name is None:
            raise ValueError(
                f"layer {type(item).__name__} object is not a layer of this model (or is the "
                f"model itself). Give a layer of the model or its name: {_listing(candidates)}."
            )
        names.append(name)
    return names


def _strip_wrappers(name: str) -> str:
    return ".".join(part for part in name.split(".") if part not in _WRAPPER_PARTS)


def _canonical(name: str, by_name: dict[str, LayerInfo]) -> str:
    """``name``, or the one layer it names without torch.compile / DataParallel prefixes."""
    if name in by_name:
        return name
    matches = [known for known in by_name if _strip_wrappers(known) == name]
    return matches[0] if len(matches) == 1 else name


def _default_layer(
    backend: Any, model: Any, batch: Any, infos: list[LayerInfo], candidates: list[str]
) -> str:
    """The last candidate, or on a vision transformer the last one the score depends on.

    In a ViT whose head reads the class token, the patch tokens after the last block's
    attention never reach the score: the class token takes in the patch tokens only
    through attention, and every later layer (the attention's output, the MLP, the final
    norm) works token by token. Their gradients are exactly zero and their Grad-CAM map
    is empty. pytorch-grad-cam's ViT tutorial therefore takes the last block's first
    norm (``blocks[-1].norm1``), the input of the last attention. Here the same choice
    is made from the graph, for any token model: among the token layers of the residual
    stream's width, the last whose patch tokens receive a gradient. A model that pools
    all tokens (no class token) gets its last candidate, as a CNN does.
    """
    by_name = {info.name: info for info in infos}
    last = by_name[candidates[-1]]
    if last.layout is None or last.layout.kind != "tokens":
        return candidates[-1]
    key = (tuple(batch.shape[1:]), str(batch.dtype))
    cached = _DEFAULT_LAYERS.get(model, key)
    if cached is not None:
        return cached[0].name
    width = last.shape[-1] if last.shape else None
    pool = [
        info.name
        for info in (by_name[name] for name in candidates)
        if info.layout is not None
        and info.layout.kind == "tokens"
        and info.shape is not None
        and info.shape[-1] == width
    ]
    spec = TargetSet(np.full(1, TOP_CLASS, dtype=np.int64))
    chosen = candidates[-1]
    for end in range(len(pool), 0, -_DEFAULT_SEARCH):
        chunk = pool[max(0, end - _DEFAULT_SEARCH) : end]
        try:
            grads = backend.capture(model, batch[:1], chunk, [spec]).gradients[0]
        except ValueError:  # a layer no gradient reaches at all: check one by one
            grads = {}
            for name in chunk:
                try:
                    grads.update(backend.capture(model, batch[:1], [name], [spec]).gradients[0])
                except ValueError:
                    continue
        reached = [name for name in chunk if name in grads and np.any(grads[name] != 0)]
        if reached:
            chosen = reached[-1]
            break
    _DEFAULT_LAYERS.put(model, key, [by_name[chosen]])
    return chosen


def _resolve_layers(
    backend: Any,
    model: Any,
    layer: Any,
    infos: list[LayerInfo],
    *,
    reshape: Reshape | None = None,
    batch: Any = None,
) -> list[str]:
    candidates = [info.name for info in infos if info.is_candidate]
    if layer is None:
        if not candidates:
            undecided = [info.name for info in infos if info.note.endswith("reshape= decides it")]
            hint = (
                f" These could be maps but their layout is ambiguous: {_listing(undecided)}."
                if undecided
                else ""
            )
            raise ValueError(
                "the model has no layer with a spatial output (a map with height and width "
                "> 1); Grad-CAM needs a feature map. Name a layer and pass reshape= to turn "
                f"its output into a map (N, C, h, w).{hint}"
            )
        if batch is None:
            return [candidates[-1]]
        return [_default_layer(backend, model, batch, infos, candidates)]
    by_name = {info.name: info for info in infos}
    names = [_canonical(name, by_name) for name in _layer_names(backend, model, layer, candidates)]
    for name in names:
        info = by_name.get(name)
        if info is None:
            raise ValueError(f"unknown layer {name!r}. Candidate layers: {_listing(candidates)}.")
        if info.calls > 1:
            raise ValueError(
                f"layer {name!r} runs {info.calls} times in one forward pass, so it has no "
                f"single feature map. Candidate layers: {_listing(candidates)}."
            )
        if not info.is_map and reshape is None:
            detail = info.note or "a map needs height and width > 1"
            if info.spatial is not None:
                detail = f"its grid is {info.spatial[0]}x{info.spatial[1]}"
            raise ValueError(
                f"layer {name!r} has output shape {info.shape}, not a spatial feature map "
                f"({detail}); pass reshape= (a callable returning a map in the model's own "
                "layout: torch (N, C, h, w), Keras (N, h, w, C)) if it can be laid out as "
                f"one. Candidate layers: {_listing(candidates)}."
            )
    return list(dict.fromkeys(names))


def _method(method: str | Method) -> Method:
    if isinstance(method, Method):
        return method
    found = METHODS.get(method)
    if found is None:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if not found.needs_gradients:
        raise ValueError(
            f"method {method!r} reads the dense head's weights and needs no gradients: call "
            f"gw.{method}(model, inputs, target) instead. Gradient methods: "
            f"{', '.join(name for name, m in METHODS.items() if m.needs_gradients)}."
        )
    return found


def _target_spec(target: Any, batch_size: int, what: str = "target") -> np.ndarray:
    if is_tensor(target):
        target = to_numpy(target)
    return normalize_target_spec(target, batch_size, what=what)


def _check_evidence(evidence: str) -> None:
    if evidence not in ("for", "against"):
        raise ValueError(f"evidence must be 'for' or 'against', not {evidence!r}.")


@dataclass
class Explanation:
    """Activations and gradients of one pass, from which every method's map follows.

    Attributes:
        logits: ``(N, C)`` pre-softmax scores.
        layers: the layer names, in the order asked for.
        targets: per target set, the resolved ``(N,)`` classes.
        contrasts: per target set, the resolved ``(N,)`` contrast classes, or None.
        activations: layer name -> ``(N, K, h, w)``, channels first.
        gradients: per target set, layer name -> ``(N, K, h, w)``.
        head: the final dense layer (its input and weights) when asked for
            (``explain(..., with_head=True)``), else None.
    """

    logits: np.ndarray
    layers: list[str]
    targets: list[np.ndarray]
    contrasts: list[np.ndarray | None]
    activations: dict[str, np.ndarray]
    gradients: list[dict[str, np.ndarray]]
    head: Head | None = None

    def cam(self, classes: Any, layer: str | None = None) -> np.ndarray:
        """CAM of ``classes`` at ``layer`` (default the last one) from this pass: no model call.

        Needs ``explain(..., with_head=True)``; the activations do not depend on the
        class, so one pass gives the CAM of every class. See :func:`cam`.

        Args:
            classes: an int for every image, or one class per image.
            layer: one of :attr:`layers`; ``None`` for the last.

        Raises:
            ValueError: no head was captured, or the head is not GAP then one dense layer
                on ``layer``'s output.
        """
        name = self.layers[-1] if layer is None else layer
        if name not in self.activations:
            raise ValueError(f"layer {name!r} is not in this explanation: {self.layers}.")
        activations = self.activations[name]
        spec = _target_spec(classes, int(activations.shape[0]))
        resolved = np.where(spec == TOP_CLASS, self.logits.argmax(axis=1), spec)
        return _cam_maps(name, activations, self.head, resolved)

    def maps(
        self,
        method: str | Method = "gradcam",
        evidence: Evidence = "for",
        index: int = 0,
    ) -> dict[str, np.ndarray]:
        """``{layer: (N, h, w) float32}`` of one method for target set ``index``.

        No model call: the method is applied to the stored activations and gradients.
        """
        chosen = _method(method)
        _check_evidence(evidence)
        grads = self.gradients[index]
        return {name: chosen(self.activations[name], grads[name], evidence) for name in self.layers}


def explain(
    model: Any,
    inputs: Any,
    targets: Sequence[Any] = (None,),
    layer: Any = None,
    *,
    contrasts: Sequence[Any] | None = None,
    reshape: Reshape | None = None,
    with_head: bool = False,
    allow_probabilities: bool = False,
) -> Explanation:
    """One forward pass and one backward pass per target set, kept for every method.

    The Explorer's engine call: it returns the logits with the gradients, so a picture
    needs no separate forward, and any registered method (and either evidence) can be
    drawn from the result without running the model again.

    Args:
        model: as in :func:`gradcam`.
        inputs: as in :func:`gradcam`.
        targets: a list of ``target`` arguments as :func:`gradcam` takes them.
        layer: as in :func:`gradcam`.
        contrasts: one ``contrast`` argument per target set (default: none).
        reshape: as in :func:`gradcam`.
        with_head: also capture the final dense layer, so that :meth:`Explanation.cam`
            gives CAM (of any class) from this pass without running the model again.
        allow_probabilities: as in :func:`gradcam`.

    Returns:
        An :class:`Explanation`.
    """
    backend, batch, infos = _layer_infos(model, inputs)
    names = _resolve_layers(backend, model, layer, infos, reshape=reshape, batch=batch)
    size = int(batch.shape[0])
    if contrasts is None:
        contrasts = [None] * len(targets)
    if len(contrasts) != len(targets):
        raise ValueError(f"got {len(contrasts)} contrasts for {len(targets)} target sets.")
    specs = [
        TargetSet(
            _target_spec(t, size),
            None if c is None else _target_spec(c, size, what="contrast"),
        )
        for t, c in zip(targets, contrasts, strict=True)
    ]
    captured = backend.capture(model, batch, names, specs, reshape=reshape, with_head=with_head)
    if not allow_probabilities:
        check_not_probabilities(captured.logits)
    return Explanation(
        logits=captured.logits,
        layers=names,
        targets=captured.targets,
        contrasts=captured.contrasts,
        activations=captured.activations,
        gradients=captured.gradients,
        head=captured.head,
    )


@overload
def gradcam(
    model: Any,
    inputs: Any,
    target: Any = None,
    layer: str | None = None,
    *,
    method: str | Method = "gradcam",
    contrast: Any = None,
    evidence: Evidence = "for",
    reshape: Reshape | None = None,
    allow_probabilities: bool = False,
) -> np.ndarray: ...


@overload
def gradcam(
    model: Any,
    inputs: Any,
    target: Any = None,
    layer: list[Any] | tuple[Any, ...] = ...,
    *,
    method: str | Method = "gradcam",
    contrast: Any = None,
    evidence: Evidence = "for",
    reshape: Reshape | None = None,
    allow_probabilities: bool = False,
) -> dict[str, np.ndarray]: ...


@overload
def gradcam(
    model: Any,
    inputs: Any,
    target: Any = None,
    layer: Any = None,
    *,
    method: str | Method = "gradcam",
    contrast: Any = None,
    evidence: Evidence = "for",
    reshape: Reshape | None = None,
    allow_probabilities: bool = False,
) -> np.ndarray | dict[str, np.ndarray]: ...


def gradcam(
    model: Any,
    inputs: Any,
    target: Any = None,
    layer: Any = None,
    *,
    method: str | Method = "gradcam",
    contrast: Any = None,
    evidence: Evidence = "for",
    reshape: Reshape | None = None,
    allow_probabilities: bool = False,
) -> np.ndarray | dict[str, np.ndarray]:
    """Gradient-weighted class activation maps.

    ``L^c = ReLU(sum_k alpha_k^c A^k)`` with ``alpha_k^c = (1/Z) sum_ij dy^c / dA^k_ij``,
    where ``A^k`` is channel ``k`` of the layer's output, ``Z = h*w`` and ``y^c`` the
    pre-softmax score of class ``c``. Selvaraju et al., "Grad-CAM: Visual Explanations
    from Deep Networks via Gradient-based Localization", ICCV 2017.

    Other registered gradient methods (``gw.METHODS``: ``"gradcam++"``, ``"hirescam"``)
    change only how the gradients weigh the activations.

    Args:
        model: a ``torch.nn.Module`` or a ``keras.Model``; it is not changed.
        inputs: a batch in the model's layout (torch N,C,H,W; Keras N,H,W,C) as numpy or
            a framework tensor; one image without a batch axis is a batch of one.
        target: ``None`` for each image's top class; an int (or 0-d array/tensor) for
            every image; one int per image (a sequence or 1-d array/tensor).
        layer: ``None`` for the default layer: the last candidate
            (:func:`candidate_layers`), except on a vision transformer whose head reads
            the class token, where it is the last token layer the score depends on, the
            last block's input norm as in the ViT Grad-CAM literature (see
            ``_default_layer``); a name or a layer object; or a list of them, all computed
            from one forward and one backward pass. Names of a ``torch.compile`` or
            ``DataParallel`` model are also accepted without their ``_orig_mod.`` /
            ``module.`` prefix. Keras: the name ``"<layer>:input"`` is the map that layer
            receives, for maps no layer outputs (in ``keras.applications`` ConvNeXt each
            stage ends in a raw ``add``; its last one is reached as
            ``"convnext_tiny_head_gap:input"``). When the map that feeds a Keras model's
            head (its pooling or flattening layer) is no layer's output, that
            ``":input"`` name is the last candidate, so the default.
        method: a name in ``gw.METHODS`` (or a ``Method``).
        contrast: ``None``, or a class (per image) whose score is subtracted: the map
            explains ``y^target - y^contrast``, "why this class rather than that one".
        evidence: ``"for"`` (default) or ``"against"``: ``ReLU(-sum_k alpha_k A^k)``, the
            counterfactual map of regions that lower the score.
        reshape: ``None``: channels-last maps and token sequences are detected and laid
            out as maps where the shapes leave one reading (see
            :func:`candidate_layers`). Or a callable turning the layer's output (a
            framework tensor) into a map in the model's layout (torch ``(N, C, h, w)``,
            Keras ``(N, h, w, C)``), as pytorch-grad-cam's ``reshape_transform``; applied
            to activations and gradients.
        allow_probabilities: ``False`` (default): an output that is a probability
            vector per image (non-negative rows summing to 1, or log-probabilities) is
            refused, since Grad-CAM explains the score before the softmax: pass the
            logits (a model without the softmax). ``True``: explain the output as it is,
            ``y^c = p_c``, knowing that its gradient mixes in the other classes.
            A final softmax *module* or Keras softmax *layer/activation* needs neither:
            the engine takes the score before it.

    Returns:
        float32 ``(N, h, w)`` at the layer's resolution, not normalised; for a list of
        layers, ``{name: array}``.

    Raises:
        ValueError: unknown or non-spatial layer, a layer whose layout cannot be decided
            (pass ``reshape=``), class out of range, inputs that do not fit the model, a
            probability output. Nothing is changed when it raises.
    """
    chosen = _method(method)
    _check_evidence(evidence)
    result = explain(
        model,
        inputs,
        [target],
        layer,
        contrasts=[contrast],
        reshape=reshape,
        allow_probabilities=allow_probabilities,
    )
    maps = result.maps(chosen, evidence)
    if _is_layer_list(layer):
        return maps
    return next(iter(maps.values()))


def gradcam_multi(
    model: Any,
    inputs: Any,
    targets: Sequence[Any],
    layer: Any = None,
    *,
    method: str | Method = "gradcam",
    evidence: Evidence = "for",
    reshape: Reshape | None = None,
    allow_probabilities: bool = False,
) -> list[dict[str, np.ndarray]]:
    """Grad-CAM for several target sets from ONE forward pass (one backward each).

    Args:
        model: as in :func:`gradcam`.
        inputs: as in :func:`gradcam`.
        targets: a list of ``target`` arguments as :func:`gradcam` takes them.
        layer: as in :func:`gradcam`.
        method: as in :func:`gradcam`.
        evidence: as in :func:`gradcam`.
        reshape: as in :func:`gradcam`.
        allow_probabilities: as in :func:`gradcam`.

    Returns:
        One ``{layer name: (N, h, w) array}`` per entry of ``targets``.
    """
    chosen = _method(method)
    _check_evidence(evidence)
    result = explain(
        model,
        inputs,
        list(targets),
        layer,
        reshape=reshape,
        allow_probabilities=allow_probabilities,
    )
    return [result.maps(chosen, evidence, index=i) for i in range(len(targets))]


def predict(model: Any, inputs: Any) -> np.ndarray:
    """Pre-softmax scores ``(N, classes)`` of ``model``, computed as the engine sees them.

    Works for any classifier, with or without a spatial layer (an MLP too).
    """
    backend = backend_for(model)
    return backend.logits(model, backend.prepare(model, inputs))


def cam(
    model: Any,
    inputs: Any,
    target: Any = None,
    layer: Any = None,
) -> np.ndarray:
    """Class activation maps for a global-average-pooling + dense head.

    ``M_c = sum_k w_k^c A^k``, where ``A^k`` are the maps that are globally averaged and
    ``w^c`` the dense layer's weights for class ``c``; no gradients are needed. Zhou et
    al., "Learning Deep Features for Discriminative Localization", CVPR 2016.

    A Keras layer norm between the pooling and the dense layer (ConvNeXt's head) is
    folded in per image: with ``LN(v) = gamma (v - mu) / sigma + beta``,
    ``M_c = sum_k (w_k^c gamma_k / sigma) (A^k - mu)``, whose spatial mean is the
    logit minus a constant, as for the plain head.

    Args:
        model: a network whose logits are ``Dense(GAP(A))`` (torch ``nn.Linear``, Keras
            ``Dense``, optionally followed by a softmax; Keras also
            ``Dense(LayerNorm(GAP(A)))``).
        inputs: as in :func:`gradcam`.
        target: as in :func:`gradcam`.
        layer: the layer that is pooled (a name or the layer object; for Keras also
            ``"<pooling layer>:input"``); ``None`` for the last candidate layer.

    Returns:
        float32 ``(N, h, w)``, not normalised and not rectified (CAM can be negative).

    Raises:
        ValueError: the head is not GAP then one dense layer on ``layer``'s output; use
            :func:`gradcam` there.
    """
    if _is_layer_list(layer):
        raise TypeError("cam() takes one layer: only the pooled layer has a CAM.")
    backend, batch, infos = _layer_infos(model, inputs)
    (name,) = _resolve_layers(backend, model, layer, infos)
    spec = TargetSet(_target_spec(target, int(batch.shape[0])))
    captured = backend.capture(model, batch, [name], [spec], with_gradients=False, with_head=True)
    return _cam_maps(name, captured.activations[name], captured.head, captured.targets[0])


def _cam_maps(name: str, activations: np.ndarray, head: Head | None, classes: Any) -> np.ndarray:
    """``M_c = sum_k w_k^c A^k`` after checking that the head is ``Dense(GAP(A))``.

    ``classes``: resolved ``(N,)`` class indices, one per image.
    """
    if head is None:
        raise ValueError(
            "CAM needs a head made of global average pooling and one dense layer that "
            "produces the scores; this model's scores come from elsewhere. Use gradcam(), "
            "which works for any head."
        )
    pooled = activations.mean(axis=(2, 3))
    if head.features.shape != pooled.shape or not np.allclose(
        head.features,
        pooled,
        rtol=head.tolerance,
        atol=head.tolerance / 10 * (1.0 + np.abs(pooled).max()),
    ):
        raise ValueError(
            f"CAM needs the dense layer's input to be the global average of the maps of layer "
            f"{name!r}, and here it is not (a Flatten head, extra layers between, or another "
            "layer pooled). Use gradcam(), or give the pooled layer's name."
        )
    indices = np.asarray(classes, dtype=np.int64)
    n_classes = head.weight.shape[-2]
    if np.any(indices < 0) or np.any(indices >= n_classes):
        raise ValueError(f"class out of range: the dense layer scores {n_classes} classes.")
    if head.weight.ndim == 3:  # a per-image normalisation folded into the weights
        class_weights = head.weight[np.arange(len(indices)), indices]
    else:
        class_weights = head.weight[indices]
    if head.centre is not None:
        activations = activations - head.centre[:, None, None, None].astype(activations.dtype)
    return _core.class_activation_map(activations, class_weights)
