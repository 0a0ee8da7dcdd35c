"""The Explorer's state without ipywidgets: maps, caches, captions, pin, faithfulness, export."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from models import gap_net
from PIL import Image
from torch import nn

import gradcam_widgets as gw
from gradcam_widgets import render
from gradcam_widgets.classes import ClassLookupError
from gradcam_widgets.explorer_state import ExplorerState, Settings
from gradcam_widgets.methods import METHODS, Method
from gradcam_widgets.metrics import faithfulness as fm

REPO = Path(__file__).resolve().parents[1]


def batch(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


class CountForwards:
    def __init__(self, model: nn.Module):
        self.count = 0
        self.handle = model.register_forward_pre_hook(self.hook)

    def hook(self, module, args):
        self.count += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.fixture
def net():
    return gap_net()


@pytest.fixture
def state(net):
    return ExplorerState(
        net, batch(), top_k=3, class_names=["ant", "bee", "cat", "dog", "eel", "fox"]
    )


def settings(state: ExplorerState, **changes) -> Settings:
    base = Settings(layer=state.layers[-1], target=state.top_classes[0])
    return Settings(**{**base.as_dict(), **changes})


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# ----------------------------------------------------------------- no widgets needed


def test_state_imports_and_runs_without_ipywidgets():
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import torch\n"
        "from torch import nn\n"
        "from gradcam_widgets.explorer_state import ExplorerState, Settings\n"
        "net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),"
        " nn.Flatten(), nn.Linear(4, 3)).eval()\n"
        "s = ExplorerState(net, torch.rand(1, 3, 8, 8))\n"
        "v = Settings(layer=s.layers[-1], target=0, evidence='against')\n"
        "assert s.overlay_png(v)[:4] == b'\\x89PNG'\n"
        "assert 'ipywidgets' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ----------------------------------------------------------------- maps


def test_first_picture_needs_one_engine_call_and_no_separate_forward(net):
    with CountForwards(net) as counter:
        state = ExplorerState(net, batch(seed=5), top_k=3)
    # the layer-shape probe, then one engine call: logits, maps and the dense head
    assert counter.count == 2
    assert state.engine_calls == 1
    expected = gw.predict(net, batch(seed=5))[0]
    np.testing.assert_allclose(state.scores, expected, rtol=1e-5, atol=1e-6)
    assert state.top_classes[0] == int(np.argmax(expected))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam"])
@pytest.mark.parametrize("evidence", ["for", "against"])
@pytest.mark.parametrize("contrast", [None, 4])
def test_maps_are_the_engines_maps(net, state, method, evidence, contrast):
    for layer in state.layers:
        view = settings(
            state, layer=layer, target=2, method=method, contrast=contrast, evidence=evidence
        )
        expected = gw.gradcam(
            net, batch(), target=2, layer=layer, method=method, contrast=contrast, evidence=evidence
        )[0]
        np.testing.assert_allclose(state.heatmap(view), expected, rtol=1e-5, atol=1e-7)


def test_against_is_the_relu_of_the_negated_signed_map_and_contrast_is_a_difference(state):
    signed = state.signed_maps(1, "gradcam")
    for layer in state.layers:
        view = settings(state, layer=layer, target=1)
        np.testing.assert_allclose(state.heatmap(view), np.maximum(signed[layer], 0))
        against = settings(state, layer=layer, target=1, evidence="against")
        np.testing.assert_allclose(state.heatmap(against), np.maximum(-signed[layer], 0))
    # Grad-CAM is linear in the gradient: the map of y^1 - y^3 is S^1 - S^3.
    difference = state.signed_maps(1, "gradcam", contrast=3)
    other = state.signed_maps(3, "gradcam")
    for layer in state.layers:
        np.testing.assert_allclose(
            difference[layer], signed[layer] - other[layer], rtol=1e-4, atol=1e-7
        )


def test_cam_and_its_contrast(net, state):
    assert state.cam_layer == "3"
    assert "cam" in state.methods
    cam_view = settings(state, layer="3", target=2, method="cam")
    np.testing.assert_allclose(
        state.heatmap(cam_view),
        np.maximum(gw.cam(net, batch(), target=2, layer="3")[0], 0),
        rtol=1e-5,
        atol=1e-7,
    )
    contrast = settings(state, layer="3", target=2, method="cam", contrast=5, evidence="against")
    expected = (
        gw.cam(net, batch(), target=5, layer="3")[0] - gw.cam(net, batch(), target=2, layer="3")[0]
    )
    np.testing.assert_allclose(
        state.heatmap(contrast), np.maximum(expected, 0), rtol=1e-4, atol=1e-6
    )
    elsewhere = settings(state, layer="1", method="cam")
    assert "CAM exists only at layer" in state.available(elsewhere)
    assert state.picture(elsewhere).colour is None
    with pytest.raises(ValueError, match="only at layer"):
        state.heatmap(elsewhere)


def test_one_pass_with_the_head_gives_cam_of_every_class(net):
    result = gw.engine.explain(net, batch(), [None], ["1", "3"], with_head=True)
    for cls in range(6):
        np.testing.assert_allclose(
            result.cam(cls)[0], gw.cam(net, batch(), target=cls, layer="3")[0], rtol=1e-5
        )
    np.testing.assert_allclose(result.cam(None), gw.cam(net, batch(), layer="3"), rtol=1e-5)
    with pytest.raises(ValueError, match="global average"):
        result.cam(0, layer="1")  # not the pooled layer
    without = gw.engine.explain(net, batch(), [None], ["3"])
    assert without.head is None
    with pytest.raises(ValueError, match="CAM needs a head"):
        without.cam(0)


def test_no_cam_for_a_flatten_head():
    torch.manual_seed(1)
    flat = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 6)
    ).eval()
    state = ExplorerState(flat, batch())
    assert state.cam_layer is None
    assert state.methods == [name for name, m in METHODS.items() if m.needs_gradients]


def test_a_registered_method_is_offered(net, monkeypatch):
    class MaxGrad(Method):
        """A toy: each channel weighed by its largest gradient."""

        name, label, paper = "maxgrad", "Max-Grad", "a test"

        def channel_weights(self, activations, gradients):
            return gradients.max(axis=(2, 3))

    monkeypatch.setitem(METHODS, "maxgrad", MaxGrad())
    state = ExplorerState(net, batch())
    assert "maxgrad" in state.methods
    assert ("Max-Grad", "maxgrad") in state.method_options()
    view = settings(state, layer="1", target=3, method="maxgrad")
    expected = gw.gradcam(net, batch(), target=3, layer="1", method="maxgrad")[0]
    np.testing.assert_allclose(state.heatmap(view), expected, rtol=1e-5, atol=1e-7)
    assert "Max-Grad" in state.caption(view)


def test_toggles_alpha_colormap_pin_never_run_the_model(net, state):
    view = settings(state, target=state.top_classes[0])
    state.overlay_png(view)
    with CountForwards(net) as counter:
        for evidence in ("against", "for"):
            for layer in state.layers:
                for colormap in ("viridis", "jet"):
                    for alpha in (0.1, 0.9):
                        changed = settings(
                            state,
                            layer=layer,
                            evidence=evidence,
                            colormap=colormap,
                            alpha=alpha,
                            target=state.top_classes[0],
                        )
                        state.overlay_png(changed)
                        state.caption(changed)
        for method in ("gradcam++", "hirescam", "cam"):
            state.overlay_png(settings(state, method=method, target=state.top_classes[0]))
        state.pin(view)
        state.snapshot_png(settings(state, evidence="against", target=state.top_classes[0]))
        assert counter.count == 0
        calls = state.engine_calls
        state.overlay_png(settings(state, target=4, contrast=1))  # one engine call
        assert counter.count == 1
        assert state.engine_calls == calls + 1
        state.overlay_png(
            settings(state, target=4, contrast=1, evidence="against", method="gradcam++")
        )
        assert counter.count == 1


def test_a_contrast_equal_to_the_class_is_explained_not_drawn(state):
    view = settings(state, target=2, contrast=2)
    assert "contrast class is the class itself" in state.caption(view)
    np.testing.assert_array_equal(state.overlay(view), state.rgb)


# ----------------------------------------------------------------- pictures and text


def test_overlay_is_render_overlay_and_the_picture_is_cached(state):
    view = settings(state, layer="1", target=3, alpha=0.35, colormap="magma")
    image = render.image_from_inputs(batch(), channels_first=True)
    expected = render.overlay(image, state.heatmap(view), alpha=0.35, colormap="magma")
    np.testing.assert_array_equal(
        decode(state.overlay_png(view))[:: state.scale, :: state.scale], expected
    )
    assert state.picture(view) is state.picture(
        settings(state, layer="1", target=3, colormap="magma", alpha=0.9)
    )


def test_default_colormap_is_perceptually_uniform_and_jet_is_offered():
    from gradcam_widgets.explorer_state import COLORMAPS

    assert Settings(layer="x", target=0).colormap == "viridis" == COLORMAPS[0]
    assert "jet" in COLORMAPS
    assert "cividis" in COLORMAPS


def test_caption_gives_numbers(state):
    view = settings(state, layer="3", target=3)
    caption = state.caption(view)
    assert "3: dog" in caption
    assert f"score {state.scores[3]:.2f}" in caption
    assert "probability" in caption
    assert "%" in caption
    assert "rank" in caption
    heat = state.heatmap(view)
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    assert f"Map maximum {heat.max():.3g} at row {row}, column {col} of the 8x8 grid" in caption
    share = np.mean(heat > 0.5 * heat.max())
    assert f"{share:.0%} of the grid is above half the maximum" in caption
    contrast = state.caption(settings(state, layer="3", target=3, contrast=0))
    assert "rather than</b> <b>0: ant" in contrast
    assert f"{state.scores[3] - state.scores[0]:+.2f}" in contrast
    assert "evidence against" in state.caption(settings(state, target=3, evidence="against"))


def test_class_options_and_search(state):
    options = state.target_options()
    assert [value for _, value in options[:3]] == state.top_classes
    assert sorted(value for _, value in options) == list(range(6))
    assert state.contrast_options()[0] == ("off", None)
    assert state.find_class("Eel") == 4
    assert state.find_class("#5") == 5
    assert state.find_class("2") == 2
    with pytest.raises(ClassLookupError, match="2 classes match"):
        state.find_class("o")  # dog, fox
    with pytest.raises(ClassLookupError, match="no class 17"):
        state.find_class("17")


def test_pin_keeps_its_settings_and_the_snapshot_shows_it(state):
    live = settings(state, layer="1", target=2)
    assert state.pinned is None
    pinned = settings(state, layer="3", target=4, evidence="against", alpha=0.8)
    state.pin(pinned)
    assert state.pinned == pinned
    both = decode(state.snapshot_png(live))
    state.unpin()
    alone = decode(state.snapshot_png(live))
    width = state.rgb.shape[1] * state.scale
    assert both.shape[1] - alone.shape[1] == width + 6 * state.scale
    np.testing.assert_array_equal(
        both[:: state.scale, : width : state.scale][: state.rgb.shape[0]],
        state.overlay(pinned),
    )
    assert "Pinned beside it" not in state.caption(live)
    state.pin(pinned)
    assert "Pinned beside it" in state.caption(live)


# ----------------------------------------------------------------- faithfulness


def test_faithfulness_is_the_metric_and_is_cached_per_map(net, state):
    view = settings(state, layer="3", target=3)
    scores = state.faithfulness(view, steps=8)
    heat = state.heatmap(view)[None]
    assert scores["deletion"] == pytest.approx(
        fm.deletion(net, batch(), heat, 3, steps=8).auc, rel=1e-6
    )
    assert scores["insertion"] == pytest.approx(
        fm.insertion(net, batch(), heat, 3, steps=8).auc, rel=1e-6
    )
    assert set(scores) == {"deletion", "insertion"}
    with CountForwards(net) as counter:
        again = state.faithfulness(
            settings(state, layer="3", target=3, alpha=0.1, colormap="jet"), steps=8
        )
        assert counter.count == 0
        assert again == scores
        other = settings(state, layer="3", target=3, evidence="against")
        assert state.heatmap(other).max() > 0
        state.faithfulness(other, steps=8)
        assert counter.count > 0  # another map: computed
    caption = state.caption(view)
    assert f"deletion AUC <b>{scores['deletion']:.3f}</b>" in caption
    assert f"insertion AUC <b>{scores['insertion']:.3f}</b>" in caption
    assert "random map" not in caption
    state.faithfulness(view, steps=8, references=True)
    assert "random map" in state.caption(view)
    assert "centre map" in state.caption(view)


def test_faithfulness_with_contrast_equal_to_target_is_refused(state):
    view = settings(state, target=2, contrast=2)
    with pytest.raises(ValueError, match="contrast class is the class itself"):
        state.faithfulness(view)


def test_faithfulness_of_an_empty_map_is_refused(state, monkeypatch):
    # A map with no positive value ranks no pixel above another: refused, nothing cached.
    view = settings(state)
    empty = np.zeros_like(state.heatmap(view))
    monkeypatch.setattr(state, "heatmap", lambda _settings: empty)
    with pytest.raises(ValueError, match="no positive value"):
        state.faithfulness(view)
    assert view.map_key not in state._faithfulness


# ----------------------------------------------------------------- export


def test_export_writes_png_and_manifest(net, state, tmp_path):
    view = settings(
        state,
        layer="1",
        target=3,
        contrast=0,
        evidence="against",
        method="hirescam",
        alpha=0.6,
        colormap="jet",
    )
    state.faithfulness(view, steps=4)
    png, manifest_path = state.export(view, tmp_path / "view.png")
    assert png == tmp_path / "view.png"
    assert manifest_path == tmp_path / "view.json"
    picture = np.asarray(Image.open(png).convert("RGB"))
    scale = state.scale
    image = render.image_from_inputs(batch(), channels_first=True)
    expected = render.overlay(image, state.heatmap(view), alpha=0.6, colormap="jet")
    np.testing.assert_array_equal(picture[::scale, ::scale], expected)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["model"] == "torch.nn.modules.container.Sequential"
    assert manifest["layer"] == "1"
    assert manifest["class"]["index"] == 3
    assert manifest["class"]["name"] == "dog"
    assert manifest["contrast"]["index"] == 0
    assert manifest["contrast"]["name"] == "ant"
    assert manifest["method"]["name"] == "hirescam"
    assert manifest["evidence"] == "against"
    assert manifest["alpha"] == 0.6
    assert manifest["colormap"] == "jet"
    assert manifest["input_shape"] == [1, 3, 16, 16]
    assert manifest["gradcam_widgets_version"] == gw.__version__
    assert manifest["faithfulness"]["steps"] == 4
    assert manifest["image"] == "view.png"
    with pytest.raises(ValueError, match="no such directory"):
        state.export(view, tmp_path / "missing" / "view.png")
