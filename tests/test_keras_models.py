"""Keras models nobody here wrote, and the dtypes users bring (TensorFlow backend).

- ConvNeXt (``keras.applications``): the map that feeds the head is a raw residual ``add``
  that no layer outputs; it is reachable as ``"<pooling layer>:input"`` and is the default.
- float16, mixed-precision and bfloat16 models give float32 maps without error.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from keras import layers  # noqa: E402

import gradcam_widgets as gw  # noqa: E402

# --------------------------------------------------------------------------- ConvNeXt

GAP = "convnext_tiny_head_gap"


@pytest.fixture(scope="module")
def convnext():
    keras.utils.set_random_seed(0)
    model = keras.applications.ConvNeXtTiny(
        weights=None, input_shape=(64, 64, 3), classifier_activation=None
    )
    x = np.random.default_rng(0).normal(120, 50, size=(2, 64, 64, 3)).astype(np.float32)
    return model, x


def _pooled_input_tape(model, x, classes):
    """An independent computation: a sub-model to the pooling layer's input, and a tape."""
    gap = model.get_layer(GAP)
    to_maps = keras.Model(model.inputs[0], gap.input)
    head = keras.Model(gap.input, model.output)
    with tf.GradientTape() as tape:
        maps = to_maps(x)
        tape.watch(maps)
        logits = head(maps)
        picked = tf.gather(logits, classes, axis=1, batch_dims=1)
    grads = tape.gradient(picked, maps).numpy()
    return maps.numpy(), grads, logits.numpy()


@pytest.mark.slow
def test_convnext_default_is_the_map_that_feeds_the_head(convnext):
    model, x = convnext
    candidates = gw.candidate_layers(model)
    assert candidates[-1] == f"{GAP}:input"
    # The last layer output is inside the last block's residual branch, not its sum.
    assert candidates[-2].endswith("stage_3_block_2_identity")
    classes = np.array([3, 5])
    maps, grads, logits = _pooled_input_tape(model, x, classes)
    expected = np.maximum(np.einsum("nk,nhwk->nhw", grads.mean(axis=(1, 2)), maps), 0)
    ours = gw.gradcam(model, x, classes)
    np.testing.assert_allclose(ours, gw.gradcam(model, x, classes, f"{GAP}:input"))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(gw.predict(model, x), logits, rtol=1e-4, atol=1e-4)
    branch = gw.gradcam(model, x, classes, candidates[-2])
    assert not np.allclose(branch, ours, rtol=0.1)


@pytest.mark.slow
def test_convnext_cam_folds_the_head_layer_norm(convnext):
    """CAM through pooling, layer norm and dense: exact, and its mean is the logit."""
    model, x = convnext
    classes = np.array([3, 5])
    maps, _, logits = _pooled_input_tape(model, x, classes)
    norm = model.get_layer("convnext_tiny_head_layernorm")
    dense = model.get_layer("convnext_tiny_head_dense")
    kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
    gamma, beta = (w.astype(np.float64) for w in norm.get_weights())
    pooled = maps.astype(np.float64).mean(axis=(1, 2))
    mu = pooled.mean(axis=1)
    sigma = np.sqrt(pooled.var(axis=1) + norm.epsilon)
    weights = kernel[:, classes].T * gamma / sigma[:, None]  # (N, K)
    expected = np.einsum("nk,nhwk->nhw", weights, maps - mu[:, None, None, None])
    ours = gw.cam(model, x, classes)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
    offset = beta @ kernel + bias  # what the map leaves out: the same for every image
    picked = logits[np.arange(2), classes]
    np.testing.assert_allclose(ours.mean(axis=(1, 2)), picked - offset[classes], rtol=1e-3)


def test_layer_input_of_any_layer_is_accepted_but_not_listed():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    h = layers.ReLU(name="relu")(h)
    h = layers.Conv2D(4, 3, name="conv2")(h)
    out = layers.Dense(3, name="dense")(layers.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inputs, out)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    # Ordinary model: the pooled map is conv2's output, so nothing new is listed.
    assert gw.candidate_layers(model) == ["conv1", "relu", "conv2"]
    # conv2's input is relu's output: the same map, the same gradient.
    np.testing.assert_allclose(
        gw.gradcam(model, x, 1, "conv2:input"), gw.gradcam(model, x, 1, "relu"), rtol=1e-6
    )
    with pytest.raises(ValueError, match="unknown layer 'nope:input'"):
        gw.gradcam(model, x, 1, "nope:input")
    with pytest.raises(ValueError, match="not a spatial feature map"):
        gw.gradcam(model, x, 1, "dense:input")


# --------------------------------------------------------------------------- dtypes


def _small(policy: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1", dtype=policy)(
        inputs
    )
    h = layers.BatchNormalization(name="bn", dtype=policy)(h)
    h = layers.Conv2D(6, 3, name="conv2", dtype=policy)(h)
    h = layers.GlobalAveragePooling2D(name="gap", dtype=policy)(h)
    out = layers.Dense(5, activation="softmax", name="dense", dtype=policy)(h)
    return keras.Model(inputs, out)


@pytest.mark.parametrize(
    ("policy", "precision"),
    [("mixed_float16", 1e-2), ("float16", 1e-2), ("mixed_bfloat16", 5e-2), ("bfloat16", 5e-2)],
)
def test_low_precision_models_give_float32_maps(policy, precision):
    reference = _small("float32")
    model = _small(policy)
    model.set_weights(reference.get_weights())
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    for method in ("gradcam", "gradcam++", "hirescam"):
        ours = gw.gradcam(model, x, [1, 3], ["conv1", "conv2"], method=method)
        expected = gw.gradcam(reference, x, [1, 3], ["conv1", "conv2"], method=method)
        for name, heat in ours.items():
            assert heat.dtype == np.float32
            scale = np.abs(expected[name]).max()
            np.testing.assert_allclose(heat, expected[name], atol=precision * scale)
    cam = gw.cam(model, x, [1, 3])
    assert cam.dtype == np.float32
    expected_cam = gw.cam(reference, x, [1, 3])
    np.testing.assert_allclose(cam, expected_cam, atol=precision * np.abs(expected_cam).max())
    logits = gw.predict(model, x)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, gw.predict(reference, x), atol=precision)


# --------------------------------------------------------------------------- traces


def _traces(model) -> tuple[int, int]:
    from gradcam_widgets.backends import keras as adapter

    steps = adapter.steps_of(model).values()
    return sum(s.state.traces for s in steps), sum(s.state.eager_runs for s in steps)


def test_eager_first_calls_then_one_trace_for_every_class_and_contrast():
    from gradcam_widgets.backends.keras_steps import EAGER_CALLS

    model = _small("float32")
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype(np.float32)
    names = ["conv1", "conv2"]
    calls = [
        {"targets": [0]},
        {"targets": [[1, 2]], "with_head": True},
        {"targets": [None], "contrasts": [3]},
        {"targets": [4]},
        {"targets": [2], "contrasts": [[0, 1]], "with_head": True},
    ]
    results = []
    for number, kwargs in enumerate(calls, start=1):
        results.append(gw.explain(model, x, layer=names, **kwargs))
        assert _traces(model) == (int(number > EAGER_CALLS), min(number, EAGER_CALLS))
    # Compiled and eager calls agree.
    again = gw.explain(model, x, [0], names)
    for name in names:
        np.testing.assert_allclose(
            again.maps("gradcam++")[name], results[0].maps("gradcam++")[name], rtol=1e-5
        )
    assert _traces(model)[0] == 1


def test_explorer_class_and_layer_changes_never_retrace():
    model = _small("float32")
    x = np.random.default_rng(3).normal(size=(1, 8, 8, 3)).astype(np.float32)
    explorer = gw.Explorer(model, x)
    for cls in (1, 2, 3, 4, 0, 2):
        explorer.target.value = cls
        for name in explorer.layer.options:
            explorer.layer.value = name[1] if isinstance(name, tuple) else name
    # Two eager passes, then one trace serves every later class (and every layer).
    assert _traces(model) == (1, 2)
