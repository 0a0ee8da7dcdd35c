"""Keras 3 (TensorFlow backend) adapter: a GradientTape on the captured activations.

Keras has no forward hooks, so for the length of one trace the chosen layers' ``call``
is wrapped on the instance (``object.__setattr__``, undone in ``finally``): the wrapper
hands the output to the tape with ``tape.watch`` and records it. That one mechanism
works alike for Sequential, Functional, nested and subclassed models, where building a
sub-model from ``layer.output`` fails for nested and subclassed ones.

The forward and the gradients are compiled with ``tf.function`` and cached per model,
layers and number of target sets (``tf.function`` itself retraces per input shape). An
eager tape records every op of the forward pass; the compiled one runs at a fraction of
its cost. The wrappers exist only while a trace runs: a cached call touches no layer.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

if keras.backend.backend() != "tensorflow":
    raise TypeError(
        "gradcam_widgets supports Keras 3 with the TensorFlow backend; set "
        "KERAS_BACKEND=tensorflow before importing keras."
    )

import tensorflow as tf  # noqa: E402

from .base import (  # noqa: E402
    Capture,
    Head,
    LayerCache,
    LayerInfo,
    Reshape,
    TargetSet,
    check_logits_shape,
    resolve_target_set,
    validate_pixels,
)

# model -> {(layers, number of target sets, head?): tf.function}
_STEP_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# model -> {(input shape, dtype): [LayerInfo]}
_LAYER_CACHE = LayerCache()


def forget_model(model: Any | None = None) -> None:
    """Drop the compiled steps of ``model`` (or of every model)."""
    if model is None:
        _STEP_CACHE.clear()
    else:
        _STEP_CACHE.pop(model, None)

_Record = tuple[keras.layers.Layer, tuple, dict, Any]


def named_layers(model: keras.layers.Layer, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(name, layer)`` for every layer, nested models as ``outer/inner``."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        name = f"{prefix}{layer.name}"
        yield name, layer
        if isinstance(layer, keras.Model):
            yield from named_layers(layer, prefix=f"{name}/")


@contextlib.contextmanager
def _intercept(
    layers: dict[str, keras.layers.Layer],
    on_output: Callable[[str, keras.layers.Layer, tuple, dict, Any], Any],
) -> Iterator[None]:
    """Route each layer's output through ``on_output`` while the block runs."""
    saved: list[tuple[keras.layers.Layer, bool, Any]] = []
    try:
        for name, layer in layers.items():
            own = vars(layer)
            saved.append((layer, "call" in own, own.get("call")))
            original = layer.call

            def wrapper(*args, _name=name, _layer=layer, _call=original, **kwargs):
                return on_output(_name, _layer, args, kwargs, _call(*args, **kwargs))

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


def _producer(records: list[_Record], tensor: Any) -> _Record | None:
    """The innermost layer call whose output is ``tensor`` (records are in finish order)."""
    for record in records:
        if record[3] is tensor:
            return record
    return None


@contextlib.contextmanager
def _linear_activation(layer: keras.layers.Layer) -> Iterator[None]:
    previous = layer.activation
    try:
        object.__setattr__(layer, "activation", keras.activations.linear)
        yield
    finally:
        object.__setattr__(layer, "activation", previous)


def _pre_softmax(records: list[_Record], output: Any) -> tuple[Any, _Record | None]:
    """The score before a final softmax, and the layer call that produced it.

    A final ``Softmax`` / ``Activation("softmax")`` layer: its input. A final layer with
    ``activation="softmax"``: that layer run once more on the same inputs with a linear
    activation, restored at once. The model keeps its softmax either way.
    """
    record = _producer(records, output)
    if record is None:
        return output, None
    layer, args, kwargs, _ = record
    if isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation) and _is_softmax(layer.activation)
    ):
        return args[0], _producer(records, args[0])
    if _is_softmax(getattr(layer, "activation", None)):
        with _linear_activation(layer):
            return type(layer).call(layer, *args, **kwargs), record
    return output, record


def _forward(
    model: keras.Model,
    batch: Any,
    layers: dict[str, keras.layers.Layer],
    tape: tf.GradientTape | None,
) -> tuple[dict[str, Any], Any, list[_Record], _Record | None]:
    """Run the model, capturing ``layers``' outputs; return them, the logits, the records."""
    records: list[_Record] = []
    captured: dict[str, Any] = {}
    wanted = set(layers)

    def on_output(name: str, layer: Any, args: tuple, kwargs: dict, output: Any) -> Any:
        if name in wanted and name not in captured:
            if tape is not None:
                tape.watch(output)
            captured[name] = output
        records.append((layer, args, kwargs, output))
        return output

    every_layer = dict(named_layers(model))
    with _intercept(every_layer, on_output):
        output = _call(model, batch)
        if isinstance(output, (list, tuple, dict)):
            raise ValueError(
                "the model has several outputs; Grad-CAM needs one (N, classes) output. "
                "Build a keras.Model that returns only the classifier's output."
            )
        logits, producer = _pre_softmax(records, output)
    return captured, logits, records, producer


def _call(model: keras.Model, batch: Any) -> Any:
    try:
        return model(batch, training=False)
    except (ValueError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(
            f"the model could not run on inputs of shape {tuple(batch.shape)}: {error}\n"
            "Keras models take a batch laid out as (N, H, W, C) at the size the model was "
            "built for."
        ) from error


class KerasBackend:
    """Grad-CAM plumbing for ``keras.Model`` (Keras 3, TensorFlow backend)."""

    name = "keras"
    channels_last = True

    @staticmethod
    def to_numpy(tensor: Any) -> np.ndarray:
        """A backend tensor (or Keras variable) as a numpy array."""
        return np.asarray(keras.ops.convert_to_numpy(tensor))

    @staticmethod
    def layer_name(model: keras.Model, layer: Any) -> str | None:
        """The engine's ``outer/inner`` name of the layer object ``layer``, or None."""
        return next((name for name, found in named_layers(model) if found is layer), None)

    def logits(self, model: keras.Model, batch: Any) -> np.ndarray:
        """The compiled step with no layer and no target: the pre-softmax scores."""
        return self.capture(model, batch, (), [], with_gradients=False).logits

    @staticmethod
    def weighted_layers(model: keras.Model) -> list[str]:
        """Layers with weights (nested models' layers as ``outer/inner``), in layer order."""
        return [
            name
            for name, layer in named_layers(model)
            if layer.weights and not isinstance(layer, keras.Model)
        ]

    @staticmethod
    def randomized_copy(
        model: keras.Model,
        layers: Sequence[str],
        randomize: Callable[[np.ndarray], np.ndarray],
    ) -> keras.Model:
        """A ``clone_model`` copy with the trained weights, the named layers randomised."""
        try:
            clone = keras.models.clone_model(model, recursive=True)
        except TypeError as error:
            raise TypeError(
                "this Keras model cannot be copied with keras.models.clone_model (a "
                "subclassed model needs get_config and from_config). Randomise a Sequential "
                f"or Functional model instead. Keras said: {str(error).splitlines()[0]}"
            ) from error
        clone.set_weights(model.get_weights())
        by_name = dict(named_layers(clone))
        for name in layers:
            layer = by_name[name]
            layer.set_weights([randomize(np.asarray(w)) for w in layer.get_weights()])
        return clone

    def prepare(self, model: keras.Model, inputs: Any) -> tf.Tensor:
        """Return a float32 batch; add a batch axis to a single image; check channels."""
        array = np.asarray(inputs)
        if not np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float32)
        if array.ndim == 3:
            array = array[np.newaxis]
        if array.ndim != 4:
            raise ValueError(
                f"inputs have shape {array.shape}: give a batch (N, H, W, C) or one image "
                "(H, W, C)."
            )
        validate_pixels(array)
        expected = self._expected_input_shape(model)
        if expected is not None:
            channels = expected[-1]
            if channels is not None and array.shape[-1] != channels:
                hint = ""
                if array.shape[1] == channels:
                    hint = " They look channels-first: use np.transpose(inputs, (0, 2, 3, 1))."
                raise ValueError(
                    f"inputs have {array.shape[-1]} channels on the last axis but the model "
                    f"expects {channels} (layout N, H, W, C).{hint}"
                )
            for axis, (got, want) in enumerate(zip(array.shape[1:3], expected[1:3]), start=1):
                if want is not None and got != want:
                    raise ValueError(
                        f"inputs have size {got} on axis {axis} but the model was built for "
                        f"{tuple(expected[1:])} (N, H, W, C): resize the images first."
                    )
        return tf.convert_to_tensor(array.astype(np.float32, copy=False))

    @staticmethod
    def _expected_input_shape(model: keras.Model) -> tuple | None:
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if inputs:
            return tuple(inputs[0].shape)
        for _, layer in named_layers(model):
            if isinstance(layer, keras.layers.Conv2D) and layer.built:
                return (None, None, None, int(layer.kernel.shape[2]))
        return None

    def describe_layers(self, model: keras.Model, batch: tf.Tensor) -> list[LayerInfo]:
        """Run one eager forward on the first image and record every layer's output."""
        key = (tuple(batch.shape[1:]), batch.dtype.name)
        cached = _LAYER_CACHE.get(model, key)
        if cached is not None:
            return cached
        if not model.built:
            # Building runs a symbolic pass first; do it outside the recording so that
            # every layer is counted once.
            _call(model, batch[:1])
        names = {id(layer): name for name, layer in named_layers(model)}
        _, _, records, _ = _forward(model, batch[:1], {}, tape=None)
        seen: dict[str, list[Any]] = {}
        for layer, _, _, output in records:
            name = names[id(layer)]
            if name in seen:
                seen[name][1] += 1
            else:
                shape = tuple(output.shape) if hasattr(output, "shape") else None
                seen[name] = [shape, 1]
        infos = []
        for name, (shape, calls) in seen.items():
            spatial = (shape[1], shape[2]) if shape is not None and len(shape) == 4 else None
            infos.append(LayerInfo(name, shape, spatial, calls))
        _LAYER_CACHE.put(model, key, infos)
        return infos

    def capture(
        self,
        model: keras.Model,
        batch: tf.Tensor,
        layers: Sequence[str],
        targets: Sequence[TargetSet],
        *,
        with_gradients: bool = True,
        with_head: bool = False,
        reshape: Reshape | None = None,
    ) -> Capture:
        """One compiled forward + gradient pass for every layer and target set."""
        layers = tuple(layers)
        n_sets = len(targets) if with_gradients and layers else 0
        step, missing = self._step(model, layers, n_sets, with_head)
        stacked = [spec.stacked() for spec in targets[:n_sets]]
        size = int(batch.shape[0])
        specs = tf.convert_to_tensor(
            np.stack(stacked) if n_sets else np.zeros((0, 2, size)), tf.int64
        )
        with _quiet_retracing():
            result = step(batch, specs)
        logits = result["logits"].numpy().astype(np.float32)
        check_logits_shape(logits.shape)
        resolved = [resolve_target_set(spec, logits) for spec in targets]
        if missing:
            raise ValueError(
                f"no gradient reached the output of {sorted(missing)}: the class score "
                "does not depend on it. Choose another layer."
            )
        gradients = [
            {name: _channels_first(g, reshape) for name, g in zip(layers, grads, strict=True)}
            for grads in result["gradients"]
        ]
        head = None
        if with_head and "features" in result:
            head = Head(result["features"].numpy(), result["kernel"].numpy().T)
        return Capture(
            logits=logits,
            activations={
                name: _channels_first(a, reshape)
                for name, a in zip(layers, result["activations"], strict=True)
            },
            targets=[classes for classes, _ in resolved],
            gradients=gradients,
            head=head,
            contrasts=[contrast for _, contrast in resolved],
        )

    def _step(
        self, model: keras.Model, layers: tuple[str, ...], n_sets: int, with_head: bool
    ) -> tuple[Callable[[tf.Tensor, tf.Tensor], dict[str, Any]], set[str]]:
        """The compiled step for these layers and target count, and its missing-gradient set."""
        per_model = _STEP_CACHE.setdefault(model, {})
        key = (layers, n_sets, with_head)
        if key in per_model:
            return per_model[key]
        all_layers = dict(named_layers(model))
        chosen = {name: all_layers[name] for name in layers}
        # Filled while tracing: layers the score turned out not to depend on.
        missing: set[str] = set()

        @tf.function(reduce_retracing=True)
        def step(batch: tf.Tensor, specs: tf.Tensor) -> dict[str, Any]:
            with tf.GradientTape(persistent=n_sets > 1) as tape:
                captured, logits, _, producer = _forward(model, batch, chosen, tape)
                logits = tf.cast(logits, tf.float32)
                top = tf.argmax(logits, axis=1, output_type=tf.int64)
                scores = []
                depth = tf.shape(logits)[-1]
                for i in range(n_sets):
                    classes = tf.where(specs[i, 0] < 0, top, specs[i, 0])
                    # one_hot gives an all-zero row for an out-of-range class (and for
                    # NO_CONTRAST = -1); the range is checked on the resolved targets.
                    onehot = tf.one_hot(classes, depth=depth, dtype=logits.dtype)
                    against = tf.one_hot(specs[i, 1], depth=depth, dtype=logits.dtype)
                    scores.append(tf.reduce_sum(logits * (onehot - against)))
            activations = [captured[name] for name in layers]
            gradients = []
            for score in scores:
                grads = tape.gradient(score, activations)
                missing.update(n for n, g in zip(layers, grads, strict=True) if g is None)
                gradients.append(
                    [tf.zeros_like(a) if g is None else g for a, g in zip(activations, grads)]
                )
            out = {"logits": logits, "activations": activations, "gradients": gradients}
            if with_head and producer is not None and isinstance(producer[0], keras.layers.Dense):
                out["features"] = producer[1][0]
                out["kernel"] = tf.identity(producer[0].kernel)
            return out

        per_model[key] = (step, missing)
        return step, missing


@contextlib.contextmanager
def _quiet_retracing() -> Iterator[None]:
    """Silence TensorFlow's "triggered tf.function retracing" warning for our own steps.

    Each (model, layers, number of targets) gets its own compiled step, traced once, by
    design; TensorFlow counts those traces together and warns on stderr, which learners
    would read as an error. The logger's level is restored at once.
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _channels_first(tensor: Any, reshape: Reshape | None = None) -> np.ndarray:
    """A captured ``(N, h, w, C)`` tensor as numpy ``(N, C, h, w)``, through ``reshape``."""
    if reshape is not None:
        tensor = reshape(tensor)
        if len(getattr(tensor, "shape", ())) != 4:
            raise ValueError(
                "reshape= must return a 4-D tensor (N, h, w, C) for a Keras model; it "
                f"returned shape {tuple(getattr(tensor, 'shape', ()))}."
            )
    array = np.asarray(keras.ops.convert_to_numpy(tensor))
    return np.ascontiguousarray(np.transpose(array.astype(np.float32, copy=False), (0, 3, 1, 2)))


BACKEND = KerasBackend()
