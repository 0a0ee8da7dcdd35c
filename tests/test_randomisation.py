"""gw.metrics.randomisation: randomisation on copies, rank correlation, the edge baseline."""

from __future__ import annotations

import numpy as np
import pytest

from gradcam_widgets import metrics

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
    with pytest.raises(TypeError, match=r"explains torch\.nn\.Module and keras\.Model objects"):
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
    # NumPy's legacy global generator is the state under test (hence the NPY002 waivers).
    model = small_torch_net()
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    expected = (torch.rand(1).item(), np.random.rand())  # noqa: NPY002
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    metrics.randomized_copy(model, ["0", "3"], seed=0)
    assert (torch.rand(1).item(), np.random.rand()) == expected  # noqa: NPY002


def test_randomized_copy_rejects_unknown_layers():
    with pytest.raises(ValueError, match=r"'1': not a layer with weights.*0, 3, 5, 8"):
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
    assert edges.shape == (1, 10, 10)
    assert edges.dtype == np.float32
    assert edges[0, :, 4:6].min() > 0
    assert edges[0, :, :3].max() == 0
    assert edges[0, :, 7:].max() == 0
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
    assert len(result.maps) == 5
    assert all(m.shape == (4, 6, 6) for m in result.maps)
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
