"""Photos and class names that ship with installed packages, so lessons run offline.

MNIST and the datasets built from it are in :mod:`gradcam_widgets.datasets`.

* Photos: scikit-image's bundled samples, by name.
* The 1,000 ImageNet class names, shipped as a text file in this package.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

__all__ = ["SAMPLE_IMAGES", "imagenet_class_names", "sample_image"]

#: Names accepted by :func:`sample_image`, with what each shows.
SAMPLE_IMAGES: dict[str, str] = {
    "chelsea": "a tabby cat (Chelsea)",
    "coffee": "a cup of espresso on a saucer",
    "astronaut": "astronaut Eileen Collins",
    "rocket": "a rocket on its launch pad",
}


def sample_image(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos as uint8 RGB ``(H, W, 3)``.

    Args:
        name: a key of :data:`SAMPLE_IMAGES` (``chelsea``, ``coffee``, ``astronaut``,
            ``rocket``).
    """
    if name not in SAMPLE_IMAGES:
        choices = ", ".join(SAMPLE_IMAGES)
        raise ValueError(f"unknown sample image {name!r}; choose one of {choices}.")
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


@cache
def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names, index ``i`` on line ``i``."""
    text = resources.files("gradcam_widgets").joinpath("resources/imagenet_classes.txt")
    names = text.read_text(encoding="utf-8").splitlines()
    return [name for name in names if name]
