"""Grad-CAM on Keras 3 models: exact values, an explicit GradientTape, the robustness matrix."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from keras import layers  # noqa: E402

import gradcam_widgets as gw  # noqa: E402

# --------------------------------------------------------------------------- helpers


def images(n: int = 2, size: int = 8, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype(np.float32)


def functional_cnn(activation: str | None = None, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = layers.Conv2D(6, 3, name="conv2")(h)
    h = layers.ReLU(name="relu2")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(5, activation=activation, name="dense")(h)
    return keras.Model(inputs, outputs)


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    target.set_weights(source.get_weights())


def tape_gradcam(model: keras.Model, layer_name: str, x: np.ndarray, classes) -> np.ndarray:
    """The Keras example's way: an explicit sub-model and an eager GradientTape."""
    sub = keras.Model(model.inputs[0], [model.get_layer(layer_name).output, model.output])
    with tf.GradientTape() as tape:
        feature_maps, scores = sub(x)
        picked = tf.gather(scores, np.asarray(classes), axis=1, batch_dims=1)
    grads = tape.gradient(picked, feature_maps).numpy()
    weights = grads.mean(axis=(1, 2))  # (N, K): per image
    return np.maximum(np.einsum("nk,nhwk->nhw", weights, feature_maps.numpy()), 0.0)


def snapshot(model: keras.Model) -> dict:
    return {
        "weights": [w.copy() for w in model.get_weights()],
        "activations": {
            name: getattr(layer, "activation", None)
            for name, layer in _all_layers(model).items()
        },
        "trainable": {name: layer.trainable for name, layer in _all_layers(model).items()},
    }


def _all_layers(model):
    from gradcam_widgets.backends.keras import named_layers

    return dict(named_layers(model))


def assert_untouched(model: keras.Model, before: dict) -> None:
    after = snapshot(model)
    for a, b in zip(before["weights"], after["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert before["activations"] == after["activations"]
    assert before["trainable"] == after["trainable"]
    for layer in _all_layers(model).values():
        assert "call" not in vars(layer), f"{layer.name}.call left wrapped"


# --------------------------------------------------------------------------- exact values


def hand_set_model() -> keras.Model:
    """The torch test's model in Keras: 1x1 conv [1, 2], flatten (H, W, C order), dense."""
    model = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            layers.Conv2D(2, 1, use_bias=False, name="conv"),
            layers.Flatten(name="flatten"),
            layers.Dense(3, use_bias=False, name="dense"),
        ]
    )
    torch_order = np.array(
        [
            [1, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, -2, 1, 1, 1, 1],
            [-4, -4, -4, -4, 1, 1, 1, 1],
        ],
        dtype=np.float32,
    )
    # torch flattens (c, i, j); Keras flattens (i, j, c).
    kernel = torch_order.reshape(3, 2, 2, 2).transpose(2, 3, 1, 0).reshape(8, 3)
    model.get_layer("conv").set_weights([np.array([1.0, 2.0]).reshape(1, 1, 1, 2)])
    model.get_layer("dense").set_weights([kernel])
    return model


X_HAND = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32).reshape(1, 2, 2, 1)


def test_hand_set_model_exact_maps():
    model = hand_set_model()
    x = X_HAND[0, :, :, 0]
    np.testing.assert_allclose(gw.predict(model, X_HAND)[0], [9.0, 12.0, -20.0])
    np.testing.assert_allclose(gw.gradcam(model, X_HAND, target=0)[0], 0.75 * x)
    np.testing.assert_allclose(gw.gradcam(model, X_HAND, target=1)[0], 1.5 * x)
    np.testing.assert_array_equal(gw.gradcam(model, X_HAND, target=2)[0], np.zeros((2, 2)))
    np.testing.assert_allclose(gw.gradcam(model, X_HAND)[0], 1.5 * x)


# --------------------------------------------------------------------------- independent tape


@pytest.mark.parametrize("layer_name", ["conv1", "conv2", "relu2"])
@pytest.mark.parametrize("target", [0, [1, 4]])
def test_matches_explicit_submodel_tape(layer_name, target):
    model, x = functional_cnn(), images(2)
    classes = [target] * 2 if isinstance(target, int) else target
    ours = gw.gradcam(model, x, target=target, layer=layer_name)
    np.testing.assert_allclose(ours, tape_gradcam(model, layer_name, x, classes), atol=1e-6)


def test_many_layers_in_one_call_equal_single_calls():
    model, x = functional_cnn(), images(2)
    names = ["conv1", "conv2", "relu2"]
    together = gw.gradcam(model, x, target=1, layer=names)
    assert list(together) == names
    for name in names:
        np.testing.assert_allclose(
            together[name], gw.gradcam(model, x, target=1, layer=name), rtol=1e-5, atol=1e-7
        )


def test_gradcam_multi_matches_separate_calls():
    model, x = functional_cnn(), images(2)
    results = gw.gradcam_multi(model, x, [0, 3, None], layer="conv2")
    for target, result in zip([0, 3, None], results):
        # One call may run eagerly and the other compiled: float32 rounding may differ.
        np.testing.assert_allclose(
            result["conv2"], gw.gradcam(model, x, target, "conv2"), rtol=1e-5, atol=1e-7
        )


def test_gradcam_equals_cam_over_z_on_gap_network():
    model, x = functional_cnn(), images(3)
    cam = gw.cam(model, x, target=[0, 2, 4])
    grad = gw.gradcam(model, x, target=[0, 2, 4], layer="relu2")
    np.testing.assert_allclose(grad * 36, np.maximum(cam, 0.0), rtol=1e-4, atol=1e-5)


def test_cam_refuses_flatten_head():
    with pytest.raises(ValueError, match="global average"):
        gw.cam(hand_set_model(), X_HAND)


# --------------------------------------------------------------------------- robustness


def test_candidate_layers_static_graph_needs_no_inputs():
    assert gw.candidate_layers(functional_cnn()) == ["conv1", "conv2", "relu2"]


def test_sequential_with_and_without_input_layer():
    keras.utils.set_random_seed(0)
    stack = [
        layers.Conv2D(4, 3, activation="relu", name="c1"),
        layers.Conv2D(4, 3, activation="relu", name="c2"),
        layers.Flatten(name="flat"),
        layers.Dense(3, name="out"),
    ]
    with_input = keras.Sequential([keras.Input((8, 8, 3)), *stack])
    without_input = keras.Sequential(
        [
            layers.Conv2D(4, 3, activation="relu", name="c1"),
            layers.Conv2D(4, 3, activation="relu", name="c2"),
            layers.Flatten(name="flat"),
            layers.Dense(3, name="out"),
        ]
    )
    x = images(2)
    with pytest.raises(ValueError, match="pass an example batch"):
        gw.candidate_layers(without_input)
    assert gw.candidate_layers(without_input, x) == ["c1", "c2"]
    copy_weights(with_input, without_input)
    assert gw.candidate_layers(with_input) == ["c1", "c2"]
    np.testing.assert_allclose(
        gw.gradcam(with_input, x, layer="c1"), gw.gradcam(without_input, x, layer="c1"), atol=1e-6
    )


def test_nested_model_named_outer_inner():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu", name="conv")],
        name="backbone",
    )
    inputs = keras.Input((8, 8, 3))
    outputs = layers.Dense(3, name="dense")(layers.GlobalAveragePooling2D()(inner(inputs)))
    model = keras.Model(inputs, outputs)
    x = images(2)
    assert gw.candidate_layers(model) == ["backbone/conv", "backbone"]
    before = snapshot(model)
    nested = gw.gradcam(model, x, target=2, layer="backbone/conv")
    np.testing.assert_allclose(nested, gw.gradcam(model, x, target=2, layer="backbone"))
    np.testing.assert_allclose(
        gw.cam(model, x, target=2, layer="backbone/conv"), gw.cam(model, x, target=2)
    )
    assert_untouched(model, before)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv1 = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")
        self.conv2 = layers.Conv2D(6, 3, name="conv2")
        self.relu2 = layers.ReLU(name="relu2")
        self.gap = layers.GlobalAveragePooling2D(name="gap")
        self.dense = layers.Dense(5, activation="softmax", name="dense")

    def call(self, x):
        return self.dense(self.gap(self.relu2(self.conv2(self.conv1(x)))))


def test_subclassed_model_matches_functional_twin():
    functional = functional_cnn()
    model = Subclassed()
    x = images(2)
    with pytest.raises(ValueError, match="pass an example batch"):
        gw.candidate_layers(model)
    assert gw.candidate_layers(model, x) == ["conv1", "conv2", "relu2"]
    copy_weights(functional, model)
    before = snapshot(model)
    for name in ["conv1", "relu2"]:
        np.testing.assert_allclose(
            gw.gradcam(model, x, target=[0, 3], layer=name),
            gw.gradcam(functional, x, target=[0, 3], layer=name),
            atol=1e-6,
        )
    assert_untouched(model, before)


def test_softmax_activation_scores_before_softmax_without_changing_the_model():
    linear, x = functional_cnn(), images(2)
    softmax = functional_cnn(activation="softmax")
    copy_weights(linear, softmax)
    before = snapshot(softmax)
    np.testing.assert_allclose(
        gw.gradcam(softmax, x, target=2), gw.gradcam(linear, x, target=2), atol=1e-6
    )
    np.testing.assert_allclose(gw.predict(softmax, x), gw.predict(linear, x), atol=1e-5)
    assert softmax.get_layer("dense").activation.__name__ == "softmax"
    probabilities = softmax(x).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert_untouched(softmax, before)


def test_final_softmax_layer_scores_before_it():
    linear, x = functional_cnn(), images(2)
    with_layer = keras.Model(linear.inputs, layers.Softmax(name="probs")(linear.outputs[0]))
    np.testing.assert_allclose(
        gw.gradcam(with_layer, x, target=1), gw.gradcam(linear, x, target=1), atol=1e-6
    )


def test_frozen_model():
    model, x = functional_cnn(), images(2)
    expected = gw.gradcam(model, x, target=1, layer="conv2")
    model.trainable = False
    np.testing.assert_allclose(gw.gradcam(model, x, target=1, layer="conv2"), expected)
    assert not model.trainable


def test_dropout_and_batchnorm_run_in_inference_mode():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, name="conv")(inputs)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Dropout(0.5, name="drop")(h)
    outputs = layers.Dense(3)(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, outputs)
    x = images(2)
    moving_mean = model.get_layer("bn").moving_mean.numpy().copy()
    first = gw.gradcam(model, x, layer="drop")
    np.testing.assert_allclose(gw.gradcam(model, x, layer="drop"), first)
    np.testing.assert_array_equal(model.get_layer("bn").moving_mean.numpy(), moving_mean)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "inputs", "message"),
    [
        ({"layer": "nope"}, images(2), r"unknown layer 'nope'. Candidate layers: conv1, conv2"),
        ({"layer": "dense"}, images(2), r"layer 'dense' has output shape \(1, 5\), not a spatial"),
        ({"layer": "gap"}, images(2), r"not a spatial feature map"),
        ({"target": 5}, images(2), r"class 5 is out of range: the model has 5 classes"),
        ({"target": [1]}, images(2), r"1 classes for a batch of 2 images"),
        ({}, images(2)[..., :2], r"2 channels on the last axis but the model expects 3"),
        ({}, np.transpose(images(2), (0, 3, 1, 2)), r"channels-first"),
        ({}, images(2, size=6), r"size 6 on axis 1 but the model was built for \(8, 8, 3\)"),
        ({}, images(2)[0, 0], r"give a batch \(N, H, W, C\)"),
        ({}, images(2)[:0], r"empty batch"),
        ({}, np.full((1, 8, 8, 3), np.nan, np.float32), r"NaN"),
    ],
)
def test_bad_input_gives_clear_error_and_changes_nothing(kwargs, inputs, message):
    model = functional_cnn(activation="softmax")
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        gw.gradcam(model, inputs, **kwargs)
    assert_untouched(model, before)
