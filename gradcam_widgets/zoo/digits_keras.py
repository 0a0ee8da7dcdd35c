"""The MNIST networks of :mod:`.digits` in Keras, and their training loop.

Each builder reads :data:`.digits.ARCHITECTURES`. Initial weights come from Keras
initialisers given their own seeds (drawn from ``random.Random(seed)``, the way Keras
draws them from Python's global generator after ``keras.utils.set_random_seed(seed)``),
so that a seed always gives the same network and no global random state is touched.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from .digits import ARCHITECTURES, SIZE, to_keras_input

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["keras_gap_net", "keras_lecture_cnn", "train_keras"]


def _build(architecture: str, seed: int) -> keras.Model:
    import keras

    seeds = random.Random(seed)

    def kernel() -> keras.initializers.Initializer:
        # Keras's default kernel initialiser, seeded like its default seed is drawn.
        return keras.initializers.GlorotUniform(seed=seeds.randint(1, int(1e9)))

    layers: list[keras.layers.Layer] = [keras.Input((SIZE, SIZE, 1), name="digit")]
    for kind, name, size in ARCHITECTURES[architecture]:
        if kind == "conv":
            layer = keras.layers.Conv2D(
                size, 3, padding="same", activation="relu", kernel_initializer=kernel(), name=name
            )
        elif kind == "pool":
            layer = keras.layers.MaxPooling2D(2, name=name)
        elif kind == "gap":
            layer = keras.layers.GlobalAveragePooling2D(name=name)
        elif kind == "flatten":
            layer = keras.layers.Flatten(name=name)
        elif kind == "dense":
            layer = keras.layers.Dense(
                size, activation="relu", kernel_initializer=kernel(), name=name
            )
        else:  # scores
            layer = keras.layers.Dense(
                size, activation="softmax", kernel_initializer=kernel(), name=name
            )
        layers.append(layer)
    return keras.Sequential(layers, name=architecture)


def keras_gap_net(seed: int = 0) -> keras.Model:
    """The GAP network for CAM, in Keras: its scores are ``Dense(GAP(conv3))``.

    ``conv1(16) - pool1 - conv2(32) - pool2 - conv3(64) - gap - scores(10, softmax)``,
    3x3 convolutions with ``padding="same"`` and ReLU; ``conv3`` is 7x7x64.

    Args:
        seed: seeds the initial weights (seeded initialisers; no global state).

    Returns:
        an uncompiled ``keras.Sequential``; train it with :func:`train_keras`.
    """
    return _build("gap_net", seed)


def keras_lecture_cnn(seed: int = 0) -> keras.Model:
    """The lecture's MNIST CNN in Keras, with a Flatten + Dense head (130,890 parameters).

    ``conv1(32) - pool1 - conv2(64) - pool2 - conv3(64) - pool3 - flatten - dense(128,
    ReLU) - scores(10, softmax)``, 3x3 convolutions with ``padding="same"`` and ReLU.

    Args:
        seed: seeds the initial weights (seeded initialisers; no global state).

    Returns:
        an uncompiled ``keras.Sequential``; train it with :func:`train_keras`.
    """
    return _build("lecture_cnn", seed)


def train_keras(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
) -> dict[str, list[float]]:
    """Train a Keras digit classifier with Adam and cross-entropy, silently.

    It runs ``model.compile(optimizer=Adam(learning_rate), loss=
    "sparse_categorical_crossentropy", metrics=["accuracy"])``, then one ``model.fit(...,
    shuffle=False, verbose=0)`` per epoch on the data in an order drawn from
    ``numpy.random.default_rng(seed)``: the seed fixes the batches without touching any
    global random state. For runs that repeat bit for bit, also call
    ``tf.config.experimental.enable_op_determinism()`` once before training.

    Args:
        model: a model ending in a softmax, such as :func:`keras_gap_net` builds.
        images: uint8 ``(N, 28, 28)`` digits, or a prepared ``(N, 28, 28, 1)`` batch.
        labels: int ``(N,)`` digits 0-9.
        epochs: passes over the data.
        seed: seeds the order of the images in each epoch.
        batch_size: images per step.
        learning_rate: Adam's step size.

    Returns:
        the training history: ``{"loss": [...], "accuracy": [...]}``, one value per epoch.
    """
    import keras

    inputs = np.asarray(images if np.asarray(images).ndim == 4 else to_keras_input(images))
    inputs = inputs.astype(np.float32, copy=False)
    targets = np.asarray(labels, dtype=np.int64)
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} images but {len(targets)} labels.")
    rng = np.random.default_rng(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history: dict[str, list[float]] = {}
    for _ in range(epochs):
        order = rng.permutation(len(inputs))
        epoch = model.fit(
            inputs[order], targets[order], batch_size=batch_size, shuffle=False, verbose=0
        )
        for key, values in epoch.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    return history
