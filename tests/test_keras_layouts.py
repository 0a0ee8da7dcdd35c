"""Keras layouts: token sequences and attention scores are read, not assumed channels-last.

A map is exact or refused on Keras too: a tiny ViT's token layers give the map of a hand
reshape and an independent sub-model + GradientTape computation, its attention scores
``(N, heads, T, T)`` are no candidate and naming them is refused, and a shape that reads
two ways is settled by a pass on a wider image or refused naming ``reshape=``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import keras_archs as ka  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.backends import backend_for  # noqa: E402
from gradcam_widgets.backends.layout import Layout  # noqa: E402


@pytest.fixture(scope="module")
def vit():
    model = ka.tiny_vit()
    x = np.random.default_rng(3).normal(size=(3, ka.SIZE, ka.SIZE, 3)).astype(np.float32)
    return model, x


def _infos(model, x):
    backend = backend_for(model)
    return {info.name: info for info in backend.describe_layers(model, backend.prepare(model, x))}


def _hand_gradcam(model, x, names, classes):
    """Sub-model + GradientTape, tokens laid out by hand: prefix dropped, row by row."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the independent tape is written in TensorFlow")
    outputs = [model.get_layer(name).output for name in names]
    probe = keras.Model(model.inputs[0], [*outputs, model.output])
    with tf.GradientTape() as tape:
        *features, logits = probe(x, training=False)
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    grads = tape.gradient(score, features)
    maps = {}
    for name, a, g in zip(names, features, grads, strict=True):
        a, g = a.numpy(), g.numpy()
        prefix = a.shape[1] - ka.GRID * ka.GRID
        a = a[:, prefix:].reshape(len(x), ka.GRID, ka.GRID, -1)
        g = g[:, prefix:].reshape(len(x), ka.GRID, ka.GRID, -1)
        alpha = g.mean(axis=(1, 2))
        maps[name] = np.maximum(np.einsum("nc,nhwc->nhw", alpha, a), 0)
    return maps


def test_vit_candidates_are_the_patch_grid_and_the_token_layers(vit):
    model, x = vit
    assert gw.candidate_layers(model) == ["patch", *ka.TOKEN_LAYERS]
    infos = _infos(model, x)
    assert infos["patch"].layout == Layout("channels_last", (ka.GRID, ka.GRID))
    assert infos["tokens"].layout == Layout("tokens", (ka.GRID, ka.GRID), 0)
    for name in ka.TOKEN_LAYERS[1:]:
        assert infos[name].layout == Layout("tokens", (ka.GRID, ka.GRID), 1), name
    # The scores (N, heads, T, T) would have been a 2x17 "map" when every 4-D output was
    # taken to be channels-last.
    assert infos["scores"].shape == (1, ka.HEADS, 17, 17)
    assert infos["scores"].layout is None
    assert not infos["scores"].is_candidate


def test_naming_the_attention_scores_is_refused(vit):
    model, x = vit
    for layer in ("scores", model.get_layer("scores")):
        with pytest.raises(ValueError, match=r"'scores'.*attention internals.*reshape="):
            gw.gradcam(model, x, 0, layer)


def test_token_layers_equal_a_hand_reshape_and_an_independent_tape(vit):
    model, x = vit
    names = ["tokens", "cls", "norm1", "add1", "attend1"]
    classes = np.array([0, 3, 4])
    expected = _hand_gradcam(model, x, names, classes)
    got = gw.gradcam(model, x, classes, names)
    for name in names:
        assert got[name].shape == (3, ka.GRID, ka.GRID)
        assert np.any(expected[name] > 0), name
        scale = float(expected[name].max())
        np.testing.assert_allclose(got[name] / scale, expected[name] / scale, atol=1e-5)

    def grid(tokens):  # the user's reshape=, in Keras's own layout (N, h, w, C)
        return keras.ops.reshape(tokens[:, 1:], (-1, ka.GRID, ka.GRID, tokens.shape[-1]))

    np.testing.assert_allclose(
        gw.gradcam(model, x, classes, "norm1", reshape=grid), got["norm1"], rtol=1e-6
    )


def test_default_layer_is_the_last_token_layer_the_class_token_reads(vit):
    model, x = vit
    # attend2 mixes tokens with scores computed from attend1's output; everything after
    # it acts token by token, so the class token never sees their patch tokens.
    assert gw.engine.default_layer(model, x) == "attend1"
    maps = gw.gradcam(model, x, None, ["attend1", "attend2", "norm2", "mlp", "add2"])
    assert np.all(maps["attend1"].max(axis=(1, 2)) > 0)
    for name in ("attend2", "norm2", "mlp", "add2"):
        assert not np.any(maps[name]), name
    np.testing.assert_array_equal(gw.gradcam(model, x), maps["attend1"])


def test_an_ambiguous_shape_is_settled_by_a_wider_image():
    model = ka.ambiguous_net(any_size=True)
    x = np.random.default_rng(4).normal(size=(2, 16, 16, 3)).astype(np.float32)
    # (1, 8, 8, 8) reads both ways and Scale says nothing; on a 16x24 image it becomes
    # (1, 8, 12, 8): the width is axis 2, so channels-last.
    assert _infos(model, x)["scale"].layout == Layout("channels_last", (8, 8))
    assert gw.candidate_layers(model, x) == ["conv", "scale"]
    maps = gw.gradcam(model, x, [0, 2], ["conv", "scale"])
    # Scale multiplies by 1.0 (its initial weight): the same map as the convolution's.
    np.testing.assert_allclose(maps["scale"], maps["conv"], rtol=1e-5, atol=1e-7)
    assert np.any(maps["conv"] > 0)


def test_an_undecidable_shape_is_refused_naming_reshape():
    model = ka.ambiguous_net(any_size=False)  # built for 16x16 only: no wider pass
    x = np.random.default_rng(4).normal(size=(2, 16, 16, 3)).astype(np.float32)
    assert gw.candidate_layers(model) == ["conv"]
    with pytest.raises(ValueError, match=r"'scale'.*could be .*channels-first.*reshape="):
        gw.gradcam(model, x, 0, "scale")
    given = gw.gradcam(model, x, [0, 2], "scale", reshape=lambda t: t)
    np.testing.assert_allclose(given, gw.gradcam(model, x, [0, 2], "conv"), rtol=1e-5, atol=1e-7)


def test_cnn_layouts_come_from_the_layers(vit):
    # A 1x1 convolution on a 2x2 image gives (1, 2, 2, 2): both readings fit, the
    # Conv2D's data_format decides, and the element-wise ReLU after it inherits.
    inputs = keras.Input((2, 2, 1))
    h = keras.layers.Conv2D(2, 1, name="conv")(inputs)
    h = keras.layers.ReLU(name="relu")(h)
    h = ka.Scale(name="scale")(h)
    out = keras.layers.Dense(3, name="head")(keras.layers.Flatten(name="flat")(h))
    model = keras.Model(inputs, out)
    infos = _infos(model, np.zeros((1, 2, 2, 1), np.float32))
    assert infos["conv"].layout == Layout("channels_last", (2, 2))
    assert infos["relu"].layout == Layout("channels_last", (2, 2))
    # Flatten declares channels_last for its input: the same tensor as Scale's output.
    assert infos["scale"].layout == Layout("channels_last", (2, 2))


def test_measured_receptive_fields_follow_the_layout(vit):
    from gradcam_widgets import receptive_field as rf

    model, x = vit
    # The patch embedding's centre cell sees its 8x8 patch, and so does the centre
    # token until the first attention mixes the tokens; after it, the whole image.
    assert rf.measured(model, x, "patch") == (ka.PATCH, ka.PATCH)
    assert rf.measured(model, x, "norm1") == (ka.PATCH, ka.PATCH)
    assert rf.measured(model, x, "attend1") == (ka.SIZE, ka.SIZE)
    with pytest.raises(ValueError, match="attention internals"):
        rf.measured(model, x, "scores")


def test_merges_keep_their_inputs_layout():
    # On a 28x28 input, (N, 7, 7, 8) reads both ways. A Concatenate along the channels
    # and an Add keep their first input's layout; the custom mean after them says
    # nothing, and the model takes no other size, so only these rules decide.
    inputs = keras.Input((28, 28, 1))

    def conv(width, name):
        return keras.layers.Conv2D(width, 3, strides=4, padding="same", name=name)(inputs)

    joined = keras.layers.Concatenate(name="cat")([conv(4, "a"), conv(4, "b")])
    summed = keras.layers.Add(name="sum")([joined, conv(8, "c")])
    out = keras.layers.Dense(3, name="head")(ka.GridMean(name="mean")(summed))
    model = keras.Model(inputs, out)
    x = np.random.default_rng(5).normal(size=(2, 28, 28, 1)).astype(np.float32)
    infos = _infos(model, x)
    assert infos["cat"].layout == infos["sum"].layout == Layout("channels_last", (7, 7))
    assert {"cat", "sum"} <= set(gw.candidate_layers(model))
    given = gw.gradcam(model, x, [0, 1], "sum", reshape=lambda t: t)  # (N, h, w, C) as is
    np.testing.assert_allclose(gw.gradcam(model, x, [0, 1], "sum"), given, rtol=1e-6)
    assert np.any(given > 0)
