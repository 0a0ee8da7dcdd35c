"""Keras latency on ``keras.applications`` models: the first call, the warm call, retraces.

For MobileNetV2, DenseNet121 and ResNet50 (``weights=None``: nothing downloads), one image
at 224 px, the last candidate layer, on the current ``KERAS_BACKEND``:

- **first call / eager**: the engine's first call on a fresh model (trace and compile
  included) against the Keras example's recipe on its own fresh copy of the model (a
  sub-model and an eager ``GradientTape``, first call). Goal: <= 2.
- **warm / eager** and **warm / compiled**: the engine's warm call against the eager tape's
  warm call, and against calling the engine's compiled step directly (the engine's own
  overhead: argument checks, numpy conversion, the method).
- **Explorer**: 8 layers at once for 5 classes in turn; one trace in all (TensorFlow
  runs the first two calls eagerly, then compiles once; JAX compiles on the first).

Run: ``.venv/bin/python benchmarks/zoo_keras.py [MobileNetV2 DenseNet121 ResNet50]``, with
``KERAS_BACKEND=jax`` or ``torch`` for the other backends (the eager reference is then the
backend's own: ``jax.grad``-free eager Keras calls are not comparable, so only TensorFlow
prints the eager ratios).

This file stands in for a Keras section of ``benchmarks/zoo.py``, which did not exist
on main when it was written.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import measure

import gradcam_widgets as gw
from gradcam_widgets.backends import keras as adapter

MODELS = ["MobileNetV2", "DenseNet121", "ResNet50"]
SIZE = 224


def _build(name: str) -> keras.Model:
    return getattr(keras.applications, name)(weights=None, classifier_activation=None)


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _eager_tape(model: keras.Model, layer: str, x: np.ndarray, target: int):
    """The Keras example's recipe (TensorFlow only): a sub-model and an eager tape."""
    import tensorflow as tf

    sub = keras.Model(model.inputs[0], [model.get_layer(layer).output, model.output])

    def run():
        with tf.GradientTape() as tape:
            maps, scores = sub(x)
            picked = scores[:, target]
        grads = tape.gradient(picked, maps)
        weights = tf.reduce_mean(grads, axis=(1, 2))
        return tf.nn.relu(tf.einsum("nk,nhwk->nhw", weights, maps)).numpy()

    return run


def _traces(model: keras.Model) -> int:
    return sum(step.state.traces for step in adapter.steps_of(model).values())


def bench(name: str) -> None:
    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(1, SIZE, SIZE, 3)).astype(np.float32)
    ours_model, ref_model = _build(name), _build(name)
    ref_model.set_weights(ours_model.get_weights())
    candidates = gw.candidate_layers(ours_model)
    gw.candidate_layers(ref_model)  # the same shape probe for both, outside the timing
    layer = candidates[-1]
    print(f"\n== {name} ({backend}), {len(candidates)} candidate layers, layer {layer!r}")

    eager = _eager_tape(ref_model, layer, x, 1) if backend == "tensorflow" else None
    eager_first = _timed(eager) if eager else None
    ours_first = _timed(lambda: gw.gradcam(ours_model, x, 1, layer))
    print(f"  first call: engine {ours_first:6.2f} s", end="")
    if eager_first is not None:
        ratio = ours_first / eager_first
        verdict = "OK" if ratio <= 2 else "MISSED"
        print(f", eager tape {eager_first:6.2f} s, ratio {ratio:5.2f} (<= 2) {verdict}")
    else:
        print()
    if eager:
        reference = eager()
        np.testing.assert_allclose(
            gw.gradcam(ours_model, x, 1, layer), reference, rtol=1e-3, atol=1e-5 * reference.max()
        )

    step = adapter.steps_of(ours_model)[((layer,), 1)]
    batch = x
    specs = np.array([[[1], [-1]]], dtype=np.int64)
    contenders = {
        "engine, warm": lambda: gw.gradcam(ours_model, x, 1, layer),
        # Converted to numpy, which also waits for JAX's asynchronous dispatch.
        "compiled step alone": lambda: keras.tree.map_structure(
            keras.ops.convert_to_numpy, step(batch, specs)
        ),
    }
    if eager:
        contenders["eager tape, warm"] = eager
    medians = measure(contenders, rounds=5, warmup=1)
    for key, seconds in medians.items():
        print(f"  {key:<24} {seconds * 1000:8.1f} ms")
    if eager:
        ratio = medians["engine, warm"] / medians["eager tape, warm"]
        print(f"  warm / eager tape        {ratio:6.2f}")
    print(
        f"  warm / compiled step     "
        f"{medians['engine, warm'] / medians['compiled step alone']:6.2f}"
    )

    # The Explorer asks for all its slider layers at once, then for other classes.
    slider = candidates[-8:]
    before = _traces(ours_model)
    times = []
    for number, target in enumerate([None, 3, 7, 1, 5]):
        start = time.perf_counter()
        gw.explain(ours_model, x, [target], slider, with_head=number == 0)
        times.append(time.perf_counter() - start)
    shown = ", ".join(f"{t:.2f}" for t in times)
    traced = "nothing is traced (eager)" if backend == "torch" else (
        f"{_traces(ours_model) - before} trace(s) in all (goal: at most 1)"
    )
    print(f"  Explorer-like, 8 layers, 5 classes: {shown} s; {traced}")


def main() -> None:
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(2)
    for name in sys.argv[1:] or MODELS:
        bench(name)


if __name__ == "__main__":
    main()
