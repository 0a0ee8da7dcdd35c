"""Bundled data: offline, fixed split, named photos."""

import numpy as np
import pytest

from gradcam_widgets import data, datasets


def test_mnist_split_is_fixed_balanced_and_disjoint():
    x_train, y_train = datasets.load_mnist("train")
    x_test, y_test = datasets.load_mnist("test")
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and x_train.max() > 200
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    train_rows = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in train_rows for row in x_test)
    again, _ = datasets.load_mnist("train")
    np.testing.assert_array_equal(again, x_train)
    assert len(set(y_train[:20].tolist())) > 3  # shuffled, not sorted by digit


def test_mnist_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        datasets.load_mnist("validation")
    with pytest.raises(ValueError, match="bundled"):
        datasets.load_mnist("train", source="internet")


@pytest.mark.parametrize("name", list(data.SAMPLE_IMAGES))
def test_sample_images(name):
    image = data.sample_image(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_unknown_sample_image():
    with pytest.raises(ValueError, match="chelsea"):
        data.sample_image("dog")
