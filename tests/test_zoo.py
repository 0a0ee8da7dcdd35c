"""The offline ImageNet network: right classes, PyTorch and Keras agree, maps make sense."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from models import CAT_CLASSES, ESPRESSO, cat_and_coffee, lite0, offline, photo  # noqa: E402

import gradcam_widgets as gw  # noqa: E402
from gradcam_widgets import zoo  # noqa: E402
from gradcam_widgets.zoo import efficientnet_lite  # noqa: E402

FRAMEWORKS = ["torch", "keras"]


@pytest.fixture(scope="session")
def nets():
    return {framework: lite0(framework) for framework in FRAMEWORKS}


def logits(net, image):
    return gw.predict(net.model, net.preprocess(image))[0]


def test_importing_the_zoo_imports_no_framework():
    code = (
        "import sys, gradcam_widgets.zoo\n"
        "loaded = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_class_names():
    names = lite0("torch").class_names
    assert len(names) == 1000
    assert [names[i] for i in CAT_CLASSES] == ["Egyptian cat", "tiger cat", "tabby"]
    assert names[ESPRESSO] == "espresso"
    assert names[0] == "tench"
    assert names[999] == "toilet tissue"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_description(nets, framework):
    net = nets[framework]
    assert net.framework == framework
    assert net.input_size == 224
    assert net.default_layer == "head" == net.layers[-1]
    assert 6 <= len(net.layers) <= 10
    candidates = gw.candidate_layers(net.model, net.preprocess(photo("chelsea")))
    assert set(net.layers) <= set(candidates)
    order = [candidates.index(name) for name in net.layers]
    assert order == sorted(order), "layers go from early to late"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cat_photo_scores_the_three_cat_classes(nets, framework):
    top = nets[framework].decode(logits(nets[framework], photo("chelsea")), top=3)
    assert tuple(index for index, _, _ in top) == CAT_CLASSES


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_coffee_photo_is_an_espresso(nets, framework):
    index, name, probability = nets[framework].decode(logits(nets[framework], photo("coffee")))[0]
    assert (index, name) == (ESPRESSO, "espresso")
    assert probability > 0.5


@pytest.mark.parametrize("image", ["chelsea", "coffee"])
def test_torch_and_keras_give_the_same_logits(nets, image):
    torch_logits = logits(nets["torch"], photo(image))
    keras_logits = logits(nets["keras"], photo(image))
    largest = np.abs(torch_logits).max()
    assert np.abs(torch_logits - keras_logits).max() <= 1e-3 * largest


def test_same_logits_as_the_package_the_weights_were_made_for(nets, capsys):
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    with offline():
        model = reference.EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=efficientnet_lite.weights_path()
        )
    capsys.readouterr()  # it prints on load
    x = torch.from_numpy(nets["torch"].preprocess(photo("chelsea")))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(gw.predict(nets["torch"].model, x), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("image", "target"), [("chelsea", 282), ("coffee", ESPRESSO)])
def test_torch_and_keras_give_the_same_maps(nets, image, target):
    maps = {
        framework: gw.gradcam(net.model, net.preprocess(photo(image)), target, net.default_layer)
        for framework, net in nets.items()
    }
    assert maps["torch"].shape == maps["keras"].shape == (1, 7, 7)
    largest = maps["torch"].max()
    assert largest > 0
    np.testing.assert_allclose(maps["keras"], maps["torch"], rtol=1e-3, atol=1e-3 * largest)


def test_torch_and_keras_maps_match_at_every_listed_layer(nets):
    """Close, not equal, before the head: ReLU6's gradient jumps at 6.

    A pre-activation of the head that one framework computes as 6.000005 and the other
    as 5.999993 (float32 rounding) passes its gradient in one and not in the other; that
    one element then shifts the gradients of every earlier layer by a few percent.
    """
    layers = nets["torch"].layers
    maps = {
        framework: gw.gradcam(net.model, net.preprocess(photo("chelsea")), 282, layers)
        for framework, net in nets.items()
    }
    for layer in layers:
        torch_map, keras_map = maps["torch"][layer], maps["keras"][layer]
        assert torch_map.shape == keras_map.shape, layer
        assert np.abs(torch_map - keras_map).max() <= 0.1 * torch_map.max(), layer
        assert np.corrcoef(torch_map.ravel(), keras_map.ravel())[0, 1] > 0.99, layer


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_default_layer_maps_agree_with_the_top_class(nets, framework):
    net = nets[framework]
    x = net.preprocess(photo("coffee"))
    default = gw.gradcam(net.model, x, layer=net.default_layer)
    explicit = gw.gradcam(net.model, x, target=ESPRESSO, layer="head")
    assert default.shape == (1, 7, 7)
    assert default.dtype == np.float32
    np.testing.assert_array_equal(default, explicit)


def left_share(heatmap: np.ndarray, boundary: float) -> float:
    """Share of the map's mass left of ``boundary`` (a fraction of the width)."""
    columns = heatmap.sum(axis=0)
    cut = boundary * columns.size
    inside = np.clip(cut - np.arange(columns.size), 0.0, 1.0)  # part of each column
    return float((columns * inside).sum() / columns.sum())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_gradcam_is_class_discriminative(nets, framework):
    net = nets[framework]
    picture = cat_and_coffee()
    boundary = photo("chelsea").shape[1] / picture.shape[1]
    x = net.preprocess(picture)
    maps = gw.gradcam(net.model, np.concatenate([x, x]), target=[CAT_CLASSES[0], ESPRESSO])
    assert left_share(maps[0], boundary) > 0.75, "the cat class lights the cat"
    assert left_share(maps[1], boundary) < 0.4, "the espresso class lights the cup"


def test_torch_modules_each_run_once_and_nothing_in_place(nets):
    model = nets["torch"].model
    calls: dict[str, int] = {}
    hooks = [
        module.register_forward_hook(
            lambda m, i, o, n=name: calls.__setitem__(n, calls.get(n, 0) + 1)
        )
        for name, module in model.named_modules()
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 224, 224))
    finally:
        for hook in hooks:
            hook.remove()
    assert set(calls.values()) == {1}
    assert len(calls) == len(dict(model.named_modules()))
    assert not [n for n, m in model.named_modules() if getattr(m, "inplace", False)]
    assert not model.training


def test_keras_layer_names_are_unique_and_channels_last(nets):
    model = nets["keras"].model
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert model.input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 1000)
    assert model.get_layer("classifier").activation.__name__ == "linear"


def test_same_padding_is_tensorflows():
    # TF pads max((ceil(n / s) - 1) * s + k - n, 0), the odd pixel after.
    for kernel in (3, 5):
        for stride, size in ((1, 14), (2, 224), (2, 14)):
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            assert efficientnet_lite.same_padding(kernel, stride) == (
                total // 2,
                total - total // 2,
            )


def test_preprocess(nets):
    image = photo("coffee")
    torch_batch = nets["torch"].preprocess(image)
    keras_batch = nets["keras"].preprocess(image)
    assert torch_batch.shape == (1, 3, 224, 224)
    assert torch_batch.dtype == np.float32
    assert keras_batch.shape == (1, 224, 224, 3)
    assert keras_batch.dtype == np.float32
    np.testing.assert_array_equal(torch_batch, keras_batch.transpose(0, 3, 1, 2))
    assert keras_batch.min() >= -1.0
    assert keras_batch.max() <= 1.0
    white = nets["keras"].preprocess(np.full((10, 30, 3), 255, np.uint8))
    np.testing.assert_allclose(white, (255 - 127) / 128)
    gray = nets["keras"].preprocess(np.full((10, 30), 127, np.uint8))
    np.testing.assert_allclose(gray, 0.0)
    with pytest.raises(ValueError, match="uint8"):
        nets["keras"].preprocess(image.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        nets["keras"].preprocess(np.zeros((4, 4, 2), np.uint8))


def test_decode(nets):
    net = nets["torch"]
    raw = torch.from_numpy(net.preprocess(photo("chelsea")))
    top = net.decode(net.model(raw), top=5)  # a tensor that requires grad is fine
    assert len(top) == 5
    probabilities = [p for _, _, p in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1
    assert top[0][:2] == (285, "Egyptian cat")
    with pytest.raises(ValueError, match="one image"):
        net.decode(np.zeros((2, 1000)))


def test_load_rejects_unknown_names_and_frameworks():
    with pytest.raises(ValueError, match="unknown model"):
        zoo.load("resnet50")
    with pytest.raises(ValueError, match="keras"):
        zoo.load("vgg16", framework="torch")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "xception", "efficientnetv2s"])
def test_online_options_are_wired_up(monkeypatch, name):
    """The keras.applications options, built without their weights: nothing downloads."""
    from gradcam_widgets.zoo import keras_applications

    spec = keras_applications.SPECS[name]
    constructor = getattr(keras.applications, spec.constructor)

    def untrained(weights, classifier_activation):
        assert weights == "imagenet"
        assert classifier_activation is None
        return constructor(weights=None, classifier_activation=None)

    monkeypatch.setattr(keras.applications, spec.constructor, untrained)
    net = zoo.load(name, framework="keras")
    batch = net.preprocess(photo("chelsea"))
    assert batch.shape == (1, spec.input_size, spec.input_size, 3)
    assert net.default_layer in net.layers
    for layer in net.layers:
        shape = net.model.get_layer(layer).output.shape
        assert len(shape) == 4, layer
        assert shape[1] > 1, layer
        assert shape[2] > 1, layer
    assert net.model.output_shape == (None, 1000)
