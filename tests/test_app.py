"""The Explorer app (notebooks/explorer_app.ipynb): model, photo and upload choosers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers import encode, upload_value
from models import preprocess_16, torch_bundle

from gradcam_widgets import app, data


def keras_bundle():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    return SimpleNamespace(model=model, preprocess=preprocess_16(channels_first=False),
                           class_names=["a", "b", "c"], layers=["conv_a", "conv_b"])


class Loader:
    """Counts the loads, so a test can check that a model is loaded once."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, framework):
        self.calls.append(framework)
        return torch_bundle() if framework == "torch" else keras_bundle()


def test_opens_on_the_cat_in_pytorch():
    loader = Loader()
    box = app.ExplorerApp(loader=loader)
    assert loader.calls == ["torch"]
    assert np.array_equal(box.image, data.sample_image("chelsea"))
    assert box.explorer.layers == ["1", "3"]
    assert box.explorer.view.value
    assert "in PyTorch, 451 x 300 pixels" in box.message.value
    assert [value for _, value in box.framework.options] == ["torch", "keras"]
    assert [value for _, value in box.photo.options] == list(data.SAMPLE_IMAGES)


def test_the_model_chooser_loads_each_framework_once():
    loader = Loader()
    box = app.ExplorerApp(loader=loader)
    box.framework.value = "keras"
    assert box.explorer.layers == ["conv_a", "conv_b"]
    assert "in Keras" in box.message.value
    box.framework.value = "torch"
    box.framework.value = "keras"
    assert loader.calls == ["torch", "keras"]


def test_the_photo_chooser_shows_another_sample():
    box = app.ExplorerApp(loader=Loader())
    before = box.explorer
    box.photo.value = "coffee"
    assert box.explorer is not before
    assert np.array_equal(box.image, data.sample_image("coffee"))


def test_an_upload_is_explained_and_joins_the_photo_list():
    box = app.ExplorerApp(loader=Loader())
    shown = []
    box._slot.observe(lambda change: shown.append(change["new"]), names="children")
    photo = np.random.default_rng(0).integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    box.upload.value = upload_value(encode(photo), "mine.png")
    assert len(shown) == 1  # one redraw for one upload
    assert np.array_equal(box.image, photo)
    assert box.photo.value == app.UPLOADED
    assert box.photo.options[-1] == ("your photo: mine.png", app.UPLOADED)
    assert "40 x 30 pixels" in box.message.value
    box.framework.value = "keras"  # the uploaded photo stays
    assert np.array_equal(box.image, photo)
    second = np.zeros((20, 10, 3), dtype=np.uint8)
    box.upload.value = upload_value(encode(second), "other.png")
    assert np.array_equal(box.image, second)
    assert box.photo.options[-1] == ("your photo: other.png", app.UPLOADED)


def test_a_bad_upload_keeps_the_photo_and_says_why():
    box = app.ExplorerApp(loader=Loader())
    before = box.explorer
    box.upload.value = upload_value(b"hello", "notes.txt")
    assert box.explorer is before
    assert "is not an image" in box.message.value
    assert "#b3261e" in box.message.value


def test_bad_arguments_say_what_is_allowed():
    with pytest.raises(ValueError, match="framework must be one of"):
        app.ExplorerApp(framework="jax", loader=Loader())
    with pytest.raises(ValueError, match="photo must be one of"):
        app.ExplorerApp(photo="dog", loader=Loader())
