"""The MNIST model zoo: builders, layouts, training helpers, the Keras-to-PyTorch copy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gradcam_widgets import metrics
from gradcam_widgets.zoo import digits

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import gradcam_widgets as gw  # noqa: E402


@pytest.fixture(scope="module")
def few_digits():
    images, labels = gw.datasets.load_mnist("test")
    return images[:40], labels[:40]


def test_importing_digits_imports_no_framework():
    code = (
        "import sys; from gradcam_widgets.zoo import digits; "
        "print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_keras_input_scales_and_adds_channel_last(few_digits):
    images, _ = few_digits
    batch = digits.to_keras_input(images)
    assert batch.shape == (40, 28, 28, 1)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(batch[..., 0], images / 255.0, rtol=1e-6)
    assert digits.to_keras_input(images[0]).shape == (1, 28, 28, 1)


def test_torch_input_scales_and_adds_channel_first(few_digits):
    images, _ = few_digits
    batch = digits.to_torch_input(images)
    assert isinstance(batch, torch.Tensor)
    assert tuple(batch.shape) == (40, 1, 28, 28)
    assert batch.dtype == torch.float32
    np.testing.assert_allclose(batch[:, 0].numpy(), images / 255.0, rtol=1e-6)


def test_inputs_reject_wrong_shapes_and_ranges():
    with pytest.raises(ValueError, match="28, 28"):
        digits.to_keras_input(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        digits.to_torch_input(np.full((1, 28, 28), 200.0))


def test_keras_lecture_cnn_matches_the_lecture():
    model = digits.keras_lecture_cnn()
    assert model.count_params() == 130_890
    names = [layer.name for layer in model.layers]
    assert names == [
        "conv1",
        "pool1",
        "conv2",
        "pool2",
        "conv3",
        "pool3",
        "flatten",
        "dense",
        "scores",
    ]
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1"] == (28, 28, 32)
    assert shapes["conv3"] == (7, 7, 64)
    assert shapes["pool3"] == (3, 3, 64)
    assert shapes["flatten"] == (576,)
    assert gw.candidate_layers(model) == ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3"]


def test_keras_gap_net_supports_cam(few_digits):
    images, _ = few_digits
    model = digits.keras_gap_net()
    x = digits.to_keras_input(images[:2])
    assert gw.candidate_layers(model)[-1] == "conv3"
    features = keras.Model(model.inputs[0], model.get_layer("conv3").output)(x).numpy()
    kernel, _ = model.get_layer("scores").get_weights()
    by_hand = np.einsum("nhwk,k->nhw", features, kernel[:, 3])
    np.testing.assert_allclose(gw.cam(model, x, target=3), by_hand, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="CAM"):
        gw.cam(digits.keras_lecture_cnn(), x)


def test_builders_are_seeded():
    a = digits.torch_gap_net(seed=3).state_dict()
    b = digits.torch_gap_net(seed=3).state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    k1 = digits.keras_gap_net(seed=3).get_weights()
    k2 = digits.keras_gap_net(seed=3).get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(k1, k2))


def test_torch_models_mirror_the_keras_ones(few_digits):
    images, _ = few_digits
    x = digits.to_torch_input(images[:1])
    lecture = digits.torch_lecture_cnn()
    assert sum(p.numel() for p in lecture.parameters()) == 130_890
    assert gw.candidate_layers(lecture, x) == gw.candidate_layers(digits.keras_lecture_cnn())
    gap = digits.torch_gap_net()
    assert gw.candidate_layers(gap, x) == gw.candidate_layers(digits.keras_gap_net())
    assert isinstance(gap.conv1, torch.nn.Conv2d)
    assert isinstance(gap.conv1, digits.ConvReLU)
    with torch.no_grad():
        assert float(gap.conv1(x).min()) >= 0.0  # the ReLU is part of the module
    assert not gap.training
    assert not lecture.training


@pytest.mark.parametrize("builder", [digits.keras_gap_net, digits.keras_lecture_cnn])
def test_torch_from_keras_gives_the_same_logits_and_maps(builder, few_digits):
    images, _ = few_digits
    keras_model = builder(seed=1)
    torch_model = digits.torch_from_keras(keras_model)
    xk, xt = digits.to_keras_input(images[:6]), digits.to_torch_input(images[:6])
    np.testing.assert_allclose(gw.predict(torch_model, xt), gw.predict(keras_model, xk), atol=1e-4)
    for layer in ("conv2", "conv3"):
        np.testing.assert_allclose(
            gw.gradcam(torch_model, xt, target=4, layer=layer),
            gw.gradcam(keras_model, xk, target=4, layer=layer),
            atol=1e-5,
            rtol=1e-3,
        )


def test_torch_from_keras_rejects_other_models():
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="keras_gap_net"):
        digits.torch_from_keras(other)


def test_train_torch_is_deterministic_and_learns(few_digits):
    images, labels = gw.datasets.load_mnist("train")
    images, labels = images[:256], labels[:256]
    first = digits.torch_gap_net(seed=0)
    losses = digits.train_torch(first, images, labels, epochs=3, seed=0)
    again = digits.torch_gap_net(seed=0)
    assert digits.train_torch(again, images, labels, epochs=3, seed=0) == losses
    assert losses[-1] < losses[0]
    assert not first.training
    assert all(p.grad is None for p in first.parameters())
    # a prepared batch is accepted as well as raw digits
    prepared = digits.to_torch_input(images[:64])
    assert len(digits.train_torch(digits.torch_gap_net(), prepared, labels[:64], epochs=1)) == 1


def test_train_torch_adam_matches_torch_optim_bit_for_bit():
    # train_torch writes Adam out (torch.optim imports torch._dynamo and sympy, ~75 MB);
    # the same loop with torch.optim.Adam must give exactly the same weights.
    import torch
    from torch.nn import functional

    images, labels = gw.datasets.load_mnist("train")
    images, labels = images[:200], labels[:200]
    ours = digits.torch_lecture_cnn(seed=3)
    losses = digits.train_torch(ours, images, labels, epochs=2, seed=5, learning_rate=1e-3)

    reference = digits.torch_lecture_cnn(seed=3)
    inputs, targets = digits.to_torch_input(images), torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(5)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    reference.train()
    expected = []
    for _ in range(2):
        order, total = torch.randperm(len(inputs), generator=generator), 0.0
        for start in range(0, len(inputs), 64):
            index = order[start : start + 64]
            optimizer.zero_grad()
            loss = functional.cross_entropy(reference(inputs[index]), targets[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        expected.append(total / len(inputs))
    assert losses == expected
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_train_torch_checks_lengths():
    with pytest.raises(ValueError, match="labels"):
        digits.train_torch(digits.torch_gap_net(), np.zeros((4, 28, 28), np.uint8), [1, 2])


def test_train_keras_returns_history():
    images, labels = gw.datasets.load_mnist("train")
    model = digits.keras_gap_net()
    history = digits.train_keras(model, images[:128], labels[:128], epochs=2)
    assert set(history) >= {"loss", "accuracy"}
    assert len(history["loss"]) == 2


def test_train_keras_is_reproducible_from_its_seed_alone():
    import random

    images, labels = gw.datasets.load_mnist("train")
    runs = []
    import keras

    for seed, noise in ((0, 1), (0, 2), (1, 1)):
        # global state (Python, NumPy, TensorFlow/Keras) differs between runs: it must not matter
        keras.utils.set_random_seed(noise)
        random.seed(noise)
        np.random.seed(noise)  # noqa: NPY002 - the legacy global state is what must not matter
        model = digits.keras_gap_net(seed=0)
        history = digits.train_keras(model, images[:256], labels[:256], epochs=2, seed=seed)
        runs.append((history["loss"], model.get_weights()))
    (loss_a, weights_a), (loss_b, weights_b), (loss_c, _) = runs
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not np.allclose(loss_a, loss_c, rtol=1e-5)  # another seed, another batch order


def test_accuracy_and_predict_classes_agree_with_the_engine(few_digits):
    images, labels = few_digits
    for model, x in (
        (digits.torch_gap_net(), digits.to_torch_input(images)),
        (digits.keras_gap_net(), digits.to_keras_input(images)),
    ):
        predicted = digits.predict_classes(model, images, batch_size=16)
        np.testing.assert_array_equal(predicted, gw.predict(model, x).argmax(axis=1))
        assert digits.accuracy(model, images, labels) == pytest.approx(
            float(np.mean(predicted == labels))
        )


def test_class_names_are_the_digits():
    assert [str(d) for d in range(10)] == digits.CLASS_NAMES


def test_ink_share_and_top_share_measure_where_a_map_lies():
    image = np.zeros((28, 28), np.uint8)
    image[:10, 10:12] = 255  # ink only in the top rows
    on_ink = np.zeros((28, 28), np.float32)
    on_ink[:10, 10:12] = 1.0
    even = np.ones((7, 7), np.float32)
    empty = np.zeros((7, 7), np.float32)
    maps_ink = metrics.ink_share(on_ink[np.newaxis], image[np.newaxis])
    np.testing.assert_allclose(maps_ink, [1.0])
    shares = metrics.ink_share(np.stack([even, empty]), np.stack([image, image]))
    assert shares[0] == pytest.approx(20 / 784, rel=1e-3)  # an even map: the ink area
    assert shares[1] == 0.0  # an empty map has no share to give (the all-zero rule)
    high = np.zeros((7, 7), np.float32)
    high[:2] = 1.0  # the top two of seven cells: pixel rows 0-7
    tops = metrics.top_share(np.stack([high, even, -even]))
    assert tops[0] > 0.8
    assert tops[1] == pytest.approx(10 / 28, rel=1e-3)
    assert tops[2] == 0.0  # negative values are clipped: nothing left, share 0
    with pytest.raises(ValueError, match="maps"):
        metrics.ink_share(np.stack([even, even]), image[np.newaxis])


def test_builders_and_trainers_leave_global_random_state_alone():
    import random

    # The legacy global generator is what must stay untouched (hence the NPY002 waivers).
    states = (
        random.getstate(),
        np.random.get_state()[1].copy(),  # noqa: NPY002
        torch.random.get_rng_state(),
    )
    digits.torch_gap_net(seed=5)
    digits.keras_gap_net(seed=5)
    blank = np.zeros((4, 28, 28), np.uint8)
    digits.train_torch(digits.torch_gap_net(), blank, [0, 1, 2, 3], epochs=1)
    digits.train_keras(digits.keras_gap_net(), blank, [0, 1, 2, 3], epochs=1)
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), states[2])


def test_train_keras_calls_no_global_seeder(monkeypatch):
    import random

    import keras
    import tensorflow as tf

    def forbidden(*args, **kwargs):
        raise AssertionError("train_keras reseeded a global random generator")

    for owner, name in (
        (keras.utils, "set_random_seed"),
        (tf.random, "set_seed"),
        (np.random, "seed"),
        (random, "seed"),
    ):
        monkeypatch.setattr(owner, name, forbidden)
    images, labels = gw.datasets.load_mnist("train")
    history = digits.train_keras(digits.keras_gap_net(), images[:64], labels[:64], epochs=1)
    assert len(history["loss"]) == 1


def test_bar_rows_and_erase_rows():
    image = np.zeros((28, 28), np.uint8)
    image[9, 5:20] = 255  # a bar on row 9 ...
    image[10:25, 18] = 255  # ... and a stem below it (one ink pixel per row)
    edge = np.zeros((28, 28), np.uint8)
    edge[0, :] = 200  # the inkiest row at the top edge: the band moves inside
    boxes = digits.bar_rows(np.stack([image, edge]))
    assert boxes.tolist() == [[7, 0, 12, 28], [0, 0, 5, 28]]
    erased = digits.erase_rows(image, boxes[:1])
    assert erased[0, 7:12].max() == 0
    assert erased[0, 12:].max() == 255
    assert image[9].max() == 255  # the input is not changed
    below = digits.erase_rows(image, boxes[:1], shift=8)
    assert below[0, 9].max() == 255
    assert below[0, 15:20].max() == 0
    assert below[0, 20].max() == 255
    cut = digits.erase_rows(image, np.array([[25, 0, 30, 28]]))  # past the edge: cut there
    assert cut[0, 25:].max() == 0
