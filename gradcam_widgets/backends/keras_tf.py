"""The Keras gradient step on TensorFlow: a ``tf.function`` around a GradientTape.

The same Python function runs eagerly for the first calls (a first call costs what the
Keras example's eager tape costs) and is then traced by ``tf.function`` (see
:data:`~.keras_steps.EAGER_CALLS`): once per (model, layers, number of target sets), as
the adapter caches the step, and again only for a new input shape. Three choices keep
the one trace cheap:

- ``autograph=False``: the step has no data-dependent Python control flow, and
  AutoGraph's source conversion of every Keras ``call`` cost seconds per model;
- the tape watches only the captured feature maps (``watch_accessed_variables=False``),
  so it records the ops after the earliest captured layer, not the whole network;
- the first run builds the graph with TensorFlow's default optimisations.

Classes and contrasts are a tensor argument: a new target never retraces.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .keras_forward import dense_head, forward, score
from .keras_steps import EAGER_CALLS, StepState

#: Errors TensorFlow raises for inputs that do not fit the model.
RUN_ERRORS: tuple[type[BaseException], ...] = (tf.errors.InvalidArgumentError,)


def run_for_shapes(function: Any) -> None:
    """Run ``function`` for the shapes it sees: eagerly (cheaper than a TensorFlow trace)."""
    function()


def input_gradient(function: Callable[[Any], Any], batch: np.ndarray) -> Any:
    """``d function(x) / d x`` at ``x = batch``, ``function`` returning a scalar: a tape."""
    x = tf.convert_to_tensor(batch)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        value = function(x)
    return tape.gradient(value, x)


class TensorFlowStep:
    """A traced forward + backward pass (see :class:`~.keras_steps.Step`)."""

    def __init__(
        self,
        model: keras.Model,
        names: tuple[str, ...],
        n_sets: int,
        shapes: dict[str, tuple[int, ...]],
    ) -> None:
        self.state = StepState()
        state = self.state

        def step(batch: tf.Tensor, specs: tf.Tensor) -> dict[str, Any]:
            if tf.executing_eagerly():
                state.eager_runs += 1
            else:
                state.traces += 1
            with tf.GradientTape(
                persistent=n_sets > 1, watch_accessed_variables=False
            ) as tape:

                def mark(name: str, tensor: Any) -> Any:
                    # A fresh tensor, so that the gradient is the one through this use
                    # of it (for a layer's input: through that layer only), as in JAX
                    # and PyTorch.
                    tensor = tf.identity(tensor)
                    tape.watch(tensor)
                    return tensor

                seen = forward(
                    model,
                    lambda: model(batch, training=False),
                    names,
                    mark if n_sets else None,
                )
                logits = tf.cast(seen.logits, tf.float32)
                scores = [score(logits, specs[i]) for i in range(n_sets)]
            activations = seen.maps(names)
            gradients = []
            for value in scores:
                grads = tape.gradient(value, activations)
                state.missing.update(n for n, g in zip(names, grads, strict=True) if g is None)
                gradients.append(
                    [tf.zeros_like(a) if g is None else g for a, g in zip(activations, grads)]
                )
            out = {"logits": logits, "activations": activations, "gradients": gradients}
            out.update({k: tf.identity(v) for k, v in dense_head(seen.records, seen.head).items()})
            return out

        self._eager = step
        self._compiled = tf.function(step, reduce_retracing=True, autograph=False)
        self._calls = 0

    def __call__(self, batch: np.ndarray, specs: np.ndarray) -> dict[str, Any]:
        """Run the pass: eagerly for the first calls, then traced (see ``EAGER_CALLS``)."""
        self._calls += 1
        args = (tf.convert_to_tensor(batch), tf.convert_to_tensor(specs, tf.int64))
        if self._calls <= EAGER_CALLS:
            return self._eager(*args)
        with _quiet_retracing():
            return self._compiled(*args)


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


STEP = TensorFlowStep
