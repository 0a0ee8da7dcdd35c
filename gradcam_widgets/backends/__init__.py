"""Pick the framework adapter for a model from a small registry, importing no framework.

A model can only be a ``torch.nn.Module`` if torch is already imported (the user built
the model with it), so each entry looks in ``sys.modules`` before any isinstance test:
importing this package never imports torch or TensorFlow.

Order matters: Keras 3 running on its PyTorch backend makes every Keras layer a
``torch.nn.Module`` too, so Keras is recognised first.

Everything outside ``backends/`` asks this module, never a framework: which adapter
serves a model (:func:`backend_for`), whether an object is a framework tensor and its
numpy value (:func:`to_numpy`), and :func:`clear_caches`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Backend, Capture, Head, LayerCache, LayerInfo, TargetSet

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendEntry",
    "Capture",
    "Head",
    "LayerInfo",
    "TargetSet",
    "backend_for",
    "clear_caches",
    "is_model",
    "is_tensor",
    "to_numpy",
]


@dataclass(frozen=True)
class BackendEntry:
    """One framework the engine can explain.

    Attributes:
        name: the framework's name.
        is_model: True for a model of this framework; must not import the framework.
        is_tensor: True for a tensor of this framework; must not import the framework.
        module: the adapter's module (imported on first use).
        install_hint: how to install the framework.
    """

    name: str
    is_model: Callable[[Any], bool]
    is_tensor: Callable[[Any], bool]
    module: str
    install_hint: str

    def load(self) -> Backend:
        """Import the adapter and return an instance of it."""
        try:
            module = importlib.import_module(self.module, __name__)
        except ImportError as error:
            raise ImportError(f"{error}. Install it: {self.install_hint}") from error
        return module.BACKEND


def _keras_model(obj: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.layers.Layer)


def _keras_tensor(obj: Any) -> bool:
    # Keras tensors are the backend's own tensors (tf, jax or torch): recognised below.
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Variable)


def _torch_model(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _tf_tensor(obj: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(obj, (tf.Tensor, tf.Variable))


def _jax_tensor(obj: Any) -> bool:
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(obj, jax.Array)


def _never(obj: Any) -> bool:
    return False


#: The frameworks, in the order they are tried (Keras first: see the module docstring).
BACKENDS: list[BackendEntry] = [
    BackendEntry(
        "keras", _keras_model, _keras_tensor, ".keras", 'pip install "gradcam-widgets[tensorflow]"'
    ),
    BackendEntry(
        "torch", _torch_model, _torch_tensor, ".torch", 'pip install "gradcam-widgets[torch]"'
    ),
    # Tensor-only entries: arrays a user may pass as inputs or targets.
    BackendEntry("tensorflow", _never, _tf_tensor, ".keras", "pip install tensorflow-cpu"),
    BackendEntry("jax", _never, _jax_tensor, ".keras", "pip install jax"),
]


def _entry_for(model: Any) -> BackendEntry | None:
    return next((entry for entry in BACKENDS if entry.is_model(model)), None)


def is_model(obj: Any) -> bool:
    """True for a model (or layer) of a framework the engine explains."""
    return _entry_for(obj) is not None


def is_tensor(obj: Any) -> bool:
    """True for a tensor of any registered framework (not for numpy arrays)."""
    return any(entry.is_tensor(obj) for entry in BACKENDS)


def to_numpy(obj: Any) -> np.ndarray:
    """``obj`` as a numpy array: framework tensors are detached and copied to the CPU.

    bfloat16 (which numpy lacks) becomes float32. Anything else goes to ``np.asarray``.
    """
    torch = sys.modules.get("torch")
    if torch is not None and _torch_tensor(obj):
        tensor = obj.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.numpy()
    if _tf_tensor(obj) or _jax_tensor(obj) or _keras_tensor(obj):
        keras = sys.modules.get("keras")
        if keras is not None:
            return np.asarray(keras.ops.convert_to_numpy(obj))
        return np.asarray(obj)
    return np.asarray(obj)


def backend_for(model: Any) -> Backend:
    """Return the adapter for ``model``'s framework.

    Raises:
        TypeError: the model is neither a ``torch.nn.Module`` nor a ``keras.Model``.
        ImportError: the framework's adapter cannot be imported (with an install hint).
    """
    entry = _entry_for(model)
    if entry is not None:
        return entry.load()
    missing = [
        f"{entry.name} ({entry.install_hint})"
        for entry in BACKENDS[:2]
        if importlib.util.find_spec(entry.name) is None
    ]
    note = f" Not installed here: {', '.join(missing)}." if missing else ""
    raise TypeError(
        f"model is a {type(model).__module__}.{type(model).__name__}; gradcam_widgets "
        f"explains torch.nn.Module and keras.Model objects.{note}"
    )


def clear_caches(model: Any | None = None) -> None:
    """Forget what the backends cached about ``model`` (or every model).

    Call it after changing a model's architecture in place (replacing a layer): the
    engine describes each model once per input shape and reuses that description.
    """
    LayerCache.clear_all(model)
    for entry in BACKENDS:
        module = sys.modules.get(f"{__name__}{entry.module}")
        if module is not None and hasattr(module, "forget_model"):
            module.forget_model(model)
