"""Run in a subprocess with ``KERAS_BACKEND`` set: the engine's results on that backend.

Usage: ``python tests/keras_backend_worker.py WEIGHTS OUT.npz`` (the parent test sets
``KERAS_BACKEND`` and ``PYTHONPATH``). ``WEIGHTS`` is a ``.weights.h5`` file saved from
:func:`build_model`; everything the engine returns is written to ``OUT.npz``, keyed as
``"{method}/{evidence}/{set}/{layer}"`` plus ``logits``, ``cam``, ``traces`` and
``missing_error``; and, from the tiny ViT of ``keras_archs`` (weights ``vit.weights.h5``
beside ``WEIGHTS``), ``vit/candidates``, ``vit/default``, ``vit/{layer}`` and
``vit/scores_error``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
from keras import layers

LAYERS = ["conv1", "bn", "relu2", "gap:input"]
TARGETS = [[0, 2, 4], None]
CONTRASTS = [None, 3]
METHODS = ["gradcam", "gradcam++", "hirescam"]
VIT_LAYERS = ["tokens", "cls", "attend1"]
VIT_TARGETS = [0, 3, 4]


def inputs() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(3, 10, 10, 3)).astype(np.float32)


def build_model() -> keras.Model:
    """Convolutions, BatchNorm, a nested block, a softmax head: every shared code path."""
    keras.utils.set_random_seed(0)
    block = keras.Sequential(
        [keras.Input((10, 10, 4)), layers.Conv2D(6, 3, padding="same", name="inner")],
        name="block",
    )
    x_in = keras.Input((10, 10, 3))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(x_in)
    h = block(h)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Conv2D(8, 3, name="conv2")(h)
    h = layers.ReLU(name="relu2")(h)
    h = h + 0.5  # a raw op: the pooled map is no layer's output, only "gap:input"
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    out = layers.Dense(5, activation="softmax", name="dense")(h)
    return keras.Model(x_in, out)


class TwoBranches(keras.Model):
    """A layer whose output the score ignores."""

    def __init__(self):
        super().__init__()
        self.used = layers.Conv2D(2, 3, name="used")
        self.unused = layers.Conv2D(2, 3, name="unused")
        self.head = layers.Dense(3, name="head")

    def call(self, x):
        self.unused(x)
        return self.head(keras.ops.mean(self.used(x), axis=(1, 2)))


def vit_inputs() -> np.ndarray:
    return np.random.default_rng(8).normal(size=(3, 32, 32, 3)).astype(np.float32)


def vit_weights(weights: str) -> Path:
    return Path(weights).with_name("vit.weights.h5")


def _vit_results(weights: str) -> dict[str, np.ndarray]:
    """Token layers as maps, the attention scores refused: the same on every backend."""
    import keras_archs

    import gradcam_widgets as gw

    model = keras_archs.tiny_vit()
    model.load_weights(vit_weights(weights))
    x = vit_inputs()
    arrays = {
        "vit/candidates": np.array(gw.candidate_layers(model)),
        "vit/default": np.array(gw.engine.default_layer(model, x)),
    }
    for name, heat in gw.gradcam(model, x, VIT_TARGETS, VIT_LAYERS).items():
        arrays[f"vit/{name}"] = heat
    try:
        gw.gradcam(model, x, 0, "scores")
        arrays["vit/scores_error"] = np.array("")
    except ValueError as error:
        arrays["vit/scores_error"] = np.array(str(error))
    return arrays


def chain() -> keras.Model:
    """Convolutions and a pooling with no activation: every field is filled exactly."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((16, 16, 1)),
            layers.Conv2D(2, 3, name="c1"),
            layers.AveragePooling2D(2, name="p1"),
            layers.Conv2D(2, 3, dilation_rate=2, name="c2"),
            layers.Flatten(),
            layers.Dense(3),
        ]
    )


def _receptive_fields() -> dict[str, np.ndarray]:
    """Fields by the rule and measured with the backend's own gradients."""
    import keras_archs

    from gradcam_widgets import receptive_field as rf

    model = chain()
    x = np.random.default_rng(9).normal(size=(4, 16, 16, 1)).astype(np.float32)
    fields = rf.receptive_fields(model)
    vit = keras_archs.tiny_vit()
    vit_x = vit_inputs()
    return {
        "rf/names": np.array(list(fields)),
        "rf/sizes": np.array([f.size for f in fields.values()]),
        "rf/measured": np.array([rf.measured(model, x, name) for name in fields]),
        "rf/vit": np.array([rf.measured(vit, vit_x, name) for name in ("norm1", "attend1")]),
    }


def main(weights: str, out: str) -> None:
    import gradcam_widgets as gw
    from gradcam_widgets.backends import keras as adapter

    model = build_model()
    model.load_weights(weights)
    x = inputs()
    result = gw.explain(model, x, TARGETS, LAYERS, contrasts=CONTRASTS)
    arrays = {"logits": result.logits, "cam": gw.cam(model, x, [1, 2, 3], "gap:input")}
    for method in METHODS:
        for evidence in ("for", "against"):
            for index in range(len(TARGETS)):
                for name, heat in result.maps(method, evidence, index).items():
                    arrays[f"{method}/{evidence}/{index}/{name}"] = heat
    # Other classes and contrasts reuse the compiled step: it is traced once.
    for target in (1, [4, 3, 2], None):
        gw.explain(model, x, [target, 0], LAYERS, contrasts=[None, 2])
    traces = [s.state.traces for key, s in adapter.steps_of(model).items() if key[1] == 2]
    arrays["traces"] = np.array(traces)
    two = TwoBranches()
    two(x)
    try:
        gw.gradcam(two, x, layer="unused")
        arrays["missing_error"] = np.array("")
    except ValueError as error:
        arrays["missing_error"] = np.array(str(error))
    arrays["used"] = gw.gradcam(two, x, layer="used")
    arrays.update(_vit_results(weights))
    arrays.update(_receptive_fields())
    np.savez(out, backend=keras.backend.backend(), **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
