"""The Keras gradient step on PyTorch: eager autograd with zero "probes".

Keras on PyTorch runs eagerly, as PyTorch does, so there is nothing to compile: each
call runs the model once with a zero probe ``P`` added to every captured feature map
(``A + P``, ``P = 0``, ``requires_grad``) and asks ``torch.autograd.grad`` for
``d score / d P = d score / d A``, one call per target set on the same graph. The
probes make the gradients exist even for a frozen model (no parameter requires a
gradient), inside ``torch.no_grad()``, and for a layer's input; parameters' ``.grad``
are never written (``autograd.grad`` returns the gradients instead of accumulating them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import torch

from .keras_forward import dense_head, forward, score
from .keras_steps import StepState

#: Errors PyTorch raises for inputs that do not fit the model (shape mismatches).
RUN_ERRORS: tuple[type[BaseException], ...] = (RuntimeError,)


def run_for_shapes(function: Any) -> None:
    """Run ``function`` for the shapes it sees: eagerly, without recording gradients."""
    with torch.no_grad():
        function()


def input_gradient(function: Callable[[Any], Any], batch: np.ndarray) -> Any:
    """``d function(x) / d x`` at ``x = batch``, ``function`` returning a scalar: autograd.

    ``autograd.grad`` returns the gradient without writing any parameter's ``.grad``.
    """
    x = keras.ops.convert_to_tensor(batch).detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(function(x), x)
    return grad


class TorchStep:
    """An eager forward + backward pass (see :class:`~.keras_steps.Step`)."""

    def __init__(
        self,
        model: keras.Model,
        names: tuple[str, ...],
        n_sets: int,
        shapes: dict[str, tuple[int, ...]],
    ) -> None:
        self.state = StepState()
        self._model = model
        self._names = names
        self._n_sets = n_sets
        self._shapes = shapes

    def __call__(self, batch: np.ndarray, specs: np.ndarray) -> dict[str, Any]:
        """Run the model and autograd once."""
        self.state.traces += 1
        model, names, n_sets = self._model, self._names, self._n_sets
        x = keras.ops.convert_to_tensor(batch)
        targets = torch.as_tensor(specs, device=x.device)
        size = x.shape[0]
        with torch.enable_grad() if n_sets else torch.no_grad():
            probes = {
                name: torch.zeros(
                    (size, *self._shapes[name][1:]), device=x.device, requires_grad=True
                )
                for name in names
            }

            def mark(name: str, tensor: Any) -> Any:
                return tensor + probes[name].to(tensor.dtype)

            seen = forward(
                model, lambda: model(x, training=False), names, mark if n_sets else None
            )
            logits = seen.logits.float()
            scores = [score(logits, targets[i]) for i in range(n_sets)]
            gradients = []
            for i, value in enumerate(scores):
                grads = torch.autograd.grad(
                    value,
                    [probes[n] for n in names],
                    retain_graph=i < n_sets - 1,
                    allow_unused=True,
                )
                self.state.missing.update(
                    n for n, g in zip(names, grads, strict=True) if g is None
                )
                gradients.append(
                    [torch.zeros_like(probes[n]) if g is None else g for n, g in zip(names, grads)]
                )
        out = {
            "logits": logits.detach(),
            "activations": [a.detach() for a in seen.maps(names)],
            "gradients": gradients,
        }
        out.update({k: v.detach() for k, v in dense_head(seen.records, seen.head).items()})
        return out


STEP = TorchStep
