"""Token grids and channels-last maps (issue 11, item 3) on small in-repo architectures.

Each map is compared with :func:`archs.oracle_gradcam`, which undoes the layout by hand;
channels-first layers are compared with captum as in test_torch_backend.py.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from archs import (  # noqa: E402
    TinyMobileViT,
    TinySwin,
    TinyViT,
    channels_last_to_map,
    oracle_gradcam,
    seeded,
    tokens_to_map,
)
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets.backends.layout import (  # noqa: E402
    Layout,
    describe_outputs,
    fits_input,
    guess_layout,
    to_channels_first,
)


def _images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(n, 3, h, w)).astype(np.float32))


def _layouts(model, x) -> dict:
    _, _, infos = gw.engine._layer_infos(model, x)
    return {info.name: info for info in infos}


# --------------------------------------------------------------------------- layout rules


def test_guess_layout_reads_each_kind_from_the_shape():
    image = (224, 224)
    assert guess_layout((1, 197, 192), image, 1).layout == Layout("tokens", (14, 14), 1)
    assert guess_layout((1, 198, 192), image, 1).layout == Layout("tokens", (14, 14), 2)
    assert guess_layout((1, 201, 384), image, 1).layout == Layout("tokens", (14, 14), 5)
    assert guess_layout((1, 56, 56, 96), image, 1).layout == Layout("channels_last", (56, 56))
    assert guess_layout((1, 768, 7, 7), image, 1).layout == Layout("channels_first", (7, 7))
    # a non-square input fixes which axes are the grid
    assert guess_layout((1, 141, 192), (224, 160), 1).layout == Layout("tokens", (14, 10), 1)
    assert guess_layout((1, 7, 5, 64), (224, 160), 1).layout == Layout("channels_last", (7, 5))


def test_guess_layout_excludes_what_is_not_an_image_grid():
    image = (224, 224)
    # windows or patches folded into the batch axis
    assert guess_layout((64, 49, 96), image, 1).layout is None
    assert "batch axis holds 64" in guess_layout((64, 49, 96), image, 1).reason
    # attention internals once the model's token count is known
    for shape in [(1, 3, 197, 64), (1, 3, 197, 197)]:
        guess = guess_layout(shape, image, 1, token_lengths=[197])
        assert guess.layout is None, shape
        assert not guess.options, shape
    # a 1-D grid, a 2-D output
    assert guess_layout((1, 141, 192), image, 1).layout is None
    assert guess_layout((1, 1000), image, 1).layout is None


def test_describe_outputs_uses_the_models_token_count():
    shapes = [(1, 196, 192), (1, 3, 196, 64), (1, 3, 196, 196), (1, 196, 256)]
    guesses = describe_outputs(shapes, (224, 224), 1)
    assert guesses[0].layout == Layout("tokens", (14, 14), 0)
    assert guesses[1].layout is None
    assert guesses[2].layout is None
    # (1, 196, 256) alone could also be a flattened 16x16 map; 196 tokens settle it
    assert guess_layout((1, 196, 256), (224, 224), 1).layout is None
    assert guesses[3].layout == Layout("tokens", (14, 14), 0)


def test_a_shape_that_reads_two_ways_is_ambiguous():
    guess = guess_layout((1, 64, 64, 64), (256, 256), 1)
    assert guess.layout is None
    assert {o.kind for o in guess.options} == {"channels_first", "channels_last"}


def test_fits_input_allows_unpadded_convolutions_but_not_another_aspect():
    assert fits_input((22, 38), (32, 48))  # five unpadded 3x3 convolutions
    assert fits_input((8, 12), (32, 48))
    assert not fits_input((12, 16), (32, 48))
    assert not fits_input((56, 96), (224, 224))


def test_to_channels_first_by_hand():
    array = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)  # 1 prefix + 2x2 tokens
    got = to_channels_first(array, Layout("tokens", (2, 2), 1))
    assert got.shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(got[1, 2], [[20, 23], [26, 29]])  # channel 2, tokens 1..4
    last = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(
        to_channels_first(last, Layout("channels_last", (2, 3))), last.transpose(0, 3, 1, 2)
    )
    first = np.ones((1, 4, 2, 3), np.float32)
    assert to_channels_first(first, Layout("channels_first", (2, 3))) is first


# --------------------------------------------------------------------------- ViT


def test_vit_token_layers_are_candidates_and_attention_internals_are_not():
    model, x = TinyViT().eval(), _images(2, 32, 32)
    candidates = gw.candidate_layers(model, x)
    assert "blocks.0.norm1" in candidates
    assert "norm" in candidates
    assert "blocks.1.mlp.0" in candidates  # the MLP's hidden width is a map too
    for internal in ["attn.q_norm", "attn.k_norm", "attn.attn_drop"]:
        assert not any(name.endswith(internal) for name in candidates), internal
    info = _layouts(model, x)["blocks.1.attn.k_norm"]
    assert "attention internals" in info.note
    with pytest.raises(ValueError, match=r"blocks.1.attn.k_norm.*attention internals.*reshape="):
        gw.gradcam(model, x, 0, "blocks.1.attn.k_norm")


@pytest.mark.parametrize("layer", ["blocks.0.norm1", "blocks.1.norm1", "blocks.0.mlp.0"])
def test_vit_token_maps_match_the_oracle(layer):
    model, x = TinyViT().eval(), _images(2, 32, 32)
    got = gw.gradcam(model, x, [0, 3], layer)
    module = model.get_submodule(layer)
    expected = oracle_gradcam(model, module, x, [0, 3], tokens_to_map(1, 8, 8))
    assert got.shape == (2, 8, 8)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_vit_default_layer_is_the_last_blocks_first_norm():
    """After the last attention, patch tokens never reach the class token: zero maps."""
    model, x = TinyViT().eval(), _images(2, 32, 32)
    result = gw.explain(model, x)
    assert result.layers == ["blocks.1.norm1"]
    assert gw.engine.default_layer(model, x) == "blocks.1.norm1"
    assert gw.candidate_layers(model, x)[-1] == "norm"
    after = gw.explain(model, x, layer=["blocks.1.attn", "blocks.1", "norm"])
    for name, gradient in after.gradients[0].items():
        assert not gradient.any(), name  # exactly zero: the reason for the default
    before = gw.explain(model, x, layer="blocks.1.norm1").gradients[0]["blocks.1.norm1"]
    assert np.abs(before).max() > 0


def test_vit_default_without_class_token_is_the_last_layer():
    model, x = TinyViT(prefix=0, pool="avg").eval(), _images(1, 32, 32)
    assert gw.explain(model, x).layers == ["norm"]
    got = gw.gradcam(model, x, 2)
    expected = oracle_gradcam(model, model.norm, x, [2], tokens_to_map(0, 8, 8))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_vit_with_distillation_and_register_tokens():
    model, x = TinyViT(prefix=6).eval(), _images(1, 32, 32)
    info = _layouts(model, x)["blocks.0.norm2"]
    assert info.layout == Layout("tokens", (8, 8), 6)
    got = gw.gradcam(model, x, 1, "blocks.0.norm2")
    expected = oracle_gradcam(model, model.blocks[0].norm2, x, [1], tokens_to_map(6, 8, 8))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_explicit_reshape_still_wins_over_detection():
    model, x = TinyViT().eval(), _images(1, 32, 32)

    def transposed(tokens):  # a deliberately different layout: the grid transposed
        return tokens[:, 1:].reshape(tokens.shape[0], 8, 8, -1).permute(0, 3, 2, 1)

    detected = gw.gradcam(model, x, 0, "blocks.0.norm1")
    given = gw.gradcam(model, x, 0, "blocks.0.norm1", reshape=transposed)
    np.testing.assert_allclose(given[0], detected[0].T, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- Swin


def test_swin_channels_last_stages_are_maps_and_windows_are_not():
    model, x = TinySwin().eval(), _images(2, 32, 48)
    infos = _layouts(model, x)
    assert infos["stage1"].layout == Layout("channels_last", (8, 12))
    assert infos["norm"].layout == Layout("channels_last", (4, 6))
    assert infos["embed_norm"].layout == Layout("channels_last", (8, 12))
    for windowed in ["stage1.attn", "stage1.attn.qkv", "stage2.attn.proj"]:
        assert not infos[windowed].is_candidate
        assert "batch axis" in infos[windowed].note
    assert gw.explain(model, x).layers == ["norm"]


@pytest.mark.parametrize("layer", ["norm", "stage1", "merge", "stage1.mlp.0"])
def test_swin_maps_match_the_oracle(layer):
    model, x = TinySwin().eval(), _images(2, 32, 48)
    got = gw.gradcam(model, x, [4, 1], layer)
    expected = oracle_gradcam(model, model.get_submodule(layer), x, [4, 1], channels_last_to_map)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_swin_cam_on_a_channels_last_map():
    model, x = TinySwin().eval(), _images(1, 32, 48)
    with torch.no_grad():
        features = model.norm(model.stage2(model.merge(model.stage1(
            model.embed_norm(model.patch_embed(x).permute(0, 2, 3, 1))
        ))))
        expected = torch.einsum("hwc,c->hw", features[0], model.head.weight[3]).numpy()
    np.testing.assert_allclose(gw.cam(model, x, 3, "norm")[0], expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- MobileViT


def test_mobilevit_unfolded_sequences_are_not_maps():
    model, x = TinyMobileViT().eval(), _images(1, 32, 32)
    candidates = gw.candidate_layers(model, x)
    assert not any(name.startswith(("block.transformer", "block.norm")) for name in candidates)
    assert "block.conv_fusion" in candidates
    result = gw.gradcam(model, x, 0, ["block.conv_1x1", "block.conv_fusion", "final"])
    assert all(heatmap.shape == (1, 16, 16) for heatmap in result.values())


@pytest.mark.parametrize("layer", ["block.conv_1x1", "block.conv_fusion", "final"])
def test_mobilevit_maps_match_captum(layer):
    from captum.attr import LayerGradCam

    model, x = TinyMobileViT().eval(), _images(2, 32, 32)
    module = model.get_submodule(layer)
    ours = gw.gradcam(model, x, [0, 2], layer)
    theirs = LayerGradCam(model, module).attribute(x, target=[0, 2], relu_attributions=True)
    np.testing.assert_allclose(ours, theirs.detach().numpy()[:, 0], rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- ambiguity


class Permute(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


class SquareChannelsLast(nn.Module):
    """A (N, 8, 8, 8) channels-last tensor made by a plain permute: it reads two ways."""

    @seeded(4)
    def __init__(self, fixed_size: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.to_last = Permute()
        self.mix = nn.Tanh()
        self.fixed_size = fixed_size
        self.head = nn.Linear(8 * 8 * 8 if fixed_size else 8, 3)

    def forward(self, x):
        h = self.mix(self.to_last(self.conv(x)))  # (N, 8, 8, 8), channels last
        h = h.flatten(1) if self.fixed_size else (h * h).mean(dim=(1, 2))
        return self.head(h)


def test_an_ambiguous_shape_is_settled_by_a_wider_probe():
    model, x = SquareChannelsLast(fixed_size=False).eval(), _images(2, 8, 8)
    infos = _layouts(model, x)
    assert infos["to_last"].layout == Layout("channels_last", (8, 8))
    assert infos["mix"].layout == Layout("channels_last", (8, 8))
    got = gw.gradcam(model, x, [1, 2], "mix")
    expected = oracle_gradcam(model, model.mix, x, [1, 2], channels_last_to_map)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_an_undecidable_layout_is_refused_naming_reshape():
    model, x = SquareChannelsLast(fixed_size=True).eval(), _images(2, 8, 8)
    assert gw.candidate_layers(model, x) == ["conv"]
    with pytest.raises(ValueError, match=r"could be \(N, C, 8, 8\).*or \(N, 8, 8, C\).*reshape="):
        gw.gradcam(model, x, 0, "mix")
    got = gw.gradcam(model, x, [0, 1], "mix", reshape=lambda t: t.permute(0, 3, 1, 2))
    expected = oracle_gradcam(model, model.mix, x, [0, 1], channels_last_to_map)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_a_model_with_only_undecided_layers_lists_them():
    model = nn.Sequential(Permute(), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 3 * 3, 2))
    with pytest.raises(ValueError, match=r"layout is ambiguous: 0, 1"):
        gw.gradcam(model, _images(1, 3, 3))


class BatchMean(nn.Module):
    def forward(self, x):
        return x.mean(dim=0, keepdim=True)


def test_an_output_that_does_not_follow_the_batch_is_refused():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, BatchMean(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    x = _images(2, 6, 6)
    assert "1" in gw.candidate_layers(model, x)  # (1, 4, 6, 6) for one image
    with pytest.raises(ValueError, match=r"shape \(1, 4, 6, 6\) for 2 image\(s\)"):
        gw.gradcam(model, x, 0, "1")
