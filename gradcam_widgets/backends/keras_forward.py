"""One recorded forward pass of a Keras 3 model, the same on every Keras backend.

Keras has no forward hooks, so for the length of one pass the model's layers' ``call``
is wrapped on the instance (``object.__setattr__``, undone in ``finally``). The wrapper
records every call and lets the gradient step *mark* the tensors it differentiates with
respect to: TensorFlow watches them on its tape, JAX and PyTorch add a zero "probe"
tensor whose gradient is the activation's gradient. One mechanism serves Sequential,
Functional, nested and subclassed models alike (a sub-model built from ``layer.output``
fails for nested and subclassed ones).

A feature map is named by its layer (the layer's output, ``"conv5"``) or, with the
suffix :data:`INPUT_SUFFIX`, by the layer it feeds (``"head_gap:input"``): the tensor as
that layer receives it. The second form reaches feature maps that no layer outputs, such
as the raw residual ``add`` ending each Keras ConvNeXt stage. Only ``keras.ops`` is used
here, so the module runs under TensorFlow, JAX and PyTorch alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

#: ``"layer:input"`` names the tensor the layer receives (its first argument).
INPUT_SUFFIX = ":input"

#: One layer call: (layer, positional args as the layer got them, kwargs, output).
Record = tuple[keras.layers.Layer, tuple, dict, Any]

#: A gradient step's hook: ``mark(name, tensor) -> tensor`` for every wanted feature map.
Mark = Callable[[str, Any], Any]


def named_layers(model: keras.layers.Layer, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(name, layer)`` for every layer, nested models as ``outer/inner``."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        name = f"{prefix}{layer.name}"
        yield name, layer
        if isinstance(layer, keras.Model):
            yield from named_layers(layer, prefix=f"{name}/")


@dataclass(frozen=True)
class Site:
    """Where a feature map is read: a layer's output, or its (first) input."""

    layer_name: str
    is_input: bool

    @classmethod
    def parse(cls, name: str) -> Site:
        """``"conv"`` -> the output of ``conv``; ``"conv:input"`` -> its input."""
        if name.endswith(INPUT_SUFFIX):
            return cls(name[: -len(INPUT_SUFFIX)], True)
        return cls(name, False)


@contextlib.contextmanager
def intercept(
    layers: dict[str, keras.layers.Layer],
    before: Callable[[str, tuple], tuple],
    after: Callable[[str, keras.layers.Layer, tuple, dict, Any], Any],
) -> Iterator[None]:
    """Route each layer's arguments through ``before`` and output through ``after``."""
    saved: list[tuple[keras.layers.Layer, bool, Any]] = []
    try:
        for name, layer in layers.items():
            own = vars(layer)
            saved.append((layer, "call" in own, own.get("call")))
            original = layer.call

            def wrapper(*args, _name=name, _layer=layer, _call=original, **kwargs):
                args = before(_name, args)
                return after(_name, _layer, args, kwargs, _call(*args, **kwargs))

            object.__setattr__(layer, "call", wrapper)
        yield
    finally:
        for layer, had_own, previous in reversed(saved):
            if had_own:
                object.__setattr__(layer, "call", previous)
            else:
                object.__delattr__(layer, "call")


def _is_softmax(function: Any) -> bool:
    return getattr(function, "__name__", "") in ("softmax", "log_softmax")


def producer(records: list[Record], tensor: Any) -> Record | None:
    """The innermost layer call whose output is ``tensor`` (records are in finish order)."""
    for record in records:
        if record[3] is tensor:
            return record
    return None


def _linear_twin(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A shallow twin of ``layer`` sharing its variables, with a linear activation.

    The user's layer is never touched (not even for the length of a call), so a pass
    may run while another thread uses the model.
    """
    twin = object.__new__(type(layer))
    twin.__dict__.update(vars(layer))
    object.__setattr__(twin, "activation", keras.activations.linear)
    return twin


def pre_softmax(records: list[Record], output: Any) -> tuple[Any, Record | None]:
    """The score before a final softmax, and the layer call that produced it.

    A final ``Softmax`` / ``Activation("softmax")`` layer: its input. A final layer with
    ``activation="softmax"``: that layer's ``call`` run once more on the same inputs by a
    twin with a linear activation. The model keeps its softmax either way.
    """
    record = producer(records, output)
    if record is None:
        return output, None
    layer, args, kwargs, _ = record
    if isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation) and _is_softmax(layer.activation)
    ):
        return args[0], producer(records, args[0])
    if _is_softmax(getattr(layer, "activation", None)):
        return type(layer).call(_linear_twin(layer), *args, **kwargs), record
    return output, record


@dataclass
class Pass:
    """What one recorded forward pass saw.

    Attributes:
        captured: wanted name -> the feature map (as marked).
        logits: the pre-softmax output.
        records: every layer call, in finish order.
        head: the layer call that produced the logits, if a layer did.
    """

    captured: dict[str, Any]
    logits: Any
    records: list[Record]
    head: Record | None

    def maps(self, names: tuple[str, ...]) -> list[Any]:
        """The captured maps in the order of ``names``; a clear error for one not seen."""
        unseen = [name for name in names if name not in self.captured]
        if unseen:
            raise ValueError(
                f"{unseen} did not run in this forward pass (or, for ':input', the layer "
                "got no positional tensor input): choose another layer."
            )
        return [self.captured[name] for name in names]


def forward(
    model: keras.Model,
    run: Callable[[], Any],
    wanted: tuple[str, ...] = (),
    mark: Mark | None = None,
) -> Pass:
    """Run ``run()`` (a call of ``model``) recording every layer and marking ``wanted``.

    Args:
        model: the model whose layers are intercepted.
        run: calls the model on the batch (plainly, or through ``stateless_call``).
        wanted: feature-map names (``"layer"`` or ``"layer:input"``).
        mark: applied to each wanted tensor the first time it is seen; its result
            replaces the tensor in the model's computation.
    """
    records: list[Record] = []
    captured: dict[str, Any] = {}
    sites = {name: Site.parse(name) for name in wanted}
    inputs_of = {s.layer_name: n for n, s in sites.items() if s.is_input}
    outputs_of = {s.layer_name: n for n, s in sites.items() if not s.is_input}

    def take(name: str, tensor: Any) -> Any:
        if name in captured:
            return tensor
        if mark is not None:
            tensor = mark(name, tensor)
        captured[name] = tensor
        return tensor

    def before(layer_name: str, args: tuple) -> tuple:
        wanted_name = inputs_of.get(layer_name)
        if wanted_name is None or not args:
            return args
        return (take(wanted_name, args[0]), *args[1:])

    def after(layer_name: str, layer: Any, args: tuple, kwargs: dict, output: Any) -> Any:
        wanted_name = outputs_of.get(layer_name)
        if wanted_name is not None:
            output = take(wanted_name, output)
        records.append((layer, args, kwargs, output))
        return output

    with intercept(dict(named_layers(model)), before, after):
        output = run()
        if isinstance(output, (list, tuple, dict)):
            raise ValueError(
                "the model has several outputs; Grad-CAM needs one (N, classes) output. "
                "Build a keras.Model that returns only the classifier's output."
            )
        logits, head = pre_softmax(records, output)
    return Pass(captured, logits, records, head)


def score(logits: Any, spec: Any) -> Any:
    """``sum_n y_n^target - y_n^contrast`` for one ``(2, N)`` target set, in ``keras.ops``.

    A negative class in row 0 is the image's own top class; a negative (or out of range)
    class in row 1 is no contrast. The range is checked on the resolved targets.
    """
    spec = ops.cast(spec, "int32")
    top = ops.cast(ops.argmax(logits, axis=1), "int32")
    classes = ops.where(spec[0] < 0, top, spec[0])
    index = ops.arange(logits.shape[-1], dtype="int32")[None, :]
    onehot = ops.cast(ops.equal(index, classes[:, None]), logits.dtype)
    against = ops.cast(ops.equal(index, spec[1][:, None]), logits.dtype)
    return ops.sum(logits * (onehot - against))


def _feature_norm(layer: Any, args: tuple) -> bool:
    """A ``LayerNormalization`` over the last axis of ``(N, K)`` features (ConvNeXt's head)."""
    if not isinstance(layer, keras.layers.LayerNormalization) or not args:
        return False
    rank = len(args[0].shape)
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return rank == 2 and [a % rank for a in axes] == [1] and not layer.rms_scaling


def dense_head(records: list[Record], head: Record | None) -> dict[str, Any]:
    """The dense layer that produced the logits, for CAM (empty if none did).

    ``features`` and ``kernel``: the dense layer's input and weights. When a layer norm
    over the features feeds the dense layer (pooling, layer norm, dense: ConvNeXt), its
    input is the ``features`` and its scale ``norm_gamma`` (with ``norm_epsilon``) is
    returned too, to be folded into the weights per image.
    """
    if head is None or not isinstance(head[0], keras.layers.Dense):
        return {}
    features = head[1][0]
    out = {"kernel": ops.convert_to_tensor(head[0].kernel)}
    norm = producer(records, features)
    if norm is not None and _feature_norm(norm[0], norm[1]):
        layer = norm[0]
        features = norm[1][0]
        size = features.shape[-1]
        gamma = layer.gamma if layer.scale else ops.ones((size,))
        out["norm_gamma"] = ops.convert_to_tensor(gamma)
        out["norm_epsilon"] = ops.convert_to_tensor(float(layer.epsilon))
    out["features"] = features
    return out
