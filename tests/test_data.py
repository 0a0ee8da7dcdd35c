"""Bundled data: named photos, offline."""

import numpy as np
import pytest

from gradcam_widgets import data


@pytest.mark.parametrize("name", list(data.SAMPLE_IMAGES))
def test_sample_images(name):
    image = data.sample_image(name)
    assert image.dtype == np.uint8
    assert image.ndim == 3
    assert image.shape[2] == 3


def test_unknown_sample_image():
    with pytest.raises(ValueError, match="chelsea"):
        data.sample_image("dog")
