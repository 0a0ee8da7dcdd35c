"""gw.parts (the pieces of a Grad-CAM map) and gw.receptive_field, checked exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets import receptive_field as rf  # noqa: E402
from gradcam_widgets.parts import gradcam_parts  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 4 * 4, 3),
    ).eval()
    inputs = np.random.default_rng(1).random((2, 1, 8, 8)).astype(np.float32)
    return model, inputs


def test_parts_rebuild_gradcam(small_net):
    model, inputs = small_net
    parts = gradcam_parts(model, inputs, target=[0, 2], layer="4")
    expected = gw.gradcam(model, inputs, target=[0, 2], layer="4")
    np.testing.assert_allclose(parts.heatmap, expected, rtol=1e-5, atol=1e-7)
    assert parts.activations.shape == (2, 5, 4, 4) == parts.gradients.shape
    np.testing.assert_allclose(parts.weights, parts.gradients.mean(axis=(2, 3)))
    # the contributions add up to the sum of the weighted sum over all cells
    np.testing.assert_allclose(
        parts.contributions.sum(axis=1), parts.weighted_sum.sum(axis=(1, 2)), rtol=1e-5
    )
    np.testing.assert_allclose(np.maximum(parts.weighted_sum, 0), parts.heatmap, atol=1e-6)
    logits = model(torch.as_tensor(inputs)).detach().numpy()
    np.testing.assert_allclose(parts.scores, logits[[0, 1], [0, 2]], rtol=1e-5)
    assert list(parts.targets) == [0, 2]
    assert parts.layer == "4"


def test_parts_top_class_and_errors(small_net):
    model, inputs = small_net
    parts = gradcam_parts(model, inputs)
    logits = model(torch.as_tensor(inputs)).detach().numpy()
    assert list(parts.targets) == list(logits.argmax(axis=1))
    assert parts.layer == gw.candidate_layers(model, inputs)[-1]
    with pytest.raises(TypeError, match="one layer"):
        gradcam_parts(model, inputs, layer=["1", "4"])
    with pytest.raises(ValueError, match="unknown layer"):
        gradcam_parts(model, inputs, layer="nope")


def test_grow_by_hand():
    # conv3 s1, pool2 s2, conv3 s1, pool2 s2: sizes 3, 4, 8, 10; jumps 1, 2, 2, 4
    fields = rf.grow([(3, 1), (2, 2), (3, 1), (2, 2)])
    assert [f.size for f in fields] == [3, 4, 8, 10]
    assert [f.jump for f in fields] == [1, 2, 2, 4]
    assert rf.grow([]) == []
    with pytest.raises(ValueError, match=">= 1"):
        rf.grow([(0, 1)])


def test_receptive_fields_match_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 5, padding=2),
        nn.ReLU(),
        nn.Conv2d(3, 3, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 2, 3, padding=2, dilation=2),
        nn.Flatten(),
    ).eval()
    fields = rf.receptive_fields(model)
    # by hand: 5; +2*1 = 7 (jump 2); +1*2 = 9 (jump 4); dilated 3 -> 5: +4*4 = 25
    assert {name: f.size for name, f in fields.items()} == {"0": 5, "2": 7, "4": 9, "5": 25}
    inputs = np.random.default_rng(0).normal(size=(64, 1, 48, 48)).astype(np.float32)
    for name, field in fields.items():
        assert rf.measured(model, inputs, name) == (field.size, field.size), name


def test_receptive_fields_keras_lecture_cnn():
    pytest.importorskip("keras")
    from gradcam_widgets.zoo import digits

    sizes = {n: f.size for n, f in rf.receptive_fields(digits.keras_lecture_cnn(0)).items()}
    assert sizes == {"conv1": 3, "pool1": 4, "conv2": 8, "pool2": 10, "conv3": 18, "pool3": 22}
    same = {n: f.size for n, f in rf.receptive_fields(digits.torch_lecture_cnn(0)).items()}
    assert same == sizes
    with pytest.raises(TypeError, match="Keras or torch"):
        rf.receptive_fields(object())


def test_near_share_exact():
    heat = np.zeros((1, 4, 4), dtype=np.float32)
    heat[0, 0, 0] = 1.0
    heat[0, 3, 3] = 3.0
    mask = np.zeros((1, 4, 4), dtype=bool)
    mask[0, 3, 3] = True
    assert rf.near_share(heat, mask, 0)[0] == pytest.approx(0.75)
    assert rf.near_share(heat, mask, 3)[0] == pytest.approx(1.0)
    assert np.isnan(rf.near_share(np.zeros((1, 4, 4)), mask, 1)[0])
    with pytest.raises(ValueError, match=">= 0"):
        rf.near_share(heat, mask, -1)
    with pytest.raises(ValueError, match="expected"):
        rf.near_share(heat[0], mask, 1)


def test_parts_contrast(small_net):
    model, inputs = small_net
    parts = gradcam_parts(model, inputs, target=0, layer="4", contrast=2)
    a = gradcam_parts(model, inputs, target=0, layer="4")
    b = gradcam_parts(model, inputs, target=2, layer="4")
    np.testing.assert_allclose(parts.weights, a.weights - b.weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(parts.scores, a.scores - b.scores, rtol=1e-5)
    expected = gw.gradcam(model, inputs, target=0, layer="4", contrast=2)
    np.testing.assert_allclose(parts.heatmap, expected, rtol=1e-5, atol=1e-7)


def test_question_repr_hides_the_answer():
    from gradcam_widgets.exercises import lesson04

    text = repr(lesson04.QUIZ)
    assert "(b)" in text
    assert "explanation" not in text.lower()
    for question in lesson04.QUIZ.questions:
        assert question.explanation not in text


def test_measured_reads_token_layers_through_their_layout():
    # The centre cell of a token layer is the patch token at the grid's centre: before
    # the first attention it sees its own 4x4 patch; after it, the whole 32x32 image.
    import archs

    model = archs.TinyViT().eval()
    inputs = np.random.default_rng(2).normal(size=(4, 3, 32, 32)).astype(np.float32)
    assert rf.measured(model, inputs, "blocks.0.norm1") == (4, 4)
    assert rf.measured(model, inputs, "blocks.0") == (32, 32)
    with pytest.raises(ValueError, match="not a feature map"):
        rf.measured(model, inputs, "head")
    with pytest.raises(ValueError, match="unknown layer"):
        rf.measured(model, inputs, "nope")


def test_measured_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Flatten()).train()
    inputs = np.random.default_rng(0).normal(size=(8, 1, 6, 6)).astype(np.float32)
    # The in-place ReLU after the convolution must not overwrite what is differentiated.
    assert rf.measured(model, inputs, "0") == (3, 3)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_receptive_field_reads_no_framework():
    # The framework-specific reading lives behind the backend protocol (issue 10).
    import ast

    tree = ast.parse(Path(rf.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert not imported & {"torch", "keras", "tensorflow", "jax"}
    names = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert not names & {"torch", "keras", "tensorflow", "jax"}


def test_seen_by_by_hand_and_against_gradients():
    """seen_by() gives the pixels a cell depends on: by hand, then measured exactly."""
    field = rf.grow([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)])[-1]   # lesson 01's conv3
    assert (field.size, field.jump) == (18, 4)
    assert rf.seen_by(field, 0) == (-7, 10)
    assert rf.seen_by(field, 3) == (5, 22)
    with pytest.raises(ValueError, match="not centred"):
        rf.seen_by(rf.Field(size=4, jump=1), 0)
    # the same chain with positive weights and average pooling, so no pixel of the
    # field can have a zero gradient by chance: the support is the field, clipped
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, padding=1),
        nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, padding=1),
    )
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Conv2d):
                layer.weight.fill_(1.0)
    for cell in range(7):
        inputs = torch.ones((1, 1, 28, 28), requires_grad=True)
        model(inputs)[0, 0, cell, 3].backward()
        rows = np.nonzero(inputs.grad[0, 0].abs().sum(axis=1).numpy())[0]
        first, last = rf.seen_by(field, cell)
        assert (rows.min(), rows.max()) == (max(first, 0), min(last, 27))
