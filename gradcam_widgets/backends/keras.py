"""Keras 3 adapter, on every Keras backend: TensorFlow, JAX and PyTorch.

The shared part lives here (inputs, layer descriptions, layer names, copies) and in
:mod:`.keras_forward` (one recorded forward pass). The gradient step is the backend's
own: :mod:`.keras_tf` (``tf.function`` and a GradientTape), :mod:`.keras_jax`
(``jax.jit`` of a pure function with zero probes) or :mod:`.keras_torch` (eager
autograd). The same model gives the same maps on the three.

Compiled steps are cached per model, layers and number of target sets; the
wrappers that record a pass exist only while a step is traced (or, on PyTorch, runs):
a cached call touches no layer.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from . import keras_layout
from .base import (
    Capture,
    Head,
    LayerCache,
    LayerInfo,
    LayerStep,
    Layout,
    Reshape,
    TargetSet,
    centre_cell,
    check_logits_shape,
    map_info,
    resolve_target_set,
    square,
    to_channels_first,
    validate_pixels,
)
from .keras_forward import INPUT_SUFFIX, forward, named_layers, producer
from .keras_steps import Step

__all__ = ["BACKEND", "KerasBackend", "forget_model", "named_layers"]

_STEP_MODULES = {"tensorflow": ".keras_tf", "jax": ".keras_jax", "torch": ".keras_torch"}
_KERAS_BACKEND = keras.backend.backend()
if _KERAS_BACKEND not in _STEP_MODULES:
    raise TypeError(
        f"gradcam_widgets explains Keras models on the TensorFlow, JAX and PyTorch "
        f"backends, not {_KERAS_BACKEND!r}: set KERAS_BACKEND before importing keras."
    )
_steps = importlib.import_module(_STEP_MODULES[_KERAS_BACKEND], __package__)

# model -> {(layers, number of target sets): Step}
_STEP_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# model -> {(input shape, dtype): [LayerInfo]}
_LAYER_CACHE = LayerCache()


def forget_model(model: Any | None = None) -> None:
    """Drop the compiled steps of ``model`` (or of every model)."""
    if model is None:
        _STEP_CACHE.clear()
    else:
        _STEP_CACHE.pop(model, None)


def steps_of(model: keras.Model) -> dict[tuple, Step]:
    """The cached steps of ``model`` (for tests that count traces)."""
    return dict(_STEP_CACHE.get(model, {}))


def _call(model: keras.Model, batch: Any) -> Any:
    try:
        return model(batch, training=False)
    except (ValueError, *_steps.RUN_ERRORS) as error:
        raise ValueError(
            f"the model could not run on inputs of shape {tuple(batch.shape)}: {error}\n"
            "Keras models take a batch laid out as (N, H, W, C) at the size the model was "
            "built for."
        ) from error


class KerasBackend:
    """Grad-CAM plumbing for ``keras.Model`` (Keras 3 on TensorFlow, JAX or PyTorch)."""

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
    def layer_geometry(model: keras.Model) -> list[LayerStep]:
        """``(name, (kernel, stride))`` of the model's layers: convolutions and poolings.

        Other layers give ``None``; element-wise ones (and batch norms) are left out.
        """
        steps: list[LayerStep] = []
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer) or (
                isinstance(layer, keras_layout.ELEMENTWISE)
                and not isinstance(layer, keras_layout.MERGES)
            ):
                continue
            if isinstance(layer, keras.layers.Conv2D):
                span = (square(layer.kernel_size, "kernel") - 1) * square(
                    layer.dilation_rate, "dilation"
                ) + 1
                steps.append((layer.name, (span, square(layer.strides, "stride"))))
            elif isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
                steps.append(
                    (
                        layer.name,
                        (square(layer.pool_size, "pool size"), square(layer.strides, "stride")),
                    )
                )
            else:
                steps.append((layer.name, None))
        return steps

    def cell_gradient(self, model: keras.Model, batch: np.ndarray, layer: str) -> np.ndarray:
        """The input gradient of the centre cell of ``layer``'s map, summed over channels.

        Computed by the Keras backend's own autodiff (:func:`input_gradient` of the step
        module), on a recorded forward that captures the layer.
        """
        info, layout = map_info(self.describe_layers(model, batch), layer)

        def cell_sum(x: Any) -> Any:
            seen = forward(model, lambda: model(x, training=False), (info.name,))
            (output,) = seen.maps((info.name,))
            return keras.ops.sum(centre_cell(output, layout))

        grad = self.to_numpy(_steps.input_gradient(cell_sum, batch))
        return np.ascontiguousarray(np.transpose(grad, (0, 3, 1, 2)))

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

    def prepare(self, model: keras.Model, inputs: Any) -> np.ndarray:
        """Return a float32 batch; add a batch axis to a single image; check channels."""
        from . import to_numpy  # the registry knows every framework's tensors

        array = to_numpy(inputs)
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
        return np.ascontiguousarray(array, dtype=np.float32)

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

    def describe_layers(self, model: keras.Model, batch: np.ndarray) -> list[LayerInfo]:
        """Run one forward on the first image; record every layer's output and its layout.

        Eager on TensorFlow and PyTorch, abstract (shapes only) on JAX. Layouts are
        decided by :func:`.keras_layout.decide`: shapes, then the layers' types, then a
        pass on a wider image; a tensor whose layout stays open (or that is no image
        grid, such as attention scores) is not a candidate.

        Each layer's input is described too, as ``"name:input"``, accepted by name but
        not listed among the candidates, except the feature map that feeds the head
        (the pooling or flattening layer's input) when no layer outputs it: then it is
        the last candidate, so the default. In Keras ConvNeXt that map is a raw residual
        ``add`` that no layer outputs; the last layer output there is a residual branch.
        """
        key = (tuple(batch.shape[1:]), str(batch.dtype))
        cached = _LAYER_CACHE.get(model, key)
        if cached is not None:
            return cached
        if not model.built:
            # Building runs a symbolic pass first; do it outside the recording so that
            # every layer is counted once.
            _call(model, batch[:1])
        names = {id(layer): name for name, layer in named_layers(model)}
        records = _record(model, batch[:1])
        entries = _entries(records, names)

        def wider() -> dict[str, tuple[int, ...] | None]:
            again = _entries(_record(model, keras_layout.wider_image(batch[:1])), names)
            return {entry.name: entry.shape for entry in again}

        image = (int(batch.shape[1]), int(batch.shape[2]))
        decided = keras_layout.decide(entries, image, wider)
        layouts = {entry.name: layout for entry, (layout, _) in zip(entries, decided, strict=True)}
        shown = _head_input(records, names, layouts)
        infos = [
            LayerInfo(
                entry.name,
                entry.shape,
                None if layout is None else layout.grid,
                entry.calls,
                layout=layout,
                note=note,
                hidden=entry.is_input and entry.name != shown,
            )
            for entry, (layout, note) in zip(entries, decided, strict=True)
        ]
        _LAYER_CACHE.put(model, key, infos)
        return infos

    def capture(
        self,
        model: keras.Model,
        batch: np.ndarray,
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
        step = self._step(model, batch, layers, n_sets)
        size = int(batch.shape[0])
        specs = (
            np.stack([spec.stacked() for spec in targets[:n_sets]])
            if n_sets
            else np.zeros((0, 2, size), np.int64)
        )
        result = step(batch, specs)
        logits = self.to_numpy(result["logits"]).astype(np.float32)
        check_logits_shape(logits.shape)
        resolved = [resolve_target_set(spec, logits) for spec in targets]
        missing = step.state.missing & set(layers)
        if missing:
            raise ValueError(
                f"no gradient reached the output of {sorted(missing)}: the class score does not "
                "depend on it. Choose another layer."
            )
        infos = {info.name: info for info in self.describe_layers(model, batch)} if layers else {}

        def as_map(name: str, tensor: Any) -> np.ndarray:
            return _as_map(tensor, reshape, infos[name], size)

        gradients = [
            {name: as_map(name, g) for name, g in zip(layers, grads, strict=True)}
            for grads in result["gradients"]
        ]
        head = _head(result) if with_head else None
        return Capture(
            logits=logits,
            activations={
                name: as_map(name, a)
                for name, a in zip(layers, result["activations"], strict=True)
            },
            targets=[classes for classes, _ in resolved],
            gradients=gradients,
            head=head,
            contrasts=[contrast for _, contrast in resolved],
        )

    def _step(
        self,
        model: keras.Model,
        batch: np.ndarray,
        layers: tuple[str, ...],
        n_sets: int,
    ) -> Step:
        """The cached step for these layers and number of target sets.

        Every step returns the dense head's input and kernel too (a copy of one small
        matrix), so that a call with and one without ``with_head`` share one trace: the
        Explorer's first picture asks for the head, later classes do not.
        """
        per_model = _STEP_CACHE.setdefault(model, {})
        key = (layers, n_sets)
        step = per_model.get(key)
        if step is None:
            shapes = {}
            if layers:
                infos = {info.name: info for info in self.describe_layers(model, batch)}
                shapes = {name: infos[name].shape for name in layers}
            step = _steps.STEP(model, layers, n_sets, shapes)
            per_model[key] = step
        return step


#: Relative precision of a pooled feature computed in a low-precision dtype.
_PRECISION = {"float16": 1e-2, "bfloat16": 5e-2}


def _head(result: dict[str, Any]) -> Head | None:
    """The CAM head from a step's outputs; a layer norm before the dense layer folded in.

    With ``LN(v) = gamma (v - mu) / sigma + beta`` (``mu``, ``sigma``: the mean and
    standard deviation of image ``n``'s pooled features ``v``), the logits are
    ``y_c = sum_k W_kc gamma_k (v_k - mu) / sigma + const_c``, so CAM's weights become
    ``W_kc gamma_k / sigma`` per image and the maps are centred on ``mu``: the map's
    spatial mean is still ``y_c`` minus a constant, as in the classic GAP + dense head.
    """
    if "features" not in result:
        return None
    raw = result["features"]
    features = BACKEND.to_numpy(raw)
    tolerance = _PRECISION.get(str(getattr(features, "dtype", "")), 1e-4)
    features = features.astype(np.float32)
    kernel = BACKEND.to_numpy(result["kernel"]).astype(np.float32)  # (K, C)
    if "norm_gamma" not in result:
        return Head(features, kernel.T, tolerance=tolerance)
    gamma = BACKEND.to_numpy(result["norm_gamma"]).astype(np.float64)
    epsilon = float(BACKEND.to_numpy(result["norm_epsilon"]))
    values = features.astype(np.float64)
    mean = values.mean(axis=1)
    sigma = np.sqrt(values.var(axis=1) + epsilon)
    weight = (kernel.T[None] * gamma[None, None, :]) / sigma[:, None, None]
    return Head(features, weight.astype(np.float32), centre=mean, tolerance=tolerance)


def _record(model: keras.Model, image: np.ndarray) -> list:
    """Every layer call of one forward pass on ``image`` (shapes only on JAX)."""
    records: list = []

    def record() -> None:
        records.extend(forward(model, lambda: _call(model, image)).records)

    _steps.run_for_shapes(record)
    return records


def _entries(records: list, names: dict[int, str]) -> list[keras_layout.Entry]:
    """Each layer's input (``"name:input"``) and output, first call kept, calls counted."""
    seen: dict[str, keras_layout.Entry] = {}
    for layer, args, _, output in records:
        name = names[id(layer)]
        first = args[0] if args else None
        # A merge layer (Add, Concatenate) gets its inputs as one list: its first one is
        # the source whose layout the output keeps.
        source = first[0] if isinstance(first, (list, tuple)) and first else first
        for entry in (
            keras_layout.Entry(
                name + INPUT_SUFFIX, layer, first, None, keras_layout.shape_of(first),
                is_input=True,
            ),
            keras_layout.Entry(name, layer, output, source, keras_layout.shape_of(output)),
        ):
            if entry.name in seen:
                seen[entry.name].calls += 1
            else:
                seen[entry.name] = entry
    return list(seen.values())


def _is_map(layout: Layout | None) -> bool:
    return layout is not None and layout.grid[0] > 1 and layout.grid[1] > 1


def _head_input(
    records: list, names: dict[int, str], layouts: dict[str, Layout | None]
) -> str | None:
    """The head's input, ``"name:input"``, when no layer outputs the map it receives.

    The head's first layer is the last one that takes a feature map and returns
    something that is not one (global pooling, flattening). None when that map is a
    layer's output (the usual case: that layer is then the last candidate anyway).
    """
    for index in range(len(records) - 1, -1, -1):
        layer, args, _, _ = records[index]
        name = names[id(layer)]
        if args and _is_map(layouts.get(name + INPUT_SUFFIX)) and not _is_map(layouts.get(name)):
            return None if producer(records[:index], args[0]) is not None else name + INPUT_SUFFIX
    return None


def _as_map(tensor: Any, reshape: Reshape | None, info: LayerInfo, size: int) -> np.ndarray:
    """A captured tensor as numpy ``(N, K, h, w)``: through ``reshape``, else its layout.

    ``reshape`` returns the model's own layout, ``(N, h, w, C)``. Without it, the layout
    read from the shapes and layers (:meth:`KerasBackend.describe_layers`) is used, once
    the tensor is checked to have the described shape for this batch.
    """
    if reshape is not None:
        tensor = reshape(tensor)
        if len(getattr(tensor, "shape", ())) != 4:
            raise ValueError(
                "reshape= must return a 4-D tensor (N, h, w, C) for a Keras model; it "
                f"returned shape {tuple(getattr(tensor, 'shape', ()))}."
            )
        array = np.asarray(keras.ops.convert_to_numpy(tensor)).astype(np.float32, copy=False)
        return np.ascontiguousarray(np.transpose(array, (0, 3, 1, 2)))
    array = np.asarray(keras.ops.convert_to_numpy(tensor)).astype(np.float32, copy=False)
    if info.layout is None or info.shape is None:
        raise ValueError(
            f"the output of {info.name!r} has shape {array.shape}, which is not a map in any "
            "layout the engine can decide: pass reshape= to lay it out as (N, h, w, C)."
        )
    if array.shape[0] != size or array.shape[1:] != tuple(info.shape[1:]):
        raise ValueError(
            f"the output of {info.name!r} has shape {array.shape} for {size} image(s), but "
            f"{tuple(info.shape)} for one image when its layout was read: this layer's output "
            "does not follow the batch. Pass reshape= to lay it out as (N, h, w, C)."
        )
    return to_channels_first(array, info.layout)


BACKEND = KerasBackend()
