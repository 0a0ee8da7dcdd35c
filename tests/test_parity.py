"""The same small CNN in PyTorch and in Keras, with the same weights, gives the same maps."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402


def twin_models(head: str):
    torch.manual_seed(0)
    body = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU()]
    if head == "gap":
        torch_head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5)]
        keras_head = [layers.GlobalAveragePooling2D(), layers.Dense(5, name="dense")]
    else:
        torch_head = [nn.Flatten(), nn.Linear(6 * 6 * 6, 5)]
        keras_head = [layers.Flatten(), layers.Dense(5, name="dense")]
    torch_model = nn.Sequential(*body, *torch_head)
    keras_model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.Conv2D(4, 3, padding="same", name="conv1"),
            layers.ReLU(name="relu1"),
            layers.Conv2D(6, 3, name="conv2"),
            layers.ReLU(name="relu2"),
            *keras_head,
        ]
    )
    conv1, conv2, dense = torch_model[0], torch_model[2], torch_model[-1]

    def kernel(conv):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return conv.weight.detach().numpy().transpose(2, 3, 1, 0)

    dense_weight = dense.weight.detach().numpy()  # (classes, features)
    if head == "flatten":  # torch flattens (c, h, w); Keras (h, w, c)
        dense_weight = dense_weight.reshape(5, 6, 6, 6).transpose(0, 2, 3, 1).reshape(5, -1)
    keras_model.get_layer("conv1").set_weights([kernel(conv1), conv1.bias.detach().numpy()])
    keras_model.get_layer("conv2").set_weights([kernel(conv2), conv2.bias.detach().numpy()])
    keras_model.get_layer("dense").set_weights([dense_weight.T, dense.bias.detach().numpy()])
    return torch_model, keras_model


@pytest.mark.parametrize("head", ["gap", "flatten"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam"])
def test_same_weights_same_maps(head, method):
    torch_model, keras_model = twin_models(head)
    x_nhwc = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype(np.float32)
    x_nchw = torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy())
    np.testing.assert_allclose(
        gw.predict(torch_model, x_nchw), gw.predict(keras_model, x_nhwc), rtol=1e-4, atol=1e-5
    )
    torch_maps = gw.gradcam(torch_model, x_nchw, [0, 2, 4], ["0", "3"], method=method)
    keras_maps = gw.gradcam(keras_model, x_nhwc, [0, 2, 4], ["conv1", "relu2"], method=method)
    for torch_name, keras_name in [("0", "conv1"), ("3", "relu2")]:
        scale = max(float(np.abs(torch_maps[torch_name]).max()), 1e-12)
        np.testing.assert_allclose(
            torch_maps[torch_name] / scale, keras_maps[keras_name] / scale, atol=1e-4
        )


def test_hirescam_equals_gradcam_on_a_gap_head_and_differs_on_flatten():
    for head in ["gap", "flatten"]:
        model, _ = twin_models(head)
        x = torch.from_numpy(np.random.default_rng(3).normal(size=(2, 3, 8, 8)).astype(np.float32))
        grad = gw.gradcam(model, x, target=1, layer="3")
        hires = gw.gradcam(model, x, target=1, layer="3", method="hirescam")
        same = np.allclose(grad, hires, rtol=1e-4, atol=1e-6)
        assert same == (head == "gap")
