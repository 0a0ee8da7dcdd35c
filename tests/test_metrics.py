"""Sanity checks of lesson 06: randomisation on copies, rank correlation, pointing game."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets import datasets, metrics

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


def small_torch_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(8),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    ).eval()


def state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.random((4, 1, 12, 12)).astype(np.float32))


# --------------------------------------------------------------------------- layers


def test_weighted_layers_torch_in_forward_order():
    assert metrics.weighted_layers(small_torch_net()) == ["0", "3", "5", "8"]


def test_weighted_layers_rejects_other_objects():
    with pytest.raises(TypeError, match="explains torch.nn.Module and keras.Model objects"):
        metrics.weighted_layers(object())


# ---------------------------------------------------------------- randomised copies


def test_randomized_copy_changes_only_the_named_layers_of_a_copy():
    model = small_torch_net()
    before = state(model)
    clone = metrics.randomized_copy(model, ["8", "5"], seed=3)
    after = state(model)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # the user's model
    randomized = state(clone)
    for key in before:
        same = np.array_equal(before[key], randomized[key])
        if key.startswith(("8.", "5.")) and key != "5.num_batches_tracked":
            assert not same or before[key].size == 1 or np.ptp(before[key]) == 0, key
        else:
            assert same, key
    assert not clone.training
    # scale is kept: a random kernel has the trained kernel's spread
    trained, drawn = before["8.weight"], randomized["8.weight"]
    assert drawn.std() == pytest.approx(trained.std(), rel=0.5)
    # BatchNorm's running variance stays positive (1-D tensors are shuffled)
    assert np.all(randomized["5.running_var"] > 0)


def test_randomized_copy_is_reproducible_and_seeded():
    model = small_torch_net()
    a = state(metrics.randomized_copy(model, ["0"], seed=1))
    b = state(metrics.randomized_copy(model, ["0"], seed=1))
    c = state(metrics.randomized_copy(model, ["0"], seed=2))
    assert np.array_equal(a["0.weight"], b["0.weight"])
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_randomized_copy_leaves_the_global_random_state_alone():
    model = small_torch_net()
    torch.manual_seed(5)
    np.random.seed(5)
    expected = (torch.rand(1).item(), np.random.rand())
    torch.manual_seed(5)
    np.random.seed(5)
    metrics.randomized_copy(model, ["0", "3"], seed=0)
    assert (torch.rand(1).item(), np.random.rand()) == expected


def test_randomized_copy_rejects_unknown_layers():
    with pytest.raises(ValueError, match="'1': not a layer with weights.*0, 3, 5, 8"):
        metrics.randomized_copy(small_torch_net(), ["1"])


# ------------------------------------------------------------------ rank correlation


def test_rank_correlation_values():
    rng = np.random.default_rng(0)
    a = rng.random((7, 7))
    assert metrics.rank_correlation(a, a) == 1.0
    assert metrics.rank_correlation(a, a**3 + 2) == pytest.approx(1.0)  # ranks only
    assert metrics.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert abs(metrics.rank_correlation(a, rng.random((7, 7)))) < 0.4
    zeros = np.zeros((7, 7))
    assert metrics.rank_correlation(zeros, a) == 0.0
    assert metrics.rank_correlation(zeros, zeros) == 0.0  # no variation, no evidence
    with pytest.raises(ValueError, match="different shapes"):
        metrics.rank_correlation(a, a[:3])


def test_rank_correlation_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    a = np.array([[0, 0, 1], [2, 2, 3]], dtype=float)
    b = np.array([[1, 0, 0], [5, 3, 3]], dtype=float)
    assert metrics.rank_correlation(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0])


# ------------------------------------------------------------------------ edge maps


def test_edge_map_layouts_and_values():
    image = np.zeros((10, 10), dtype=np.uint8)
    image[:, 5:] = 255
    edges = metrics.edge_map(image)
    assert edges.shape == (1, 10, 10) and edges.dtype == np.float32
    assert edges[0, :, 4:6].min() > 0 and edges[0, :, :3].max() == 0 and edges[0, :, 7:].max() == 0
    batch = np.stack([image, image])
    assert np.array_equal(metrics.edge_map(batch[:, None]), metrics.edge_map(batch))
    assert np.array_equal(metrics.edge_map(batch[..., None]), metrics.edge_map(batch))
    assert np.allclose(metrics.edge_map(batch / 255.0), metrics.edge_map(batch))
    with pytest.raises(ValueError, match="grayscale"):
        metrics.edge_map(np.zeros((2, 10, 10, 3)))


# ------------------------------------------------------------ cascading randomisation


def test_cascade_randomises_from_the_top_and_keeps_the_model(batch):
    model = small_torch_net()
    before = state(model)
    result = metrics.cascading_randomization(model, batch, layer="4")
    assert result.steps == ["original", "8", "5", "3", "0"]
    assert len(result.maps) == 5 and all(m.shape == (4, 6, 6) for m in result.maps)
    assert result.correlations.shape == (5, 4)
    assert np.all(result.correlations[0] == 1.0)
    assert result.mean.shape == (5,)
    assert all(np.array_equal(before[k], v) for k, v in state(model).items())
    # the first step's maps are the trained model's own Grad-CAM
    import gradcam_widgets as gw

    top = gw.predict(model, batch).argmax(axis=1).tolist()
    assert np.allclose(result.maps[0], gw.gradcam(model, batch, target=top, layer="4"))


def test_cascade_with_a_model_independent_baseline_stays_at_one(batch):
    model = small_torch_net()
    result = metrics.cascading_randomization(
        model, batch, explain=lambda net, inputs: metrics.edge_map(inputs.numpy())
    )
    assert np.all(result.correlations == 1.0)


def test_cascade_custom_layers_and_fixed_target(batch):
    model = small_torch_net()
    result = metrics.cascading_randomization(model, batch, target=2, layers=["8"], seed=1)
    assert result.steps == ["original", "8"]
    import gradcam_widgets as gw

    assert np.allclose(result.maps[0], gw.gradcam(model, batch, target=2))


# ---------------------------------------------------------------- cluttered canvases


@pytest.fixture(scope="module")
def digits_and_labels():
    rng = np.random.default_rng(1)
    digits = np.zeros((12, 28, 28), dtype=np.uint8)
    for digit in digits:
        top, left = rng.integers(4, 10, size=2)
        digit[top : top + 14, left : left + 10] = rng.integers(50, 256, size=(14, 10))
    return digits, np.arange(12) % 10


def test_place_digits_puts_each_digit_inside_its_box(digits_and_labels):
    digits, labels = digits_and_labels
    canvases = datasets.place_digits(digits, labels, size=44, clutter=3, fragment=6, seed=0)
    assert canvases.images.shape == (12, 44, 44) and canvases.images.dtype == np.uint8
    assert canvases.boxes.shape == (12, 4) and len(canvases) == 12
    assert np.array_equal(canvases.labels, labels)
    for canvas, box, digit in zip(canvases.images, canvases.boxes, digits):
        top, left, bottom, right = box
        assert (bottom - top, right - left) == (14, 10)
        rows, cols = np.flatnonzero(digit.max(1)), np.flatnonzero(digit.max(0))
        crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        assert np.array_equal(canvas[top:bottom, left:right], crop)  # no clutter inside
    clutter_ink = sum(
        int(c.sum()) - int(c[t:b, left:r].sum())
        for c, (t, left, b, r) in zip(canvases.images, canvases.boxes)
    )
    assert clutter_ink > 0


def test_place_digits_is_seeded(digits_and_labels):
    digits, labels = digits_and_labels
    a = datasets.place_digits(digits, labels, seed=4)
    b = datasets.place_digits(digits, labels, seed=4)
    c = datasets.place_digits(digits, labels, seed=5)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.images, c.images)


def test_place_digits_rejects_bad_arguments(digits_and_labels):
    digits, labels = digits_and_labels
    with pytest.raises(ValueError, match="at least as large"):
        datasets.place_digits(digits, labels, size=20)
    with pytest.raises(ValueError, match="labels"):
        datasets.place_digits(digits, labels[:3])
    with pytest.raises(ValueError, match="fragment"):
        datasets.place_digits(digits, labels, fragment=0)


# --------------------------------------------------------------------- pointing game


def test_pointing_game_and_random_baseline():
    maps = np.zeros((3, 11, 11), dtype=np.float32)
    maps[0, 1, 1] = 1.0
    maps[1, 9, 9] = 1.0
    boxes = np.array([[0, 0, 22, 22], [0, 0, 22, 22], [0, 0, 44, 44]])
    assert metrics.pointing_game(maps, boxes, 44).tolist() == [True, False, False]
    assert metrics.random_baseline(boxes, 44) == pytest.approx((0.25 + 0.25 + 1.0) / 3)
    assert metrics.random_baseline((0, 0, 10, 20), (20, 40)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="boxes"):
        metrics.random_baseline(np.zeros((3, 3)), 44)


def test_random_baseline_is_what_random_points_score():
    rng = np.random.default_rng(0)
    boxes = np.array([[5, 5, 25, 20], [10, 0, 44, 12]])
    points = rng.integers(0, 44, size=(20000, 2))
    hits = [
        np.mean(
            (points[:, 0] >= t) & (points[:, 0] < b) & (points[:, 1] >= left) & (points[:, 1] < r)
        )
        for t, left, b, r in boxes
    ]
    assert np.mean(hits) == pytest.approx(metrics.random_baseline(boxes, 44), abs=0.01)


# ---------------------------------------------------------------------------- Keras


@pytest.fixture(scope="module")
def keras_net():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [keras.Input((12, 12, 1)), keras.layers.Conv2D(4, 3, padding="same", name="conv_a")],
        name="block",
    )
    inputs = keras.Input((12, 12, 1))
    x = inner(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs)


def test_weighted_layers_keras_with_a_nested_model(keras_net):
    assert metrics.weighted_layers(keras_net) == ["block/conv_a", "conv_b", "scores"]


def test_randomized_copy_keras_changes_only_a_copy(keras_net):
    before = [w.copy() for w in keras_net.get_weights()]
    clone = metrics.randomized_copy(keras_net, ["scores", "block/conv_a"], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, keras_net.get_weights()))
    assert clone is not keras_net
    assert np.array_equal(
        clone.get_layer("conv_b").get_weights()[0], keras_net.get_layer("conv_b").get_weights()[0]
    )
    assert not np.array_equal(
        clone.get_layer("scores").get_weights()[0], keras_net.get_layer("scores").get_weights()[0]
    )
    nested = clone.get_layer("block").get_layer("conv_a").get_weights()[0]
    assert not np.array_equal(
        nested, keras_net.get_layer("block").get_layer("conv_a").get_weights()[0]
    )
    again = metrics.randomized_copy(keras_net, ["scores", "block/conv_a"], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(clone.get_weights(), again.get_weights()))


def test_cascade_keras(keras_net):
    rng = np.random.default_rng(0)
    batch = rng.random((3, 12, 12, 1)).astype(np.float32)
    before = [w.copy() for w in keras_net.get_weights()]
    result = metrics.cascading_randomization(keras_net, batch, layer="conv_b")
    assert result.steps == ["original", "scores", "conv_b", "block/conv_a"]
    assert np.all(result.correlations[0] == 1.0)
    assert result.maps[0].shape == (3, 12, 12)
    assert all(np.array_equal(a, b) for a, b in zip(before, keras_net.get_weights()))


def test_randomized_copy_keras_subclassed_model_gets_a_clear_error():
    keras = pytest.importorskip("keras")

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)
            self.flat = keras.layers.Flatten()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(self.flat(self.conv(x)))

    net = Net()
    net(np.zeros((1, 6, 6, 1), dtype=np.float32))
    with pytest.raises(TypeError, match="cannot be copied"):
        metrics.randomized_copy(net, metrics.weighted_layers(net)[-1:])


def test_place_digits_can_shrink_the_digits(digits_and_labels):
    digits, labels = digits_and_labels
    canvases = datasets.place_digits(digits, labels, size=42, digit_size=14, fragment=5, seed=0)
    assert canvases.images.shape == (12, 42, 42)
    heights = canvases.boxes[:, 2] - canvases.boxes[:, 0]
    widths = canvases.boxes[:, 3] - canvases.boxes[:, 1]
    assert heights.max() <= 9 and widths.max() <= 7  # the 14 x 10 ink block halved, + blur
    for canvas, (top, left, bottom, right) in zip(canvases.images, canvases.boxes):
        assert canvas[top:bottom, left:right].max() > 0
    with pytest.raises(ValueError, match="digit_size"):
        datasets.place_digits(digits, labels, digit_size=1)


def test_all_zero_maps_carry_no_evidence_everywhere():
    # one rule in every measure: share 0.0 (never NaN), a miss, no correlation
    zero = np.zeros((1, 7, 7), np.float32)
    negative = -np.ones((1, 7, 7), np.float32)  # clipped to zero before any share
    image = np.full((1, 28, 28), 255, np.uint8)
    for heat in (zero, negative):
        assert metrics.region_share(heat, (0, 0, 28, 28), 28).tolist() == [0.0]
        assert metrics.ink_share(heat, image).tolist() == [0.0]
        assert metrics.top_share(heat).tolist() == [0.0]
        assert metrics.pointing_game(heat, (0, 0, 28, 28), 28).tolist() == [False]
    assert metrics.rank_correlation(zero[0], np.arange(49.0).reshape(7, 7)) == 0.0


def test_ink_and_top_share_are_region_shares_with_a_mask():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 7, 7)).astype(np.float32)
    images = (rng.random((3, 28, 28)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(
        metrics.ink_share(maps, images), metrics.region_share(maps, images > 50, 28)
    )
    # a mask that is a box gives the box's share; a second computation by hand
    mask = np.zeros((28, 28), bool)
    mask[:10] = True
    by_hand = metrics.upsample_maps(maps, 28)
    expected = by_hand[:, :10].sum(axis=(1, 2)) / by_hand.sum(axis=(1, 2))
    np.testing.assert_allclose(metrics.top_share(maps), expected, rtol=1e-6)
    np.testing.assert_array_equal(metrics.region_share(maps, mask, 28), metrics.top_share(maps))
    with pytest.raises(ValueError, match="mask"):
        metrics.region_share(maps, np.zeros((2, 28, 28), bool), 28)
