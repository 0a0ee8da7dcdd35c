"""The Keras gradient step on JAX: ``jax.jit`` of a pure function with "probes".

JAX differentiates functions, not tensors, so a zero *probe* is added to each captured
feature map, ``A + P`` with ``P = 0``: the activation is unchanged and
``d score / d P = d score / d A``. The model runs in a ``keras.StatelessScope`` (as
``model.stateless_call`` does) with its variables as arguments, so the function is pure
(no variable is read as a constant, and new weights are used without recompiling).
``jax.vjp`` then gives one gradient per target set from one forward pass.

Compiled once per (model, layers, number of target sets) by the adapter and per input
shape here, as ``tf.function`` does on TensorFlow. Classes and contrasts are an argument:
a new target never recompiles.

A feature map the score does not depend on gets an all-zero gradient from ``jax.vjp``;
the step finds those in the traced program (the gradient does not depend on the target
classes), so that the adapter refuses them as on the other backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
from jax.extend.core import Literal

from .keras_forward import dense_head, forward, score
from .keras_steps import StepState

#: Errors JAX raises for inputs that do not fit the model (shape mismatches in ops).
RUN_ERRORS: tuple[type[BaseException], ...] = (TypeError,)


def _depends_on_input(closed: Any, input_index: int) -> list[bool]:
    """For each output of a traced program: does it depend on input ``input_index``?

    One pass over the equations in order: an equation with any dependent input makes
    all its outputs dependent (conservative for equations holding a sub-program).
    """
    jaxpr = closed.jaxpr
    source = jaxpr.invars[input_index]
    # Forward pass: which variables are computed from the source.
    tainted = {source}
    for eqn in jaxpr.eqns:
        if any(not isinstance(v, Literal) and v in tainted for v in eqn.invars):
            tainted.update(eqn.outvars)
    return [not isinstance(v, Literal) and v in tainted for v in jaxpr.outvars]


def run_for_shapes(function: Any) -> None:
    """Run ``function`` abstractly (``jax.eval_shape``): shapes only, nothing computed.

    Eager JAX compiles every operation the first time it sees it, which made one eager
    pass over a ``keras.applications`` model take tens of seconds; the layer description
    needs only the shapes and which tensor feeds which layer.
    """
    jax.eval_shape(lambda: (function(), 0)[1])


def input_gradient(function: Callable[[Any], Any], batch: np.ndarray) -> Any:
    """``d function(x) / d x`` at ``x = batch``, ``function`` returning a scalar: ``jax.grad``.

    The model's variables are read inside the trace as constants: nothing is updated.
    """
    return jax.grad(function)(jnp.asarray(batch))


class JaxStep:
    """A jit-compiled forward + backward pass (see :class:`~.keras_steps.Step`)."""

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
        state = self.state

        def run(trainable: list, non_trainable: list, batch: Any, specs: Any) -> tuple:
            state.traces += 1
            size = batch.shape[0]
            mapping = [
                *zip(model.trainable_variables, trainable, strict=True),
                *zip(model.non_trainable_variables, non_trainable, strict=True),
            ]

            def scores_of(probes: dict[str, Any]) -> tuple[Any, tuple]:
                def mark(name: str, tensor: Any) -> Any:
                    return tensor + probes[name].astype(tensor.dtype)

                def run_model() -> Any:
                    # stateless_call's scope, with __call__ (which drops ``training``
                    # for a subclassed call() that does not take it).
                    with keras.StatelessScope(state_mapping=mapping):
                        return model(batch, training=False)

                seen = forward(model, run_model, names, mark)
                logits = seen.logits.astype(jnp.float32)
                values = jnp.stack([score(logits, specs[i]) for i in range(n_sets)] or [0.0])
                head = dense_head(seen.records, seen.head)
                aux = (logits, tuple(seen.maps(names)), head)
                return values, aux

            probes = {
                name: jnp.zeros((size, *shapes[name][1:]), jnp.float32) for name in names
            }
            if n_sets:
                _, pullback, aux = jax.vjp(scores_of, probes, has_aux=True)
                eye = jnp.eye(n_sets, dtype=jnp.float32)
                grads = tuple(
                    tuple(pullback(eye[i])[0][n] for n in names) for i in range(n_sets)
                )
            else:
                _, aux = scores_of(probes)
                grads = ()
            logits, activations, head = aux
            return logits, activations, grads, head

        self._jitted = jax.jit(run)
        # (input shape, dtype) -> compiled program
        self._compiled: dict[tuple, Any] = {}

    def _variables(self) -> tuple[list, list]:
        model = self._model
        return (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )

    def __call__(self, batch: np.ndarray, specs: np.ndarray) -> dict[str, Any]:
        """Run the compiled pass (tracing and compiling it first for a new shape)."""
        args = (*self._variables(), jnp.asarray(batch), jnp.asarray(specs, jnp.int32))
        key = (batch.shape, str(batch.dtype), specs.shape)
        compiled = self._compiled.get(key)
        if compiled is None:
            traced = self._jitted.trace(*args)
            if self._n_sets:
                self._find_missing(traced.jaxpr)
            compiled = traced.lower().compile()
            self._compiled[key] = compiled
        logits, activations, grads, head = compiled(*args)
        out = {
            "logits": logits,
            "activations": list(activations),
            "gradients": [list(g) for g in grads],
        }
        out.update(head)
        return out

    def _find_missing(self, closed: Any) -> None:
        """Mark the feature maps whose gradient does not depend on the target classes."""
        n_flat_in = len(closed.jaxpr.invars)
        depends = _depends_on_input(closed, n_flat_in - 1)  # specs is the last argument
        n_names = len(self._names)
        start = 1 + n_names  # logits, activations..., then the gradients
        for i in range(self._n_sets):
            row = depends[start + i * n_names : start + (i + 1) * n_names]
            self.state.missing.update(n for n, d in zip(self._names, row, strict=True) if not d)


STEP = JaxStep
