"""Wrapped, compiled, low-precision and probability-output models (issue 11, items 4, 5, 7).

Maps are compared with captum's LayerGradCam on the plain model, or with an independent
autograd computation (archs.oracle_gradcam).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from archs import oracle_gradcam, seeded  # noqa: E402
from models import captum_gradcam, small_cnn  # noqa: E402
from models import torch_images as images  # noqa: E402
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.backends.base import check_not_probabilities  # noqa: E402


def identity_map(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


# --------------------------------------------------------------------------- torch.compile


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compiled_model_gives_the_plain_models_map(backend):
    model, x = small_cnn(), images()
    expected = captum_gradcam(model, model[2], x, [1, 3])
    compiled = torch.compile(model, backend=backend)
    compiled(x)  # compiled and run once, as a user would have
    assert gw.candidate_layers(compiled, x) == ["_orig_mod.0", "_orig_mod.1", "_orig_mod.2",
                                                "_orig_mod.3"]
    for layer in ["_orig_mod.2", "2", model[2], compiled._orig_mod[2]]:
        got = gw.gradcam(compiled, x, [1, 3], layer)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    default = gw.gradcam(compiled, x, [1, 3])
    np.testing.assert_allclose(default, captum_gradcam(model, model[3], x, [1, 3]), atol=1e-6)
    assert not any(m._forward_hooks for m in model.modules())


class CompiledInside(nn.Module):
    """A block compiled inside an ordinary module: its submodules run in a dynamo graph."""

    @seeded(5)
    def __init__(self, compiled: bool = True) -> None:
        super().__init__()
        block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.block = torch.compile(block, backend="aot_eager") if compiled else block
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.block(x).mean(dim=(2, 3)))


def test_a_compiled_submodule_is_hooked_eagerly():
    """captum's hook sees nothing here; the same weights uncompiled are the reference."""
    model, plain, x = CompiledInside(), CompiledInside(compiled=False), images()
    model(x)
    conv = model.block._orig_mod[0]
    got = gw.gradcam(model, x, [0, 2], conv)
    np.testing.assert_allclose(got, captum_gradcam(plain, plain.block[0], x, [0, 2]), atol=1e-6)
    np.testing.assert_array_equal(gw.gradcam(model, x, [0, 2], "block.0"), got)


@pytest.mark.zoo
def test_inductor_compiled_model():
    """The default backend (inductor: C++ code generation, slow to compile on CPU)."""
    model, x = small_cnn(), images()
    compiled = torch.compile(model)
    try:
        compiled(x)
    except Exception as error:  # no compiler on this machine
        pytest.skip(f"inductor cannot compile here: {error}")
    np.testing.assert_allclose(
        gw.gradcam(compiled, x, [1, 3], "2"), captum_gradcam(model, model[2], x, [1, 3]), atol=1e-6
    )


# --------------------------------------------------------------------------- DataParallel


def test_data_parallel_names_keep_working():
    model, x = small_cnn(), images()
    wrapped = nn.DataParallel(model)
    expected = captum_gradcam(model, model[2], x, 4)
    assert gw.candidate_layers(wrapped, x) == ["module.0", "module.1", "module.2", "module.3"]
    for layer in ["module.2", "2", model[2]]:
        np.testing.assert_allclose(gw.gradcam(wrapped, x, 4, layer), expected, atol=1e-6)
    maps = gw.gradcam(wrapped, x, 4, ["module.2", "module.0"])
    assert list(maps) == ["module.2", "module.0"]


# --------------------------------------------------------------------------- inference mode


def test_inference_mode_works_and_is_left_as_it_was():
    model, x = small_cnn(), images()
    expected = gw.gradcam(model, x, 2, "2")
    with torch.inference_mode():
        inside = gw.gradcam(model, x, 2, "2")
        made_inside = gw.gradcam(model, images(), 2, "2")  # an inference tensor as input
        assert torch.is_inference_mode_enabled()
    np.testing.assert_allclose(inside, expected, atol=1e-7)
    np.testing.assert_allclose(made_inside, expected, atol=1e-7)


# --------------------------------------------------------------------------- errors


class Raises(nn.Module):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.error = error

    def forward(self, x):
        self.conv(x)
        raise self.error


def test_a_runtime_error_that_is_not_about_shapes_is_not_rewritten():
    error = RuntimeError("CUDA out of memory in my custom kernel")
    with pytest.raises(RuntimeError, match="CUDA out of memory in my custom kernel") as info:
        gw.gradcam(Raises(error), images())
    assert "could not run on inputs" not in str(info.value)


def test_a_shape_error_still_gets_the_layout_hint():
    with pytest.raises(ValueError, match=r"could not run on inputs of shape .*\(N, C, H, W\)"):
        gw.gradcam(small_cnn(), images(size=2))


# --------------------------------------------------------------------------- probabilities


class SoftmaxInForward(nn.Module):
    def __init__(self, log: bool = False) -> None:
        super().__init__()
        self.net = small_cnn()
        self.log = log

    def forward(self, x):
        logits = self.net(x)
        return torch.log_softmax(logits, 1) if self.log else torch.softmax(logits, 1)


@pytest.mark.parametrize("log", [False, True])
def test_probabilities_returned_by_forward_are_refused_with_guidance(log):
    model, x = SoftmaxInForward(log), images()
    kind = "log-probabilities" if log else "probabilities"
    with pytest.raises(ValueError, match=f"looks like {kind}.*Pass the logits: a model without"):
        gw.gradcam(model, x)
    with pytest.raises(ValueError, match="allow_probabilities=True"):
        gw.explain(model, x)
    with pytest.raises(ValueError, match="softmax inside forward"):
        gw.gradcam_multi(model, x, [0, 1])


def test_allow_probabilities_explains_the_output_as_it_is():
    model, x = SoftmaxInForward(), images()
    got = gw.gradcam(model, x, [1, 2], "net.2", allow_probabilities=True)
    expected = oracle_gradcam(model, model.net[2], x, [1, 2], identity_map)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-9)
    logits_map = gw.gradcam(model.net, x, [1, 2], "2")
    assert not np.allclose(got, logits_map)  # the probability's map is another map
    result = gw.explain(model, x, [1], "net.2", allow_probabilities=True)
    np.testing.assert_allclose(result.logits.sum(axis=1), 1.0, rtol=1e-5)


def test_a_softmax_module_is_stepped_over_not_refused():
    model, x = small_cnn(), images()
    with_softmax = nn.Sequential(*model, nn.Softmax(dim=1))
    np.testing.assert_allclose(gw.gradcam(with_softmax, x, 3), gw.gradcam(model, x, 3), atol=1e-6)


def test_check_not_probabilities_on_values():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 10)).astype(np.float32)
    check_not_probabilities(logits)  # logits pass
    check_not_probabilities(np.abs(logits))  # non-negative but not summing to 1
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    with pytest.raises(ValueError, match="probabilities"):
        check_not_probabilities(probabilities)
    rounded = torch.from_numpy(probabilities).bfloat16().float().numpy()
    with pytest.raises(ValueError, match="probabilities"):
        check_not_probabilities(rounded)
    with pytest.raises(ValueError, match="log-probabilities"):
        check_not_probabilities(np.log(probabilities))
    mixed = probabilities.copy()
    mixed[0] = logits[0]  # one row of logits: not a probability output
    check_not_probabilities(mixed)


def test_keras_softmax_layer_is_not_taken_for_a_probability_output():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    inputs = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    dense_softmax = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
    layer_softmax = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(3)(h)))
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    for model in (dense_softmax, layer_softmax):
        assert gw.gradcam(model, x, 1, "conv").shape == (2, 6, 6)
        assert not np.allclose(gw.predict(model, x).sum(axis=1), 1.0)


# --------------------------------------------------------------------------- dtypes


def test_bfloat16_model():
    model, x = small_cnn(), images()
    full = gw.gradcam(model, x, [0, 4], "2")
    half = copy.deepcopy(model).bfloat16()
    for inputs in (x, x.bfloat16()):
        got = gw.gradcam(half, inputs, [0, 4], "2")
        assert got.dtype == np.float32
        expected = oracle_gradcam(half, half[2], x.bfloat16(), [0, 4], identity_map)
        np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-2 * expected.max())
        np.testing.assert_allclose(got, full, rtol=0.1, atol=0.05 * full.max())
    assert gw.predict(half, x).dtype == np.float32


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_float16_and_float64_models(dtype):
    model, x = small_cnn(), images()
    other = copy.deepcopy(model).to(dtype)
    expected = oracle_gradcam(other, other[2], x.to(dtype), [2, 1], identity_map)
    got = gw.gradcam(other, x, [2, 1], "2")
    tolerance = 1e-2 if dtype == torch.float16 else 1e-6
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * expected.max())


# --------------------------------------------------------------------------- eval mode


class CountsModeChanges(nn.Module):
    """``train()`` has a side effect, and eval-mode forwards fill a cache (EfficientFormer).

    The cache holds a tensor computed from a parameter: filled with autograd on, it
    belongs to a graph, and ``copy.deepcopy`` refuses such a tensor.
    """

    @seeded(6)
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bias = nn.Parameter(torch.randn(4, 1, 1))
        self.head = nn.Linear(4, 3)
        self.mode_calls = 0
        self.cache: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True):
        self.mode_calls += 1
        self.cache = {}
        return super().train(mode)

    def forward(self, x):
        bias = self.bias * 2 if self.training else self.cache.setdefault("bias", self.bias * 2)
        return self.head((self.conv(x) + bias).mean(dim=(2, 3)))


def test_a_model_in_eval_mode_is_left_alone_and_can_be_deep_copied():
    model = CountsModeChanges().eval()
    calls = model.mode_calls
    x = images()
    got = gw.gradcam(model, x, [0, 1], "conv")
    assert model.mode_calls == calls  # no eval() call
    assert not model.training
    clone = copy.deepcopy(model)  # fails if a graph-attached tensor was cached
    np.testing.assert_allclose(gw.gradcam(clone, x, [0, 1], "conv"), got, atol=1e-6)
    np.testing.assert_allclose(got, captum_gradcam(model, model.conv, x, [0, 1]), atol=1e-6)


def test_a_training_model_gets_train_back_with_its_side_effects():
    model = CountsModeChanges().train()
    gw.gradcam(model, images(), 0, "conv")
    assert model.training
    assert model.mode_calls > 1
    assert model.cache == {}  # train() ran again and emptied the cache
    copy.deepcopy(model)


def test_keras_softmax_inside_call_is_refused_too():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")

    class SoftmaxInCall(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return keras.ops.softmax(self.dense(self.pool(self.conv(x))), axis=-1)

    model = SoftmaxInCall()
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="Pass the logits"):
        gw.gradcam(model, x, 1, "conv")
    assert gw.gradcam(model, x, 1, "conv", allow_probabilities=True).shape == (2, 6, 6)
