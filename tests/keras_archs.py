"""Small Keras models with layouts other than a CNN's channels-last maps.

``tiny_vit``: a vision transformer in miniature, 32x32 images cut into 8x8 patches
(a 4x4 grid), a class token, a ``MultiHeadAttention`` block whose attention scores
``(N, heads, T, T)`` feed another layer, and a custom layer that emits such scores
itself. Every tensor between the patch embedding and the head is a token sequence
``(N, T, C)`` except the scores, which are no image grid.

``ambiguous_net``: a convolution whose ``(N, 8, 8, 8)`` output reads as channels-first
or channels-last, followed by a custom layer with the same shape and nothing that says
which: only a second pass on a wider image can settle it.
"""

from __future__ import annotations

import keras
from keras import layers, ops

SIZE, PATCH, DIM, HEADS, CLASSES = 32, 8, 16, 2, 5
GRID = SIZE // PATCH


class ClassToken(layers.Layer):
    """Prepends a learned class token: ``(N, T, C) -> (N, 1 + T, C)``."""

    def build(self, shape):
        self.token = self.add_weight(shape=(1, 1, shape[-1]), initializer="random_normal")

    def call(self, x):
        token = ops.broadcast_to(self.token, (ops.shape(x)[0], 1, x.shape[-1]))
        return ops.concatenate([token, x], axis=1)


def _heads(x):
    return ops.transpose(ops.reshape(x, (-1, x.shape[1], HEADS, x.shape[2] // HEADS)), (0, 2, 1, 3))


class AttentionScores(layers.Layer):
    """Parameter-free attention scores ``softmax(q q^T)``: ``(N, T, C) -> (N, heads, T, T)``."""

    def call(self, x):
        q = _heads(x)
        return ops.softmax(ops.matmul(q, ops.transpose(q, (0, 1, 3, 2))) / 2.0, axis=-1)


class Attend(layers.Layer):
    """``x + scores @ x`` per head: mixes the tokens with given scores."""

    def call(self, x, scores):
        mixed = ops.matmul(scores, _heads(x))  # (N, heads, T, C / heads)
        return x + ops.reshape(ops.transpose(mixed, (0, 2, 1, 3)), (-1, x.shape[1], x.shape[2]))


class TakeClassToken(layers.Layer):
    """``(N, T, C) -> (N, C)``: the class token, which the head reads."""

    def call(self, x):
        return x[:, 0]


TOKEN_LAYERS = (
    "tokens", "cls", "norm1", "add1", "attend1", "attend2", "norm2", "mlp", "add2"
)
SCORE_LAYERS = ("scores",)


def tiny_vit(seed: int = 0) -> keras.Model:
    """The tiny ViT; deterministic for one Keras backend and seed."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(DIM, PATCH, strides=PATCH, name="patch")(image)
    x = layers.Reshape((GRID * GRID, DIM), name="tokens")(x)
    x = ClassToken(name="cls")(x)
    y = layers.LayerNormalization(name="norm1")(x)
    y, mha_scores = layers.MultiHeadAttention(HEADS, DIM // HEADS, name="mha")(
        y, y, return_attention_scores=True
    )
    x = layers.Add(name="add1")([x, y])
    x = Attend(name="attend1")(x, mha_scores)
    x = Attend(name="attend2")(x, AttentionScores(name="scores")(x))
    y = layers.LayerNormalization(name="norm2")(x)
    y = layers.Dense(DIM, activation="gelu", name="mlp")(y)
    x = layers.Add(name="add2")([x, y])
    x = TakeClassToken(name="take_cls")(x)
    return keras.Model(image, layers.Dense(CLASSES, name="head")(x))


class Scale(layers.Layer):
    """Multiplies by a learned scalar: keeps the shape, says nothing about the layout."""

    def build(self, shape):
        self.scale = self.add_weight(shape=(), initializer="ones")

    def call(self, x):
        return x * self.scale


class GridMean(layers.Layer):
    """``(N, h, w, C) -> (N, C)``, written with ``ops``: no ``data_format`` to read."""

    def call(self, x):
        return ops.mean(x, axis=(1, 2))


def ambiguous_net(*, any_size: bool, seed: int = 0) -> keras.Model:
    """Conv (N, 8, 8, 8) -> Scale -> mean -> dense, for 16x16 inputs (or any size)."""
    keras.utils.set_random_seed(seed)
    side = None if any_size else 16
    image = keras.Input((side, side, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="conv")(image)
    x = Scale(name="scale")(x)
    x = GridMean(name="mean")(x)
    return keras.Model(image, layers.Dense(3, name="head")(x))
