"""Second-round contract: method registry, contrast, evidence, layer objects, tensor
targets, reshape, logits without a spatial layer, no zero-filled gradients.

The exact values come from the hand-set model below, worked out by hand, in both
frameworks on the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from keras import layers  # noqa: E402
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402

# The hand-set model: a 1x1 convolution with weights [1, 2] (A^1 = x, A^2 = 2x), flatten,
# a dense layer to 3 classes. On x = [[1, 2], [3, 4]] its gradients are constant per
# channel, so by hand (alpha = spatial mean of the dense weights of each channel):
#   class 0: alpha = (1/4, 1/4)  -> S_0 = 0.75 x
#   class 1: alpha = (-1/2, 1)   -> S_1 = 1.5 x
#   class 2: alpha = (-4, 1)     -> S_2 = -2 x
DENSE = np.array(
    [
        [1, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, -2, 1, 1, 1, 1],
        [-4, -4, -4, -4, 1, 1, 1, 1],
    ],
    dtype=np.float32,
)  # columns in torch's flatten order (channel, row, col)
X = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)


def torch_hand_model() -> nn.Sequential:
    conv = nn.Conv2d(1, 2, kernel_size=1, bias=False)
    dense = nn.Linear(8, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0]).reshape(2, 1, 1, 1))
        dense.weight.copy_(torch.from_numpy(DENSE))
    return nn.Sequential(conv, nn.Flatten(), dense)


def keras_hand_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            layers.Conv2D(2, 1, use_bias=False, name="conv"),
            layers.Flatten(name="flatten"),
            layers.Dense(3, use_bias=False, name="dense"),
        ]
    )
    model.get_layer("conv").set_weights([np.array([1.0, 2.0], np.float32).reshape(1, 1, 1, 2)])
    # Keras flattens (row, col, channel); torch (channel, row, col).
    kernel = DENSE.reshape(3, 2, 2, 2).transpose(0, 2, 3, 1).reshape(3, 8).T
    model.get_layer("dense").set_weights([kernel])
    return model


@pytest.fixture(scope="module", params=["torch", "keras"])
def hand(request):
    """(model, one-image batch, conv layer name) for each framework."""
    if request.param == "torch":
        return torch_hand_model(), torch.from_numpy(X.reshape(1, 1, 2, 2)), "0"
    return keras_hand_model(), X.reshape(1, 2, 2, 1), "conv"


# --------------------------------------------------------------------------- registry


def test_registry_holds_the_four_methods_with_names_labels_and_papers():
    assert {"gradcam", "gradcam++", "hirescam", "cam"} <= set(gw.METHODS)
    for name, method in gw.METHODS.items():
        assert method.name == name
        assert method.label
        assert method.paper
        assert type(method).__doc__
        assert "=" in type(method).__doc__  # the formula


def test_a_registered_toy_method_is_accepted_by_gradcam(hand):
    model, x, layer = hand

    class MaxGradient(gw.Method):
        """Toy: ``w_k = max_ij dy/dA^k_ij``."""

        name, label, paper = "toy-max", "Toy max", "nobody"

        def channel_weights(self, activations, gradients):
            return gradients.max(axis=(2, 3))

    gw.register_method(MaxGradient())
    try:
        # class 1: max gradient of channel 1 is 0, of channel 2 is 1 -> S = 2x
        got = gw.gradcam(model, x, target=1, layer=layer, method="toy-max")
        np.testing.assert_allclose(got[0], 2 * X, atol=1e-5)
    finally:
        del gw.METHODS["toy-max"]


def test_cam_is_not_a_gradient_method_and_says_where_to_go(hand):
    model, x, layer = hand
    with pytest.raises(ValueError, match=r"gw\.cam"):
        gw.gradcam(model, x, layer=layer, method="cam")
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        gw.gradcam(model, x, layer=layer, method="nope")


# --------------------------------------------------------------------------- exact values


def test_gradcam_hand_values(hand):
    model, x, layer = hand
    np.testing.assert_allclose(gw.gradcam(model, x, 0, layer)[0], 0.75 * X, atol=1e-5)
    np.testing.assert_allclose(gw.gradcam(model, x, 1, layer)[0], 1.5 * X, atol=1e-5)
    np.testing.assert_allclose(gw.gradcam(model, x, 2, layer)[0], 0 * X, atol=1e-6)


def test_contrast_explains_the_difference_of_two_scores(hand):
    model, x, layer = hand
    # S_1 - S_0 = 0.75 x; S_0 - S_1 = -0.75 x -> 0 after the ReLU
    np.testing.assert_allclose(gw.gradcam(model, x, 1, layer, contrast=0)[0], 0.75 * X, atol=1e-5)
    np.testing.assert_allclose(gw.gradcam(model, x, 0, layer, contrast=1)[0], 0 * X, atol=1e-6)
    # S_0 - S_2 = 2.75 x
    np.testing.assert_allclose(gw.gradcam(model, x, 0, layer, contrast=2)[0], 2.75 * X, atol=1e-5)


def test_evidence_against_negates_the_weights_before_the_relu(hand):
    model, x, layer = hand
    against = gw.gradcam(model, x, 2, layer, evidence="against")
    np.testing.assert_allclose(against[0], 2 * X, atol=1e-5)  # ReLU(-S_2) = 2x
    assert not gw.gradcam(model, x, 1, layer, evidence="against").any()
    np.testing.assert_allclose(
        gw.gradcam(model, x, 0, layer, contrast=1, evidence="against")[0], 0.75 * X, atol=1e-5
    )


def test_hirescam_hand_values(hand):
    model, x, layer = hand
    # class 1: G^1 = [[0, 0], [0, -2]], G^2 = 1 -> G^1 x + 2x = [[2, 4], [6, 0]]
    got = gw.gradcam(model, x, 1, layer, method="hirescam")
    np.testing.assert_allclose(got[0], [[2, 4], [6, 0]], atol=1e-5)


def test_a_contrast_equal_to_the_target_is_refused(hand):
    model, x, layer = hand
    with pytest.raises(ValueError, match="contrast class 1 is the target class itself"):
        gw.gradcam(model, x, 1, layer, contrast=1)
    with pytest.raises(ValueError, match="out of range"):
        gw.gradcam(model, x, 1, layer, contrast=7)


def test_bad_evidence_is_refused(hand):
    model, x, layer = hand
    with pytest.raises(ValueError, match="evidence must be 'for' or 'against'"):
        gw.gradcam(model, x, 1, layer, evidence="both")


# --------------------------------------------------------------------------- targets


def test_tensor_and_array_targets_of_every_framework():
    model = torch_hand_model()
    x = torch.from_numpy(np.stack([X, X[::-1]]).reshape(2, 1, 2, 2).copy())
    expected = gw.gradcam(model, x, [1, 0], "0")
    for target in (
        torch.tensor([1, 0]),
        np.array([1, 0]),
        tf.constant([1, 0]),
    ):
        np.testing.assert_array_equal(gw.gradcam(model, x, target, "0"), expected)
    logits = model(x)
    np.testing.assert_array_equal(
        gw.gradcam(model, x, logits.argmax(dim=1), "0"), gw.gradcam(model, x, None, "0")
    )
    one = gw.gradcam(model, x, 1, "0")
    for scalar in (torch.tensor(1), np.array(1), np.int64(1), tf.constant(1)):
        np.testing.assert_array_equal(gw.gradcam(model, x, scalar, "0"), one)
    with pytest.raises(TypeError, match="integer class index"):
        gw.gradcam(model, x, np.array(1.0), "0")


# --------------------------------------------------------------------------- layers


def test_layers_given_as_objects_torch():
    model = torch_hand_model()
    x = torch.from_numpy(X.reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(gw.gradcam(model, x, 1, model[0]), gw.gradcam(model, x, 1, "0"))
    maps = gw.gradcam(model, x, 1, [model[0]])
    assert list(maps) == ["0"]
    with pytest.raises(ValueError, match="not a layer of this model"):
        gw.gradcam(model, x, 1, nn.Conv2d(1, 2, 1))


def test_a_sequential_given_as_a_layer_is_one_layer_not_a_list():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    model = nn.Sequential(block, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(1, 3, 6, 6)
    np.testing.assert_array_equal(gw.gradcam(model, x, 0, block), gw.gradcam(model, x, 0, "0"))


def test_layers_given_as_objects_keras():
    model = keras_hand_model()
    x = X.reshape(1, 2, 2, 1)
    conv = model.get_layer("conv")
    np.testing.assert_array_equal(gw.gradcam(model, x, 1, conv), gw.gradcam(model, x, 1, "conv"))
    assert list(gw.gradcam(model, x, 1, [conv])) == ["conv"]
    assert gw.cam is not None


def test_many_candidates_are_summarised_in_messages():
    model = nn.Sequential(
        *[nn.Conv2d(2, 2, 3, padding=1) for _ in range(20)],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2, 2),
    )
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="20 layers; the last 8: 12, 13") as info:
        gw.gradcam(model, x, 0, "nope")
    message = str(info.value)
    assert "20 layers; the last 8: 12, 13" in message
    assert "gw.candidate_layers(model, inputs) lists them all" in message
    assert "0, 1, 2" not in message


# --------------------------------------------------------------------------- predict


def test_predict_works_without_a_spatial_layer():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.randn(2, 3, 2, 2)
    np.testing.assert_allclose(gw.predict(mlp, x), mlp(x).detach().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="no layer with a spatial output"):
        gw.gradcam(mlp, x)


def test_predict_keras_mlp():
    mlp = keras.Sequential([keras.Input((2, 2, 3)), layers.Flatten(), layers.Dense(3)])
    x = np.random.default_rng(0).normal(size=(2, 2, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(gw.predict(mlp, x), mlp(x).numpy(), rtol=1e-5)


def test_explain_returns_the_logits_and_every_method_without_another_call(hand):
    model, x, layer = hand
    result = gw.explain(model, x, [1, 0], layer, contrasts=[None, 2])
    np.testing.assert_allclose(result.logits, gw.predict(model, x), rtol=1e-6)
    assert [int(t[0]) for t in result.targets] == [1, 0]
    assert result.contrasts[0] is None
    assert int(result.contrasts[1][0]) == 2
    np.testing.assert_allclose(result.maps("gradcam")[layer][0], 1.5 * X, atol=1e-5)
    np.testing.assert_allclose(result.maps("gradcam", index=1)[layer][0], 2.75 * X, atol=1e-5)
    hires = result.maps("hirescam")[layer][0]
    np.testing.assert_allclose(hires, [[2, 4], [6, 0]], atol=1e-5)


# --------------------------------------------------------------------------- refusals


class TwoBranches(nn.Module):
    """``unused`` runs but the score never depends on it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.unused = nn.Conv2d(3, 4, 3, padding=1)
        self.used = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x):
        self.unused(x)
        return self.head(self.used(x))


def test_a_layer_the_score_does_not_depend_on_is_refused_not_zero_filled():
    model = TwoBranches()
    x = torch.randn(1, 3, 5, 5)
    with pytest.raises(ValueError, match="no gradient reached the output of \\['unused'\\]"):
        gw.gradcam(model, x, 0, "unused")
    assert gw.gradcam(model, x, 0, "used").shape == (1, 5, 5)


class KerasTwoBranches(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.unused = layers.Conv2D(2, 3, padding="same", name="unused")
        self.used = layers.Conv2D(2, 3, padding="same", name="used")
        self.pool = layers.GlobalAveragePooling2D(name="gap")
        self.dense = layers.Dense(2, name="dense")

    def call(self, x):
        self.unused(x)
        return self.dense(self.pool(self.used(x)))


def test_keras_layer_the_score_does_not_depend_on_is_refused():
    model = KerasTwoBranches()
    x = np.ones((1, 5, 5, 3), np.float32)
    with pytest.raises(ValueError, match="no gradient reached the output of \\['unused'\\]"):
        gw.gradcam(model, x, 0, "unused")
    assert gw.gradcam(model, x, 0, "used").shape == (1, 5, 5)


# --------------------------------------------------------------------------- reshape


class TinyTokens(nn.Module):
    """Patch embedding to a class token + 2x2 grid of tokens, then a head on the mean."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Conv2d(3, 4, kernel_size=2, stride=2)
        self.cls = nn.Parameter(torch.randn(1, 1, 4))
        self.block = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # (N, 4, C)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = torch.tanh(self.block(tokens))
        return self.head(tokens[:, 0] * tokens[:, 1:].mean(dim=1))


def grid(tokens):
    """Drop the class token, lay the 4 patch tokens out as (N, C, 2, 2)."""
    return tokens[:, 1:].reshape(tokens.shape[0], 2, 2, -1).permute(0, 3, 1, 2)


def test_reshape_turns_tokens_into_a_map_matching_a_hand_computation():
    model = TinyTokens()
    x = torch.randn(2, 3, 4, 4)
    got = gw.gradcam(model, x, [0, 2], "block", reshape=grid)
    # independent: capture the block's output by hand and differentiate to it
    store = {}
    handle = model.block.register_forward_hook(lambda m, a, out: store.setdefault("out", out))
    try:
        logits = model(x)
        score = logits[0, 0] + logits[1, 2]
        (grads,) = torch.autograd.grad(score, store["out"])
    finally:
        handle.remove()
    acts, grads = grid(store["out"]).detach().numpy(), grid(grads).numpy()
    expected = np.maximum(np.einsum("nk,nkhw->nhw", grads.mean(axis=(2, 3)), acts), 0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_token_layer_without_reshape_is_detected_as_the_same_map():
    # (N, 5, 4) reads as 1 class token + 2x2 patches (or a flattened 2x2 map, but the
    # Linear producing it acts on the last axis): detected, the same map as reshape=grid.
    # Undecidable layouts are refused naming reshape= (tests/test_architectures.py).
    model = TinyTokens()
    x = torch.randn(2, 3, 4, 4)
    np.testing.assert_allclose(
        gw.gradcam(model, x, [0, 2], "block"),
        gw.gradcam(model, x, [0, 2], "block", reshape=grid),
        rtol=1e-5,
        atol=1e-7,
    )


def test_reshape_must_return_a_map():
    model = TinyTokens()
    with pytest.raises(ValueError, match="reshape= must return a 4-D tensor"):
        gw.gradcam(model, torch.randn(1, 3, 4, 4), 0, "block", reshape=lambda t: t)


# --------------------------------------------------------------------------- caches


def test_clear_caches_forgets_a_replaced_layer():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    x = torch.randn(1, 3, 5, 5)
    assert gw.candidate_layers(model, x) == ["0"]
    model[0] = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    gw.clear_caches(model)
    assert gw.candidate_layers(model, x) == ["0.0", "0.1", "0"]
