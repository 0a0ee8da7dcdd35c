"""Real architecture code: timm models with random weights (issue 11), offline.

timm is installed without its dependencies (``pip install --no-deps timm``, see the
Makefile): its torchvision import is served by a stand-in when PyPI's torchvision does
not import beside this CPU torch (tests/archs.py says why that is harmless here).

Every map is compared with an independent computation: captum's LayerGradCam for
channels-first layers, :func:`archs.oracle_gradcam` (layout undone by hand) for token
sequences and channels-last maps.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from archs import channels_last_to_map, import_timm, oracle_gradcam, tokens_to_map  # noqa: E402
from models import captum_gradcam  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.backends.layout import Layout  # noqa: E402

timm = import_timm()
pytestmark = [
    pytest.mark.zoo,
    pytest.mark.skipif(timm is None, reason="timm is not installed (pip install --no-deps timm)"),
]


@functools.cache
def built(name: str, **kwargs):
    """A timm model in eval mode and a batch of two images at its input size."""
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    size = model.pretrained_cfg["input_size"]
    rng = np.random.default_rng(0)
    return model, torch.from_numpy(rng.normal(size=(2, *size)).astype(np.float32))


def infos(model, x) -> dict:
    _, _, found = gw.engine._layer_infos(model, x)
    return {info.name: info for info in found}


def close(got, expected):
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * expected.max())


TARGETS = [3, 817]


def test_resnet18_matches_captum():
    model, x = built("resnet18")
    result = gw.explain(model, x, [TARGETS])
    assert result.layers == ["layer4"]
    close(result.maps()["layer4"], captum_gradcam(model, model.layer4, x, TARGETS))


@pytest.mark.parametrize(
    ("name", "prefix"), [("vit_tiny_patch16_224", 1), ("deit_tiny_distilled_patch16_224", 2)]
)
def test_vit_default_is_the_last_blocks_norm1_and_exact(name, prefix):
    model, x = built(name)
    found = infos(model, x)
    assert found["blocks.11.norm1"].layout == Layout("tokens", (14, 14), prefix)
    for internal in ["blocks.11.attn.q_norm", "blocks.11.attn.k_norm"]:
        assert not found[internal].is_candidate  # (N, heads, tokens, d)
    result = gw.explain(model, x, [TARGETS])
    assert result.layers == ["blocks.11.norm1"]  # pytorch-grad-cam's recommendation
    expected = oracle_gradcam(
        model, model.blocks[11].norm1, x, TARGETS, tokens_to_map(prefix, 14, 14)
    )
    close(result.maps()["blocks.11.norm1"], expected)
    # the final norm's patch tokens never reach the class token: an all-zero gradient
    assert not gw.explain(model, x, [TARGETS], "norm").gradients[0]["norm"].any()
    # timm's size assertion is a shape problem: it gets the hint
    with pytest.raises(ValueError, match=r"could not run on inputs of shape \(1, 3, 256, 256\)"):
        gw.gradcam(model, torch.zeros(1, 3, 256, 256))


def test_swin_channels_last_maps_are_exact_and_windows_excluded():
    model, x = built("swin_tiny_patch4_window7_224")
    found = infos(model, x)
    assert found["norm"].layout == Layout("channels_last", (7, 7))
    assert found["layers.2"].layout == Layout("channels_last", (14, 14))
    assert not found["layers.0.blocks.0.attn"].is_candidate  # 64 windows in the batch axis
    result = gw.explain(model, x, [TARGETS], ["norm", "layers.2"])
    for name in ["norm", "layers.2"]:
        module = model.get_submodule(name)
        close(result.maps()[name], oracle_gradcam(model, module, x, TARGETS, channels_last_to_map))
    assert gw.explain(model, x).layers == ["norm"]


def test_swin_cam_on_the_channels_last_norm():
    model, x = built("swin_tiny_patch4_window7_224")
    with torch.no_grad():
        features = model.forward_features(x[:1])[0]  # (7, 7, 768)
        expected = torch.einsum("hwc,c->hw", features, model.head.fc.weight[5]).numpy()
    np.testing.assert_allclose(gw.cam(model, x[:1], 5, "norm")[0], expected, rtol=1e-3, atol=1e-3)


def test_mobilevit_unfolded_sequences_are_not_candidates():
    model, x = built("mobilevit_xxs")
    found = infos(model, x)
    folded = [n for n, info in found.items() if info.shape and info.shape[0] != 1]
    assert folded
    assert not any(found[n].is_candidate for n in folded)
    result = gw.explain(model, x, [TARGETS])
    assert result.layers == ["final_conv"]
    assert result.maps()["final_conv"].shape == (2, 8, 8)  # one map per image
    close(result.maps()["final_conv"], captum_gradcam(model, model.final_conv, x, TARGETS))
    fusion = "stages.4.1.conv_fusion"
    close(
        gw.gradcam(model, x, TARGETS, fusion),
        captum_gradcam(model, model.get_submodule(fusion), x, TARGETS),
    )


def test_convnext_matches_captum():
    model, x = built("convnext_atto")
    result = gw.explain(model, x, [TARGETS])
    (layer,) = result.layers
    close(result.maps()[layer], captum_gradcam(model, model.get_submodule(layer), x, TARGETS))


def test_edgenext_channels_last_and_token_layers():
    model, x = built("edgenext_xx_small")
    found = infos(model, x)
    mlp, xca = "stages.3.blocks.1.mlp.fc2", "stages.3.blocks.1.xca"
    assert found[mlp].layout == Layout("channels_last", (8, 8))
    assert found[xca].layout == Layout("tokens", (8, 8), 0)
    maps = gw.gradcam(model, x, TARGETS, [mlp, xca])
    close(maps[mlp], oracle_gradcam(model, model.get_submodule(mlp), x, TARGETS,
                                    channels_last_to_map))
    close(maps[xca], oracle_gradcam(model, model.get_submodule(xca), x, TARGETS,
                                    tokens_to_map(0, 8, 8)))


def test_efficientformer_in_eval_mode_can_be_deep_copied_after_a_call():
    model, x = built("efficientformer_l1")
    found = infos(model, x)
    assert found["norm"].layout == Layout("tokens", (7, 7), 0)
    result = gw.explain(model, x, [TARGETS])
    assert result.layers == ["norm"]
    expected = oracle_gradcam(model, model.norm, x, TARGETS, tokens_to_map(0, 7, 7))
    close(result.maps()["norm"], expected)
    clone = copy.deepcopy(model)  # failed when eval() refilled the cache inside our graph
    close(gw.gradcam(clone, x, TARGETS, "norm"), expected)
