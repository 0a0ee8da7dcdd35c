"""Grad-CAM on PyTorch models: exact values, captum agreement, the robustness matrix."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from models import captum_gradcam, small_cnn  # noqa: E402
from models import torch_images as images  # noqa: E402
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402

# --------------------------------------------------------------------------- helpers


def hand_set_model() -> nn.Sequential:
    """1x1 conv with weights [1, 2] (A^1 = x, A^2 = 2x), flatten, dense to 3 classes.

    Flatten order (channel, row, col): index 0..3 is channel 1, 4..7 channel 2.
    """
    conv = nn.Conv2d(1, 2, kernel_size=1, bias=False)
    dense = nn.Linear(8, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0]).reshape(2, 1, 1, 1))
        dense.weight.copy_(
            torch.tensor(
                [
                    [1, 0, 0, 0, 0, 0, 0, 1],
                    [0, 0, 0, -2, 1, 1, 1, 1],
                    [-4, -4, -4, -4, 1, 1, 1, 1],
                ],
                dtype=torch.float32,
            )
        )
    return nn.Sequential(conv, nn.Flatten(), dense)


X_HAND = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad_enabled": torch.is_grad_enabled(),
    }


def assert_untouched(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key
    assert before["training"] == after["training"]
    assert before["requires_grad"] == after["requires_grad"]
    assert before["grad_enabled"] == after["grad_enabled"]
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
        assert not module._backward_hooks
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------- exact values


def test_hand_set_model_exact_maps():
    model = hand_set_model()
    # Class 0: dy/dA = [1,0,0,0] and [0,0,0,1] -> alpha = (1/4, 1/4);
    # L = ReLU(x/4 + 2x/4) = 0.75 x.
    np.testing.assert_allclose(gw.gradcam(model, X_HAND, target=0)[0], 0.75 * X_HAND[0, 0])
    # Class 1: alpha = (-2/4, 4/4) -> L = ReLU(-x/2 + 2x) = 1.5 x.
    np.testing.assert_allclose(gw.gradcam(model, X_HAND, target=1)[0], 1.5 * X_HAND[0, 0])
    # Class 2: alpha = (-4, 1) -> -4x + 2x < 0 everywhere -> ReLU gives zeros.
    np.testing.assert_array_equal(gw.gradcam(model, X_HAND, target=2)[0], np.zeros((2, 2)))


def test_hand_set_model_default_target_is_top_class():
    model = hand_set_model()
    # Scores: y0 = 1 + 2*4 = 9, y1 = -2*4 + 2*10 = 12, y2 = -40 + 20 = -20: top is 1.
    np.testing.assert_allclose(gw.predict(model, X_HAND)[0], [9.0, 12.0, -20.0])
    np.testing.assert_allclose(gw.gradcam(model, X_HAND)[0], 1.5 * X_HAND[0, 0])


def test_result_type_and_shape():
    heatmaps = gw.gradcam(small_cnn(), images(3))
    assert heatmaps.dtype == np.float32
    assert heatmaps.shape == (3, 6, 6)


# --------------------------------------------------------------------------- captum


@pytest.mark.parametrize("layer_index", [0, 2])
@pytest.mark.parametrize("target", [0, 3, [1, 4]])
def test_matches_captum_layer_gradcam(layer_index, target):
    model, x = small_cnn(), images(2)
    ours = gw.gradcam(model, x, target=target, layer=str(layer_index))
    theirs = captum_gradcam(model, model[layer_index], x, target)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_many_layers_in_one_call_equal_single_calls():
    model, x = small_cnn(), images(2)
    together = gw.gradcam(model, x, target=2, layer=["0", "1", "2", "3"])
    assert list(together) == ["0", "1", "2", "3"]
    for name, heatmap in together.items():
        np.testing.assert_allclose(heatmap, gw.gradcam(model, x, target=2, layer=name), atol=1e-6)


def test_many_layers_use_one_forward_pass():
    model, x = small_cnn(), images(2)
    gw.candidate_layers(model, x)  # the layer description is cached after this
    calls = []
    handle = model.register_forward_hook(lambda *args: calls.append(1))
    try:
        gw.gradcam(model, x, layer=["0", "2"])
    finally:
        handle.remove()
    assert len(calls) == 1


def test_gradcam_multi_matches_separate_calls_in_one_forward():
    model, x = small_cnn(), images(2)
    results = gw.gradcam_multi(model, x, [0, 1, None], layer="2")
    for target, result in zip([0, 1, None], results):
        np.testing.assert_allclose(result["2"], gw.gradcam(model, x, target=target, layer="2"))


def test_candidate_layers_in_forward_order():
    assert gw.candidate_layers(small_cnn(), images(1)) == ["0", "1", "2", "3"]


# --------------------------------------------------------------------------- GAP identity


def test_gradcam_equals_cam_over_z_on_gap_network():
    model, x = small_cnn(), images(3)
    cam = gw.cam(model, x, target=[0, 2, 4])
    grad = gw.gradcam(model, x, target=[0, 2, 4], layer="3")
    z = 6 * 6
    np.testing.assert_allclose(grad * z, np.maximum(cam, 0.0), rtol=1e-4, atol=1e-5)


def test_cam_by_hand():
    model, x = small_cnn(), images(1)
    with torch.no_grad():
        feature_maps = model[:4](x)[0].numpy()
    weights = model[6].weight.detach().numpy()[3]
    expected = np.tensordot(weights, feature_maps, axes=1)
    np.testing.assert_allclose(gw.cam(model, x, target=3)[0], expected, rtol=1e-5, atol=1e-6)


def test_cam_refuses_flatten_head():
    with pytest.raises(ValueError, match="global average"):
        gw.cam(hand_set_model(), X_HAND)


def test_cam_refuses_a_layer_that_is_not_pooled():
    with pytest.raises(ValueError, match="global average of the maps of layer '0'"):
        gw.cam(small_cnn(), images(1), layer="0")


# --------------------------------------------------------------------------- robustness


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + self.conv2(torch.relu(self.conv1(h)))
        return self.head(h.mean(dim=(2, 3)))


def test_custom_forward_with_residual_add_matches_captum():
    model, x = Residual(), images(2)
    assert gw.candidate_layers(model, x) == ["stem", "conv1", "conv2"]
    for name in ["stem", "conv2"]:
        ours = gw.gradcam(model, x, target=1, layer=name)
        np.testing.assert_allclose(
            ours, captum_gradcam(model, getattr(model, name), x, 1), rtol=1e-5, atol=1e-6
        )


def test_inplace_relu_after_layer_uses_the_layer_output():
    plain, x = small_cnn(), images(2)
    inplace = copy.deepcopy(plain)
    inplace[1] = nn.ReLU(inplace=True)
    inplace[3] = nn.ReLU(inplace=True)
    before = snapshot(inplace)
    expected = captum_gradcam(plain, plain[2], x, 2)
    np.testing.assert_allclose(gw.gradcam(inplace, x, target=2, layer="2"), expected, atol=1e-6)
    np.testing.assert_allclose(gw.gradcam(plain, x, target=2, layer="2"), expected, atol=1e-6)
    assert_untouched(inplace, before)


def test_frozen_parameters():
    model, x = small_cnn(), images(2)
    expected = gw.gradcam(model, x, target=1)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    before = snapshot(model)
    np.testing.assert_allclose(gw.gradcam(model, x, target=1), expected)
    np.testing.assert_allclose(gw.gradcam(model, x, target=1, layer=["0", "3"])["3"], expected)
    assert_untouched(model, before)


def test_called_inside_no_grad():
    model, x = small_cnn(), images(2)
    expected = gw.gradcam(model, x, target=1)
    with torch.no_grad():
        result = gw.gradcam(model, x, target=1)
        assert not torch.is_grad_enabled()
    np.testing.assert_allclose(result, expected)


def test_train_mode_model_computed_in_eval_mode_and_flags_restored():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Conv2d(4, 4, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4, 3),
    )
    x = images(4)
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        model(x * 3 + 1)
    model.eval()
    expected = captum_gradcam(model, model[4], x, 0)
    model.train()
    model[1].eval()  # a mixed state must come back exactly as it was
    before = snapshot(model)
    results = [gw.gradcam(model, x, target=0, layer="4") for _ in range(3)]
    for result in results:  # Dropout off and BatchNorm on running stats: deterministic
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    assert_untouched(model, before)
    assert model.training
    assert not model[1].training


def test_final_softmax_uses_the_pre_softmax_score():
    model, x = small_cnn(), images(2)
    with_softmax = nn.Sequential(*model, nn.Softmax(dim=1))
    before = snapshot(with_softmax)
    np.testing.assert_allclose(
        gw.gradcam(with_softmax, x, target=3), gw.gradcam(model, x, target=3), atol=1e-6
    )
    np.testing.assert_allclose(gw.predict(with_softmax, x), gw.predict(model, x), atol=1e-6)
    assert_untouched(with_softmax, before)
    assert isinstance(with_softmax[-1], nn.Softmax)


def test_module_called_twice_is_not_a_candidate():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.relu = nn.ReLU()
            self.head = nn.Linear(3, 2)

        def forward(self, x):
            h = self.relu(self.conv(self.relu(x)))
            return self.head(h.mean(dim=(2, 3)))

    model = Shared()
    assert gw.candidate_layers(model, images(1)) == ["conv"]
    with pytest.raises(ValueError, match="runs 2 times"):
        gw.gradcam(model, images(1), layer="relu")


def test_single_image_without_batch_axis_and_numpy_input():
    model, x = small_cnn(), images(1)
    expected = gw.gradcam(model, x)
    np.testing.assert_allclose(gw.gradcam(model, x[0]), expected)
    np.testing.assert_allclose(gw.gradcam(model, x.numpy()), expected)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "inputs", "message"),
    [
        ({"layer": "nope"}, images(2), r"unknown layer 'nope'. Candidate layers: 0, 1, 2, 3"),
        ({"layer": "6"}, images(2), r"layer '6' has output shape \(1, 5\), not a spatial"),
        ({"layer": "4"}, images(2), r"layer '4' has output shape \(1, 6, 1, 1\)"),
        ({"target": 5}, images(2), r"class 5 is out of range: the model has 5 classes"),
        ({"target": -1}, images(2), r"negative"),
        ({"target": [1, 2, 3]}, images(2), r"3 classes for a batch of 2 images"),
        ({}, images(2)[:, :2], r"2 channels on axis 1 but the model's first convolution"),
        ({}, images(2).permute(0, 2, 3, 1), r"channels-last"),
        ({}, images(2)[0, 0], r"give a batch \(N, C, H, W\)"),
        ({}, images(2, size=2), r"could not run on inputs of shape \(1, 3, 2, 2\)"),
        ({}, images(2)[:0], r"empty batch"),
        ({}, images(2) * float("nan"), r"NaN"),
        ({"method": "gradcam3"}, images(2), r"unknown method"),
    ],
)
def test_bad_input_gives_clear_error_and_changes_nothing(kwargs, inputs, message):
    model = small_cnn()
    model.train()
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        gw.gradcam(model, inputs, **kwargs)
    assert_untouched(model, before)


def test_error_raised_after_the_forward_pass_leaves_the_model_untouched():
    model = nn.Sequential(*small_cnn(), nn.Softmax(dim=1))
    model.train()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    gw.candidate_layers(model, images(2))
    before = snapshot(model)
    with pytest.raises(ValueError, match="out of range"):
        gw.gradcam(model, images(2), target=99, layer=["0", "2"])
    assert_untouched(model, before)


def test_model_of_another_framework_is_refused():
    with pytest.raises(TypeError, match=r"torch\.nn\.Module and keras\.Model"):
        gw.gradcam(object(), np.zeros((1, 3, 4, 4)))


def test_non_classifier_output_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 2, 3))
    with pytest.raises(ValueError, match=r"\(batch, classes\)"):
        gw.gradcam(model, images(1))
