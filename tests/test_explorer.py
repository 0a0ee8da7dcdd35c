"""The Explorer without a browser: set each control's ``.value`` and look at ``.view``."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from models import flatten_net, gap_net
from PIL import Image
from torch import nn

import gradcam_widgets as gw
from gradcam_widgets import explorer as explorer_module
from gradcam_widgets import render


def batch(side: int = 16, channels: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, side, side, generator=generator)


def decode(png: bytes) -> np.ndarray:
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    return np.asarray(picture.convert("RGB"))


CONTROLS = ("method", "layer", "target", "contrast", "evidence", "colormap", "alpha")


def state(ex: gw.Explorer) -> dict:
    return {name: getattr(ex, name).value for name in CONTROLS}


def set_state(ex: gw.Explorer, values: dict) -> None:
    for name in CONTROLS:  # method first: CAM moves the layer slider
        getattr(ex, name).value = values[name]


@pytest.fixture
def net():
    return gap_net()


@pytest.fixture
def ex(net):
    return gw.Explorer(net, batch(), top_k=3)


# ----------------------------------------------------------------- controls


def test_is_a_vbox_with_named_controls(ex):
    import ipywidgets as widgets

    assert isinstance(ex, widgets.VBox)
    assert isinstance(ex.layer, widgets.SelectionSlider)
    assert isinstance(ex.alpha, widgets.FloatSlider)
    assert (ex.alpha.min, ex.alpha.max) == (0.0, 1.0)
    assert isinstance(ex.view, widgets.Image)
    assert isinstance(ex.caption, widgets.HTML)
    values = [value for _, value in ex.layer.options]
    assert values == gw.candidate_layers(gap_net(), batch()) == ["0", "1", "2", "3"]
    assert [label for label, _ in ex.layer.options] == [
        "0 (16x16)",
        "1 (16x16)",
        "2 (8x8)",
        "3 (8x8)",
    ]
    assert ex.layer.value == "3"  # the last, most class-specific layer
    assert isinstance(ex.target.value, int)
    decode(ex.view.value)
    decode(ex.heatmap.value)


@pytest.mark.parametrize(
    ("control", "value"),
    [
        ("layer", "0"),
        ("target", 4),
        ("alpha", 0.9),
        ("colormap", "jet"),
        ("alpha", 0.0),
        ("evidence", "against"),
        ("contrast", 2),
        ("method", "gradcam++"),  # (HiResCAM equals Grad-CAM at a GAP layer)
    ],
)
def test_setting_a_control_redraws_the_view(ex, control, value):
    before = ex.view.value
    if control in ("target", "contrast") and value == ex.target.value:
        value = 5
    getattr(ex, control).value = value
    assert ex.view.value != before
    picture = decode(ex.view.value)
    assert picture.shape[2] == 3
    assert ex.message.value == ""


def test_view_is_render_overlay_of_the_current_map(ex):
    ex.layer.value = "1"
    ex.alpha.value = 0.35
    ex.colormap.value = "magma"
    scale = ex._scale
    picture = decode(ex.view.value)[::scale, ::scale]
    image = render.image_from_inputs(batch(), channels_first=True)
    expected = render.overlay(image, ex.current_map, alpha=0.35, colormap="magma")
    np.testing.assert_array_equal(picture, expected)
    heat = decode(ex.heatmap.value)[::scale, ::scale]
    resized = render.resize_map(ex.current_map, image.shape[:2])
    np.testing.assert_array_equal(heat, render.colorize(resized, "magma"))


def test_current_map_is_the_engines_map(net, ex):
    ex.target.value = 2
    ex.layer.value = "1"
    np.testing.assert_allclose(
        ex.current_map, gw.gradcam(net, batch(), target=2, layer="1")[0], rtol=1e-5, atol=1e-6
    )


def test_caption_names_layer_resolution_class_score_probability():
    names = ["ant", "bee", "cat", "dog", "eel", "fox"]
    ex = gw.Explorer(gap_net(), batch(), class_names=names, top_k=3)
    ex.layer.value = "3"
    ex.target.value = 3
    caption = ex.caption.value
    assert "<code>3</code> (8x8)" in caption
    assert "3: dog" in caption
    assert f"score {ex.scores[3]:.2f}" in caption
    assert "probability" in caption
    assert "%" in caption


def test_top_k_classes_come_first_with_probabilities():
    names = ["ant", "bee", "cat", "dog", "eel", "fox"]
    ex = gw.Explorer(gap_net(), batch(), class_names=names, top_k=3)
    options = list(ex.target.options)
    order = np.argsort(-ex.probabilities)
    assert [value for _, value in options[:3]] == [int(c) for c in order[:3]]
    for label, value in options[:3]:
        assert label.startswith(names[value] + " (")
        assert label.endswith("%)")
    assert sorted(value for _, value in options) == list(range(6))  # every class reachable
    assert ex.target.value == int(order[0])


def test_any_class_reachable_by_value_name_or_number():
    names = {0: "ant", 1: "bee", 2: "cat", 3: "dog", 4: "eel", 5: "fox"}
    ex = gw.Explorer(gap_net(), batch(), class_names=names, top_k=1)
    for cls in range(6):
        ex.target.value = cls
        assert f"{cls}: {names[cls]}" in ex.caption.value
    ex.find.value = "Eel"
    assert ex.target.value == 4
    assert ex.find.value == ""
    ex.find.value = "2"
    assert ex.target.value == 2
    ex.find.value = "#5"
    assert ex.target.value == 5
    ex.find.value = "o"  # dog, fox: ambiguous
    assert ex.target.value == 5
    assert "2 classes match" in ex.message.value
    ex.find.value = "17"
    assert ex.target.value == 5
    assert "no class 17" in ex.message.value


# ----------------------------------------------------------------- CAM


def test_cam_offered_for_a_gap_head_and_only_at_its_layer(ex):
    assert ex.cam_layer == "3"
    assert [value for _, value in ex.method.options] == ["gradcam", "gradcam++", "hirescam", "cam"]
    ex.layer.value = "1"
    before = ex.view.value
    ex.method.value = "cam"
    assert ex.layer.value == "3"  # CAM lives at the pooled layer: the slider goes there
    assert "CAM (evidence for) of class" in ex.caption.value
    assert ex.view.value != before
    decode(ex.view.value)
    ex.layer.value = "0"
    assert "CAM exists only at layer" in ex.caption.value
    assert ex.message.value == ""
    with pytest.raises(ValueError, match="only at layer"):
        ex.current_map  # noqa: B018


def test_cam_and_gradcam_draw_the_same_picture_on_a_gap_net(ex):
    # Grad-CAM = ReLU(CAM) / Z on a GAP head, and the picture is normalised: same pixels.
    gradcam_png = decode(ex.view.value).astype(int)
    ex.method.value = "cam"
    assert np.abs(decode(ex.view.value).astype(int) - gradcam_png).max() <= 1


def test_cam_not_offered_for_a_flatten_head():
    ex = gw.Explorer(flatten_net(), batch())
    assert ex.cam_layer is None
    assert [value for _, value in ex.method.options] == ["gradcam", "gradcam++", "hirescam"]


# ----------------------------------------------------------------- speed by design


class CountCalls:
    def __init__(self, model: nn.Module):
        self.count = 0
        self.handle = model.register_forward_pre_hook(self.hook)

    def hook(self, module, args):
        self.count += 1

    def remove(self):
        self.handle.remove()


def test_alpha_colormap_and_layer_never_call_the_model(net):
    ex = gw.Explorer(net, batch(), top_k=3)
    counter = CountCalls(net)
    try:
        for alpha in np.linspace(0, 1, 21):
            ex.alpha.value = float(alpha)
        for colormap in ("viridis", "gray", "jet"):
            ex.colormap.value = colormap
        for layer in ex.layers:  # every layer came with the first class's one call
            ex.layer.value = layer
        assert counter.count == 0
        new = next(c for c in range(6) if c != ex.target.value)
        first = ex.target.value
        calls_before = ex.engine_calls
        ex.target.value = new  # one engine call: one forward for every layer
        assert counter.count == 1
        assert ex.engine_calls == calls_before + 1
        for layer in ex.layers:
            ex.layer.value = layer
        ex.alpha.value = 0.3
        ex.target.value = first  # seen before: cached
        ex.target.value = new
        assert counter.count == 1
    finally:
        counter.remove()


def test_construction_uses_few_engine_calls(net):
    counter = CountCalls(net)
    try:
        gw.Explorer(net, batch(), top_k=5)
    finally:
        counter.remove()
    # the layer-shape probe, then one pass: the scores, every layer's maps, the CAM check
    assert counter.count <= 2


# ----------------------------------------------------------------- robustness


def test_burst_of_300_events_ends_in_the_final_state(net):
    rng = random.Random(0)
    ex = gw.Explorer(net, batch(), top_k=2)
    choices = {
        "layer": list(ex.layers),
        "target": list(range(6)),
        "alpha": [round(a, 2) for a in np.linspace(0, 1, 21)],
        "colormap": list(explorer_module.COLORMAPS),
        "method": ["gradcam", "cam", "gradcam++"],
        "contrast": [None, 0, 3],
        "evidence": ["for", "against"],
    }
    for _ in range(300):
        name = rng.choice(list(choices))
        getattr(ex, name).value = rng.choice(choices[name])
    final = state(ex)
    fresh = gw.Explorer(net, batch(), top_k=2)
    set_state(fresh, final)
    assert state(fresh) == final
    assert fresh.view.value == ex.view.value
    assert fresh.heatmap.value == ex.heatmap.value
    assert fresh.caption.value == ex.caption.value
    assert ex.message.value == ""


def test_model_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 6),
    )
    model.train()
    model[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    requires = [p.requires_grad for p in model.parameters()]
    ex = gw.Explorer(model, batch(), top_k=3)
    ex.method.value = "cam"
    ex.method.value = "gradcam"
    for layer in ex.layers:
        ex.layer.value = layer
    for cls in range(6):
        ex.target.value = cls
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert [m.training for m in model.modules()] == flags
    assert [p.requires_grad for p in model.parameters()] == requires
    assert all(p.grad is None for p in model.parameters())
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
        assert not module._backward_hooks
    assert torch.is_grad_enabled()


def test_error_in_a_callback_is_shown_in_the_widget(ex, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the engine broke on purpose")

    monkeypatch.setattr(gw.engine, "explain", broken)
    view = ex.view.value
    new = next(c for c in range(6) if c not in ex.top_classes)
    ex.target.value = new  # must not raise: the error goes to the widget
    assert "the engine broke on purpose" in ex.message.value
    assert "RuntimeError" in ex.message.value
    assert isinstance(ex.last_error, RuntimeError)
    assert ex.view.value == view
    monkeypatch.undo()
    ex.alpha.value = 0.2  # the next good event clears the message
    assert ex.message.value == ""
    assert ex.last_error is None
    assert f"<b>{new}</b>" in ex.caption.value


def test_bad_arguments_raise_clearly(net):
    with pytest.raises(ValueError, match="shows one"):
        gw.Explorer(net, torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="class_names has 2 names"):
        gw.Explorer(net, batch(), class_names=["a", "b"])
    with pytest.raises(ValueError, match="unknown layer"):
        gw.Explorer(net, batch(), layers=["0", "nope"])
    with pytest.raises(TypeError):
        gw.Explorer(object(), batch())


# ----------------------------------------------------------------- pictures


def test_image_from_inputs_transposes_and_rescales():
    x = np.zeros((1, 3, 4, 5), dtype=np.float32)
    x[0, 0] = -2.0
    x[0, 2, 1, 1] = 3.0
    picture = render.image_from_inputs(x, channels_first=True)
    assert picture.shape == (4, 5, 3)
    assert picture.min() == 0.0
    assert picture.max() == 1.0
    assert picture[1, 1, 2] == 1.0
    gray = render.image_from_inputs(np.ones((1, 6, 7, 1)), channels_first=False)
    assert gray.shape == (6, 7)
    assert not gray.any()  # constant: all zero, no NaN
    with pytest.raises(ValueError, match="shows one"):
        render.image_from_inputs(np.zeros((2, 3, 4, 4)), channels_first=True)


def test_mnist_sized_grayscale_input_is_scaled_up():
    digits, _ = gw.datasets.load_mnist("test")
    x = torch.from_numpy(digits[:1, None].astype(np.float32) / 255.0)
    ex = gw.Explorer(gap_net(in_channels=1, classes=10), x)
    picture = decode(ex.view.value)
    assert picture.shape[0] >= 250
    assert picture.shape[0] % 28 == 0
    assert picture.shape[:2] == decode(ex.heatmap.value).shape[:2]
    ex.alpha.value = 0.0  # the digit alone, in gray, enlarged by nearest neighbour
    plain = picture = decode(ex.view.value)
    scale = plain.shape[0] // 28
    np.testing.assert_array_equal(plain[::scale, ::scale, 0], digits[0])
    assert (plain[..., 0] == plain[..., 1]).all()


def test_given_image_is_drawn_and_large_ones_shrink():
    picture = gw.data.sample_image("chelsea")  # 300 x 451
    ex = gw.Explorer(gap_net(), batch(), image=picture)
    shown = decode(ex.view.value)
    assert max(shown.shape[:2]) == explorer_module.DISPLAY_SIZE
    assert shown.shape[1] > shown.shape[0]  # landscape, like the photo
    ex.alpha.value = 0.0
    plain = decode(ex.view.value).astype(float)
    small = np.asarray(Image.fromarray(picture).resize(plain.shape[1::-1])).astype(float)
    assert np.abs(plain - small).mean() < 3.0


# ----------------------------------------------------------------- Keras


@pytest.fixture(scope="module")
def keras_net():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_keras_model(keras_net):
    x = np.random.default_rng(0).random((1, 12, 12, 3)).astype(np.float32)
    weights = [w.copy() for w in keras_net.get_weights()]
    ex = gw.Explorer(keras_net, x, top_k=2)
    assert ex.layers == ["c1", "c2"]
    assert ex.cam_layer == "c2"
    assert decode(ex.view.value).shape[:2] == (12 * ex._scale, 12 * ex._scale)
    for control, value in [
        ("layer", "c1"),
        ("target", 3),
        ("alpha", 0.8),
        ("colormap", "gray"),
        ("evidence", "against"),
    ]:
        before = ex.view.value
        if control == "target" and ex.target.value == 3:
            value = 4
        getattr(ex, control).value = value
        assert ex.view.value != before, control
    ex.evidence.value = "for"
    ex.method.value = "cam"
    assert ex.layer.value == "c2"
    assert "CAM (evidence for) of class" in ex.caption.value
    np.testing.assert_allclose(
        ex.current_map,
        np.maximum(gw.cam(keras_net, x, target=ex.target.value, layer="c2")[0], 0),
        rtol=1e-5,
    )
    assert ex.message.value == ""
    for a, b in zip(weights, keras_net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert keras_net.layers[-1].activation.__name__ == "softmax"


def test_maps_returns_every_layer_for_a_class(net, ex):
    maps = ex.maps(target=2)
    assert list(maps) == ex.layers
    expected = gw.gradcam(net, batch(), target=2, layer=ex.layers)
    for name in ex.layers:
        np.testing.assert_allclose(maps[name], expected[name][0], rtol=1e-5, atol=1e-6)
    assert list(ex.maps(method="cam")) == ["3"]
    with pytest.raises(ValueError, match="not 'nope'"):
        ex.maps(method="nope")
    against = ex.maps(target=2, evidence="against", contrast=4)
    expected = gw.gradcam(net, batch(), target=2, layer=ex.layers, contrast=4, evidence="against")
    for name in ex.layers:
        np.testing.assert_allclose(against[name], expected[name][0], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- Explorer 2


def test_contrast_is_off_by_default_and_shows_off(ex):
    assert ex.contrast.value is None
    assert ex.contrast.label == "off"
    ex.contrast.value = 2 if ex.target.value != 2 else 3
    assert "rather than" in ex.caption.value
    ex.contrast.value = None
    assert ex.contrast.label == "off"  # not an empty box
    assert "rather than" not in ex.caption.value


def test_evidence_toggle_and_pin_never_call_the_model(net):
    ex = gw.Explorer(net, batch(), top_k=3)
    counter = CountCalls(net)
    try:
        live = ex.view.value
        ex.pin()
        assert ex.pinned == {**ex.settings.as_dict()}
        pinned_png = ex.pinned_view.value
        assert decode(pinned_png).shape == decode(live).shape
        ex.evidence.value = "against"
        assert ex.view.value != live
        assert ex.pinned_view.value == pinned_png  # the pinned view stays as it was
        assert ex.pinned["evidence"] == "for"
        for method in ("gradcam++", "hirescam", "cam", "gradcam"):
            ex.method.value = method
        ex.alpha.value = 0.8
        assert counter.count == 0
    finally:
        counter.remove()
    assert "Pinned beside it" in ex.caption.value
    assert ex._pinned_box.layout.display != "none"
    ex.unpin()
    assert ex.pinned is None
    assert ex._pinned_box.layout.display == "none"
    assert "Pinned beside it" not in ex.caption.value


def test_pin_button_toggles(ex):
    ex.pin_button.click()
    assert ex.pinned is not None
    assert ex.pin_button.description == "unpin"
    ex.pin_button.click()
    assert ex.pinned is None
    assert ex.pin_button.description == "pin this view"


def test_alpha_observer_only_reblends(ex, monkeypatch):
    caption, heat = ex.caption.value, ex.heatmap.value
    calls = []
    original = ex.state.caption
    monkeypatch.setattr(ex.state, "caption", lambda s: calls.append(s) or original(s))
    ex.alpha.value = 0.15
    assert calls == []
    assert ex.caption.value == caption
    assert ex.heatmap.value == heat
    ex.colormap.value = "jet"
    assert calls == []
    assert ex.heatmap.value != heat


def test_faithfulness_shows_in_the_caption_and_is_cached(net, ex):
    scores = ex.faithfulness(steps=8)
    assert set(scores) == {"deletion", "insertion"}
    assert 0.0 <= scores["deletion"] <= 1.0
    assert 0.0 <= scores["insertion"] <= 1.0
    assert f"deletion AUC <b>{scores['deletion']:.3f}</b>" in ex.caption.value
    counter = CountCalls(net)
    try:
        assert ex.faithfulness(steps=8) == scores
        assert counter.count == 0
    finally:
        counter.remove()
    ex.faithfulness_button.click()  # the default 32 steps, with the reference maps
    assert "random map" in ex.caption.value
    assert ex.message.value == ""


def test_rich_output_carries_a_png_of_the_view(ex):
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Explorer(children=(SelectionSlider(")
    picture = decode(bundle["image/png"])
    live = decode(ex.view.value)
    assert picture.shape[0] == live.shape[0]
    np.testing.assert_array_equal(picture[:, : live.shape[1]], live)
    ex.pin()
    wider = decode(ex._repr_mimebundle_()["image/png"])
    assert wider.shape[1] > picture.shape[1]


def test_export(ex, tmp_path):
    import json

    ex.evidence.value = "against"
    png, manifest = ex.export(tmp_path / "figure.png")
    assert decode(png.read_bytes()).shape == decode(ex.view.value).shape
    assert json.loads(manifest.read_text())["evidence"] == "against"


def test_export_of_a_large_photo_is_at_its_own_size(tmp_path):
    picture = gw.data.sample_image("chelsea")  # 300 x 451, shown at 320 wide
    ex = gw.Explorer(gap_net(), batch(), image=picture)
    png, _ = ex.export(tmp_path / "photo.png")
    written = np.asarray(Image.open(png).convert("RGB"))
    expected = render.overlay(picture, ex.current_map, alpha=0.5, colormap="viridis")
    np.testing.assert_array_equal(written, expected)


def test_a_registered_method_is_offered(net, monkeypatch):
    from gradcam_widgets.methods import METHODS, Method

    class MinGrad(Method):
        """A toy: each channel weighed by its smallest gradient."""

        name, label, paper = "mingrad", "Min-Grad", "a test"

        def channel_weights(self, activations, gradients):
            return gradients.min(axis=(2, 3))

    monkeypatch.setitem(METHODS, "mingrad", MinGrad())
    ex = gw.Explorer(net, batch())
    assert ("Min-Grad", "mingrad") in ex.method.options
    ex.method.value = "mingrad"
    assert "Min-Grad" in ex.caption.value
    assert ex.message.value == ""
    np.testing.assert_allclose(
        ex.current_map,
        gw.gradcam(net, batch(), target=ex.target.value, layer=ex.layer.value, method="mingrad")[0],
        rtol=1e-5,
        atol=1e-7,
    )


def test_every_control_is_a_standard_keyboard_operable_widget(ex):
    import ipywidgets as widgets

    controls = [
        ex.layer,
        ex.target,
        ex.find,
        ex.method,
        ex.evidence,
        ex.contrast,
        ex.alpha,
        ex.colormap,
        ex.pin_button,
        ex.faithfulness_button,
    ]
    focusable = (
        widgets.SelectionSlider,
        widgets.FloatSlider,
        widgets.Dropdown,
        widgets.Combobox,
        widgets.ToggleButtons,
        widgets.Button,
    )
    for control in controls:
        assert type(control) in focusable, type(control)  # no custom view without focus
        assert not control.disabled
        assert control.description or getattr(
            control, "placeholder", ""
        )  # a name screen readers read


def test_on_a_vit_the_slider_starts_at_the_default_layer():
    # The last candidates of a class-token ViT act token by token after the last
    # attention: their maps are empty, so the slider starts where the class token reads.
    from archs import TinyViT

    model = TinyViT().eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ex = gw.Explorer(model, x)
    default = gw.engine.default_layer(model, x)
    assert default == "blocks.1.norm1" != ex.layers[-1]
    assert ex.layer.value == default
    assert np.any(ex.current_map > 0)
    assert not np.any(gw.gradcam(model, x, ex.target.value, ex.layers[-1]))
    # Layers given without the default: the last of them, as on a CNN.
    assert gw.Explorer(model, x, layers=["blocks.0.norm1", "norm"]).layer.value == "norm"
