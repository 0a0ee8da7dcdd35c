"""Pick the framework adapter from the model's type, without importing any framework.

A model can only be a ``torch.nn.Module`` if torch is already imported (the user built
the model with it), so ``sys.modules`` is checked before any isinstance test: importing
this package never imports torch or TensorFlow.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from .base import Backend, Capture, Head, LayerInfo

__all__ = [
    "Backend",
    "Capture",
    "Head",
    "LayerInfo",
    "backend_for",
    "is_keras_model",
    "is_torch_model",
]

_INSTALL_HINTS = {
    "torch": 'pip install "gradcam-widgets[torch]"',
    "keras": 'pip install "gradcam-widgets[tensorflow]"',
}


def is_torch_model(model: Any) -> bool:
    """True for a ``torch.nn.Module``; never imports torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def is_keras_model(model: Any) -> bool:
    """True for a Keras layer or model; never imports Keras."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.layers.Layer)


def backend_for(model: Any) -> Backend:
    """Return the adapter for ``model``'s framework.

    Raises:
        TypeError: the model is neither a ``torch.nn.Module`` nor a ``keras.Model``.
        ImportError: the framework's adapter cannot be imported (with an install hint).
    """
    if is_torch_model(model):
        from .torch import TorchBackend

        return TorchBackend()
    if is_keras_model(model):
        if sys.modules["keras"].backend.backend() != "tensorflow":
            raise TypeError(
                "gradcam_widgets supports Keras 3 with the TensorFlow backend; set "
                "KERAS_BACKEND=tensorflow before importing keras."
            )
        try:
            from .keras import KerasBackend
        except ImportError as error:
            raise ImportError(f"{error}. Install TensorFlow: {_INSTALL_HINTS['keras']}") from error
        return KerasBackend()
    missing = [
        f"{name} ({hint})"
        for name, hint in _INSTALL_HINTS.items()
        if importlib.util.find_spec(name) is None
    ]
    note = f" Not installed here: {', '.join(missing)}." if missing else ""
    raise TypeError(
        f"model is a {type(model).__module__}.{type(model).__name__}; gradcam_widgets "
        f"explains torch.nn.Module and keras.Model objects.{note}"
    )
